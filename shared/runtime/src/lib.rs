//! Ports, the consume loop, configuration and telemetry shared by every worker.

pub mod config;
pub mod ports;
