//! `cuepoint-media`: the media worker (queue `media`). Wiring only; the logic is in the library.

fn main() {
    cuepoint_workers::service::main_for(cuepoint_workers::handlers::WorkerKind::Media);
}
