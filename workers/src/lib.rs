//! cuepoint's workers as a library: each worker is a handler over the ports; binaries are wiring.

pub mod app;
#[cfg(feature = "aws")]
pub mod aws_backend;
pub mod backend;
pub mod cli;
pub mod context;
pub mod creatives;
pub mod flow;
pub mod handlers;
pub mod latest;
pub mod redrive;
pub mod scoring_config;
pub mod serve;
pub mod service;
pub mod slots;
pub mod speech;
pub mod sweeper;
#[cfg(test)]
mod testkit;
