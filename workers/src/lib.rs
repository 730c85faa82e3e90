//! cuepoint's workers as a library: each worker is a handler over the ports; binaries are wiring.

pub mod slots;
