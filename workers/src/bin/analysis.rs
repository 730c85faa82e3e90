//! `cuepoint-analysis`: the analysis worker (queue `analysis`). Wiring only; the logic is in the library.

fn main() {
    cuepoint_workers::service::main_for(cuepoint_workers::handlers::WorkerKind::Analysis);
}
