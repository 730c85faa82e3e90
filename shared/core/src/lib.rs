//! The sans-IO core of cuepoint.
//!
//! Everything here is pure data and functions: no AWS SDK, no tokio, no file system, no clock.
//! Adapters (embedded SQLite, AWS SDK, FFmpeg) live in other crates and call into this one.

pub mod ads;
pub mod analysis;
pub mod asset;
pub mod content;
pub mod domain;
pub mod events;
pub mod loudness;
pub mod mediaconvert;
pub mod packaging;
pub mod rekognition;
pub mod results;
pub mod routing;
pub mod scenes;
pub mod scoring;
pub mod speech;
pub mod stuck;
pub mod timefmt;
pub mod timeline;
pub mod transcript;
pub mod transitions;
pub mod vmap;
