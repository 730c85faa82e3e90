//! cuepoint's workers as a library: each worker is a handler over the ports; binaries are wiring.

pub mod context;
pub mod flow;
pub mod handlers;
pub mod hls;
pub mod scoring_config;
pub mod slots;
