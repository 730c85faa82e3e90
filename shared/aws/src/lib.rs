//! AWS adapters for cuepoint's ports, on aws-sdk-rust.
//!
//! | port | adapter | service |
//! |---|---|---|
//! | `Queue` | [`SqsQueue`] | SQS (+ DynamoDB failure records) |
//! | `DeadLetters` | [`SqsDeadLetters`] | SQS redrive policies, StartMessageMoveTask |
//! | `EventBus` | [`EventBridgeBus`] | EventBridge PutEvents |
//! | `Topic` | [`SnsTopic`] | SNS |
//! | `AssetStore` | [`DynamoAssetStore`] | DynamoDB (conditional writes, transactions) |
//! | `BlobStore` | [`S3BlobStore`] | S3 (presigned URLs for FFmpeg) |
//! | `Transcoder` | [`MediaConvertTranscoder`] | MediaConvert |
//! | `VideoAnalyzer` | [`RekognitionAnalyzer`] | Rekognition Video |
//! | `Transcriber` | [`TranscribeTranscriber`] | Amazon Transcribe |
//!
//! Clients come from [`AwsClients::from_env`]; an emulator is selected with `AWS_ENDPOINT_URL`.
//! [`provision::provision`] creates the resources `infra/routing.json` describes.

pub mod clients;
pub mod dynamo;
pub mod error;
pub mod eventbridge;
pub mod mediaconvert;
pub mod provision;
pub mod rekognition;
pub mod s3;
pub mod sns;
pub mod sqs;
mod time;
pub mod transcribe;

#[cfg(test)]
mod test_http;

pub use clients::AwsClients;
pub use dynamo::DynamoAssetStore;
pub use eventbridge::EventBridgeBus;
pub use mediaconvert::MediaConvertTranscoder;
pub use rekognition::RekognitionAnalyzer;
pub use s3::S3BlobStore;
pub use sns::SnsTopic;
pub use sqs::{SqsDeadLetters, SqsQueue};
pub use transcribe::TranscribeTranscriber;
