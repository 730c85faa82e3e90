//! Create cuepoint's AWS resources from the one routing definition (`infra/routing.json`).
//!
//! Used against emulators (integration tests, local runs) and as a reference of what
//! `infra/` deploys: per queue a DLQ and the queue with its redrive policy and visibility
//! timeout; EventBridge rules with SQS targets; the SNS topic Rekognition notifies and its
//! subscription; the table; the buckets (ingest bucket notifying EventBridge). Every step is
//! idempotent: provisioning twice with the same names converges to the same resources.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, EventBridgeConfiguration,
    NotificationConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use cuepoint_core::routing::RoutingDefinition;
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::PortError;
use serde_json::{json, Value};

use crate::clients::AwsClients;
use crate::error::{error_code, port_error};

/// SQS keeps messages (and we keep failure records) for the maximum, 14 days.
const RETENTION_SECONDS: u32 = 1_209_600;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Routing(String),
    #[error("provisioning {step}: {source}")]
    Aws { step: String, source: PortError },
}

fn aws(step: impl Into<String>) -> impl FnOnce(PortError) -> ProvisionError {
    let step = step.into();
    move |source| ProvisionError::Aws { step, source }
}

// ---------------------------------------------------------------------------------------------
// The routing definition: read, substituted and checked by `cuepoint_core::routing`, the module
// the embedded bus routes with.

