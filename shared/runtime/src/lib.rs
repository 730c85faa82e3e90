//! Ports, the consume loop, configuration and telemetry shared by every worker.

pub mod config;
pub mod consumer;
pub mod metrics;
pub mod ports;
pub mod telemetry;
