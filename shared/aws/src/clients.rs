//! SDK clients, configured once from the environment.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use cuepoint_runtime::config::AwsSettings;

/// One client per service, sharing one `SdkConfig` (credentials, region, endpoint).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub sdk_config: SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub mediaconvert: aws_sdk_mediaconvert::Client,
    pub rekognition: aws_sdk_rekognition::Client,
    pub transcribe: aws_sdk_transcribe::Client,
}

impl AwsClients {
    /// The default credential chain and region (environment, profile, IMDS/ECS...). An
    /// emulator is selected with the standard `AWS_ENDPOINT_URL` (or per-service
    /// `AWS_ENDPOINT_URL_<SERVICE>`), which aws-config reads itself.
    pub async fn from_env(settings: &AwsSettings) -> Self {
        let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(&sdk_config, settings)
    }

    /// Clients from an already loaded `SdkConfig` (tests, custom credential providers).
    ///
    /// The SDK's own retries are turned off: every adapter retries transient errors with one
    /// explicit policy ([`crate::error::backoff`]), and two nested retry loops would multiply.
    pub fn from_sdk_config(sdk_config: &SdkConfig, settings: &AwsSettings) -> Self {
        let sdk_config = &sdk_config
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        let s3_config = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(settings.s3_path_style)
            .build();
        Self {
            sdk_config: sdk_config.clone(),
            sqs: aws_sdk_sqs::Client::new(sdk_config),
            sns: aws_sdk_sns::Client::new(sdk_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk_config),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk_config),
            mediaconvert: aws_sdk_mediaconvert::Client::new(sdk_config),
            rekognition: aws_sdk_rekognition::Client::new(sdk_config),
            transcribe: aws_sdk_transcribe::Client::new(sdk_config),
        }
    }

    /// The configured region, if any (`AWS_REGION`, profile...).
    pub fn region(&self) -> Option<&str> {
        self.sdk_config.region().map(|r| r.as_ref())
    }

    /// True when an endpoint override (an emulator) is configured.
    pub fn has_endpoint_override(&self) -> bool {
        self.sdk_config.endpoint_url().is_some()
    }
}