/// `routing_json` with `${IngestBucket}` and `${WorkflowName}` taken from `names`.
pub fn load_routing(
    routing_json: &str,
    names: &ProvisionNames,
) -> Result<RoutingDefinition, ProvisionError> {
    let vars = BTreeMap::from([
        ("IngestBucket", names.ingest_bucket.as_str()),
        ("WorkflowName", names.workflow.as_str()),
    ]);
    RoutingDefinition::from_json_str(routing_json, &vars)
        .map_err(|e| ProvisionError::Routing(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Names in, resources out

/// Names of the resources to create. Queue, DLQ, rule and topic names are
/// `<prefix>-<name>` (`<prefix>-<name>-dlq` for DLQs).
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionNames {
    pub prefix: String,
    pub ingest_bucket: String,
    pub output_bucket: String,
    pub workflow: String,
    pub table: String,
    /// Bus for cuepoint's own events (`default`, or a custom bus created here).
    pub event_bus: String,
}

impl ProvisionNames {
    /// Everything named after `prefix` (buckets `<prefix>-ingest`/`-output`, table
    /// `<prefix>-assets`), on the default bus, workflow `cuepoint`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            ingest_bucket: format!("{prefix}-ingest"),
            output_bucket: format!("{prefix}-output"),
            workflow: "cuepoint".into(),
            table: format!("{prefix}-assets"),
            event_bus: "default".into(),
        }
    }

    fn resource(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provisioned {
    /// Queue URL per routing queue name (`ingest`, `media`...).
    pub queue_urls: BTreeMap<String, String>,
    pub queue_arns: BTreeMap<String, String>,
    pub dlq_urls: BTreeMap<String, String>,
    /// Topic ARN per routing topic name.
    pub topic_arns: BTreeMap<String, String>,
    /// The Rekognition topic (routing topic `rekognition`, else the first topic).
    pub topic_arn: String,
    pub rule_arns: BTreeMap<String, String>,
    pub table: String,
    pub buckets: Vec<String>,
    pub event_bus: String,
}

impl Provisioned {
    /// Point the AWS settings at these resources.
    pub fn apply_to(&self, settings: &mut AwsSettings) {
        settings.queue_urls = self.queue_urls.clone();
        settings.table = self.table.clone();
        settings.event_bus = self.event_bus.clone();
        settings.rekognition_topic_arn = self.topic_arn.clone();
    }
}

/// Create (or converge) everything `routing_json` describes, named by `names`.
pub async fn provision(
    clients: &AwsClients,
    routing_json: &str,
    names: &ProvisionNames,
) -> Result<Provisioned, ProvisionError> {
    let spec = load_routing(routing_json, names)?;
    provision_routing(clients, &spec, names).await
}

/// Create (or converge) everything a loaded routing definition describes.
pub async fn provision_routing(
    clients: &AwsClients,
    spec: &RoutingDefinition,
    names: &ProvisionNames,
) -> Result<Provisioned, ProvisionError> {
    let mut out = Provisioned {
        table: names.table.clone(),
        event_bus: names.event_bus.clone(),
        ..Default::default()
    };

    create_table(clients, &names.table).await?;
    for bucket in [&names.ingest_bucket, &names.output_bucket] {
        create_bucket(clients, bucket).await?;
        out.buckets.push(bucket.clone());
    }
    // S3 → EventBridge (default bus): "Object Created" events for the ingest rule.
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&names.ingest_bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .event_bridge_configuration(EventBridgeConfiguration::builder().build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| port_error("s3 notification", e))
        .map_err(aws(format!(
            "EventBridge notifications of bucket {}",
            names.ingest_bucket
        )))?;

    for q in spec.queues() {
        let dlq_name = names.resource(&format!("{}-dlq", q.name));
        let dlq_url = create_queue(clients, &dlq_name, BTreeMap::new()).await?;
        let dlq_arn = queue_arn(clients, &dlq_url).await?;
        let redrive =
            json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count })
                .to_string();
        let attrs = BTreeMap::from([
            (
                QueueAttributeName::VisibilityTimeout,
                q.visibility_timeout_seconds.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ]);
        let url = create_queue(clients, &names.resource(&q.name), attrs).await?;
        out.queue_arns
            .insert(q.name.clone(), queue_arn(clients, &url).await?);
        out.queue_urls.insert(q.name.clone(), url);
        out.dlq_urls.insert(q.name.clone(), dlq_url);
    }

    if names.event_bus != "default" {
        match clients
            .eventbridge
            .create_event_bus()
            .name(&names.event_bus)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => {}
            Err(e) => {
                return Err(aws(format!("event bus {}", names.event_bus))(port_error(
                    "create event bus",
                    e,
                )))
            }
        }
    }
    for rule in spec.rules() {
        let bus = if rule.is_aws_service_rule() {
            "default"
        } else {
            names.event_bus.as_str()
        };
        let rule_name = names.resource(&rule.name);
        let step = format!("rule {rule_name}");
        let put = clients
            .eventbridge
            .put_rule()
            .name(&rule_name)
            .event_bus_name(bus)
            .event_pattern(rule.pattern.as_json().to_string())
            .state(RuleState::Enabled)
            .description(format!("cuepoint: {} -> queue {}", rule.name, rule.queue))
            .send()
            .await
            .map_err(|e| port_error("put rule", e))
            .map_err(aws(&step))?;
        let target = Target::builder()
            .id(format!("{}-queue", rule.queue))
            .arn(&out.queue_arns[&rule.queue])
            .build()
            .map_err(|e| ProvisionError::Routing(format!("rule {}: {e}", rule.name)))?;
        let targets = clients
            .eventbridge
            .put_targets()
            .rule(&rule_name)
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await
            .map_err(|e| port_error("put targets", e))
            .map_err(aws(&step))?;
        if targets.failed_entry_count() > 0 {
            let why: Vec<String> = targets
                .failed_entries()
                .iter()
                .map(|f| {
                    format!(
                        "{} {}",
                        f.error_code().unwrap_or(""),
                        f.error_message().unwrap_or("")
                    )
                })
                .collect();
            return Err(aws(step)(PortError::Permanent(format!(
                "target refused: {}",
                why.join("; ")
            ))));
        }
        out.rule_arns.insert(
            rule.name.clone(),
            put.rule_arn().unwrap_or_default().to_string(),
        );
    }

    for topic in spec.topics() {
        let step = format!("topic {}", names.resource(&topic.name));
        let arn = clients
            .sns
            .create_topic()
            .name(names.resource(&topic.name))
            .send()
            .await
            .map_err(|e| port_error("create topic", e))
            .map_err(aws(&step))?
            .topic_arn()
            .unwrap_or_default()
            .to_string();
        clients
            .sns
            .subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(&out.queue_arns[&topic.queue])
            .attributes("RawMessageDelivery", topic.raw_message_delivery.to_string())
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| port_error("subscribe", e))
            .map_err(aws(&step))?;
        out.topic_arns.insert(topic.name.clone(), arn);
    }
    out.topic_arn = out
        .topic_arns
        .get("rekognition")
        .or_else(|| {
            spec.topics()
                .first()
                .and_then(|t| out.topic_arns.get(&t.name))
        })
        .cloned()
        .unwrap_or_default();

    // Who may send to each queue: the rules and topics that target it, nobody else.
    for q in spec.queues() {
        let rule_arns: Vec<&String> = spec
            .rules()
            .iter()
            .filter(|r| r.queue == q.name)
            .filter_map(|r| out.rule_arns.get(&r.name))
            .collect();
        let topic_arns: Vec<&String> = spec
            .topics()
            .iter()
            .filter(|t| t.queue == q.name)
            .filter_map(|t| out.topic_arns.get(&t.name))
            .collect();
        let policy = queue_policy(&out.queue_arns[&q.name], &rule_arns, &topic_arns);
        if let Some(policy) = policy {
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(&out.queue_urls[&q.name])
                .attributes(QueueAttributeName::Policy, policy.to_string())
                .send()
                .await
                .map_err(|e| port_error("set queue policy", e))
                .map_err(aws(format!("policy of queue {}", q.name)))?;
        }
    }
    Ok(out)
}

