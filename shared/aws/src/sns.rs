//! SNS ([`Topic`]): Publish to one topic.

use async_trait::async_trait;
use cuepoint_runtime::ports::{PortResult, Topic};

use crate::clients::AwsClients;
use crate::error::{port_error, retry_transient};

#[derive(Clone, Debug)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(clients: &AwsClients, topic_arn: impl Into<String>) -> Self {
        Self {
            client: clients.sns.clone(),
            topic_arn: topic_arn.into(),
        }
    }

    pub fn arn(&self) -> &str {
        &self.topic_arn
    }
}

#[async_trait]
impl Topic for SnsTopic {
    async fn publish(&self, message: &str) -> PortResult<String> {
        let what = format!("sns publish to {}", self.topic_arn);
        let out = retry_transient(&what, || async {
            self.client
                .publish()
                .topic_arn(&self.topic_arn)
                .message(message)
                .send()
                .await
                .map_err(|e| port_error(&what, e))
        })
        .await?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
