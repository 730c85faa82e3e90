//! `cuepoint-ingest`: the ingest worker (queue `ingest`). Wiring only; the logic is in the library.

fn main() {
    cuepoint_workers::service::main_for(cuepoint_workers::handlers::WorkerKind::Ingest);
}