/// The queue policy letting EventBridge rules and SNS topics (by ARN) send to a queue.
pub fn queue_policy(
    queue_arn: &str,
    rule_arns: &[&String],
    topic_arns: &[&String],
) -> Option<Value> {
    let mut statements = Vec::new();
    if !rule_arns.is_empty() {
        statements.push(json!({
            "Sid": "EventBridgeRules",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": rule_arns } }
        }));
    }
    if !topic_arns.is_empty() {
        statements.push(json!({
            "Sid": "SnsTopics",
            "Effect": "Allow",
            "Principal": { "Service": "sns.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": topic_arns } }
        }));
    }
    (!statements.is_empty()).then(|| json!({ "Version": "2012-10-17", "Statement": statements }))
}

async fn create_queue(
    clients: &AwsClients,
    name: &str,
    mut attrs: BTreeMap<QueueAttributeName, String>,
) -> Result<String, ProvisionError> {
    attrs.insert(
        QueueAttributeName::MessageRetentionPeriod,
        RETENTION_SECONDS.to_string(),
    );
    let step = format!("queue {name}");
    let created = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attrs.clone().into_iter().collect()))
        .send()
        .await;
    match created {
        Ok(out) => Ok(out.queue_url().unwrap_or_default().to_string()),
        // Exists with other attributes: converge them.
        Err(e)
            if error_code(&e).is_some_and(|c| {
                c.contains("QueueAlreadyExists") || c.contains("QueueNameExists")
            }) =>
        {
            let url = clients
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| port_error("get queue url", e))
                .map_err(aws(&step))?
                .queue_url()
                .unwrap_or_default()
                .to_string();
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attrs.into_iter().collect()))
                .send()
                .await
                .map_err(|e| port_error("set queue attributes", e))
                .map_err(aws(&step))?;
            Ok(url)
        }
        Err(e) => Err(aws(step)(port_error("create queue", e))),
    }
}

async fn queue_arn(clients: &AwsClients, url: &str) -> Result<String, ProvisionError> {
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| port_error("get queue arn", e))
        .map_err(aws(format!("arn of {url}")))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| {
            aws(format!("arn of {url}"))(PortError::Permanent("no QueueArn attribute".into()))
        })
}

