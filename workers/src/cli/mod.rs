//! The `cuepoint` operator CLI's commands.

pub mod analyze;
pub mod demo;
pub mod models;
pub mod run;
pub mod status;
pub mod summary;
