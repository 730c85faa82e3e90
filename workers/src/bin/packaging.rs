//! `cuepoint-packaging`: the packaging worker (queue `packaging`). Wiring only; the logic is in the library.

fn main() {
    cuepoint_workers::service::main_for(cuepoint_workers::handlers::WorkerKind::Packaging);
}
