//! Typed events: cuepoint's own pipeline events and the AWS shapes that arrive on its queues.

pub mod envelope;
pub mod inbound;
pub mod mediaconvert;
pub mod pipeline;
pub mod rekognition;
pub mod s3;
pub mod transcribe;

pub use envelope::EventBridgeEvent;
pub use inbound::{parse_message, Inbound, InboundError};
pub use pipeline::{PipelineDetail, PipelineEvent, PIPELINE_SOURCE};