async fn create_table(clients: &AwsClients, table: &str) -> Result<(), ProvisionError> {
    let step = format!("table {table}");
    let db = &clients.dynamodb;
    let created = db
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| ProvisionError::Routing(e.to_string()))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| ProvisionError::Routing(e.to_string()))?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(aws(step)(port_error("create table", e))),
    }
    // TTL can only be set once the table is ACTIVE.
    for _ in 0..120 {
        let out = db
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| port_error("describe table", e))
            .map_err(aws(&step))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ttl = db
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| port_error("describe ttl", e))
        .map_err(aws(&step))?;
    let enabled = ttl.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some("expiresAt")
            && d.time_to_live_status()
                .is_some_and(|s| s.as_str() != "DISABLED")
    });
    if !enabled {
        db.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expiresAt")
                    .enabled(true)
                    .build()
                    .map_err(|e| ProvisionError::Routing(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| port_error("enable ttl", e))
            .map_err(aws(&step))?;
    }
    Ok(())
}

async fn create_bucket(clients: &AwsClients, bucket: &str) -> Result<(), ProvisionError> {
    let region = clients.region().unwrap_or("us-east-1");
    let mut request = clients.s3.create_bucket().bucket(bucket);
    // us-east-1 takes no location constraint (and refuses one).
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) => Err(aws(format!("bucket {bucket}"))(port_error(
            "create bucket",
            e,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTING: &str = include_str!("../../../infra/routing.json");

    #[test]
    fn routing_loads_through_the_core_with_the_names_substituted() {
        let names = ProvisionNames {
            workflow: "wf-1".into(),
            ingest_bucket: "my-ingest".into(),
            ..ProvisionNames::with_prefix("p")
        };
        let spec = load_routing(ROUTING, &names).unwrap();
        // ingest, media, analysis, results, scoring, packaging
        assert_eq!(spec.queues().len(), 6);
        let ingest = spec.rules().iter().find(|r| r.queue == "ingest").unwrap();
        assert_eq!(
            ingest.pattern.as_json()["detail"]["bucket"]["name"][0],
            "my-ingest"
        );
        assert!(ingest.is_aws_service_rule());
        let media = spec.rules().iter().find(|r| r.queue == "media").unwrap();
        assert_eq!(
            media.pattern.as_json()["detail"]["userMetadata"]["workflow"][0],
            "wf-1"
        );
        // The packaging job's completion goes to the packaging worker, the first job's to media.
        let packaging = spec
            .rules()
            .iter()
            .find(|r| r.queue == "packaging" && r.is_aws_service_rule())
            .unwrap();
        assert_eq!(
            packaging.pattern.as_json()["detail"]["userMetadata"]["workflow"][0],
            "wf-1-packaging"
        );
        let pipeline = spec.rules().iter().find(|r| r.queue == "analysis").unwrap();
        assert!(!pipeline.is_aws_service_rule());
        assert_eq!(spec.queue("analysis").unwrap().max_receive_count, 8);
        assert_eq!(spec.topics()[0].queue, "results");
        // A name with JSON's special characters is a value, not JSON.
        let odd = ProvisionNames {
            ingest_bucket: "a\"b".into(),
            ..names
        };
        let spec = load_routing(ROUTING, &odd).unwrap();
        assert_eq!(
            spec.rules()[0].pattern.as_json()["detail"]["bucket"]["name"][0],
            "a\"b"
        );
    }

    #[test]
    fn routing_errors_name_what_is_wrong() {
        let names = ProvisionNames::with_prefix("p");
        let bad = r#"{"queues":[],"rules":[{"name":"r","queue":"nope","pattern":{"source":["x"]}}],"topics":[]}"#;
        let err = load_routing(bad, &names).unwrap_err().to_string();
        assert!(err.contains("unknown queue \"nope\""), "{err}");
        let bad = r#"{"queues":[],"rules":[{"name":"r","queue":"q","pattern":{"source":["${Other}"]}}],"topics":[]}"#;
        let err = load_routing(bad, &names).unwrap_err().to_string();
        assert!(err.contains("${Other}"), "{err}");
    }

    #[test]
    fn queue_policy_limits_senders_by_arn() {
        let rule = "arn:aws:events:us-east-1:1:rule/x".to_string();
        let p = queue_policy("arn:q", &[&rule], &[]).unwrap();
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(
            p["Statement"][0]["Principal"]["Service"],
            "events.amazonaws.com"
        );
        assert_eq!(
            p["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"][0],
            rule.as_str()
        );
        assert!(queue_policy("arn:q", &[], &[]).is_none());
    }
}
