//! MediaConvert ([`Transcoder`]).
//!
//! ## How our JSON job settings reach MediaConvert
//! The SDK's `JobSettings` is a typed tree of ~1,400 fields with no serde support (only behind
//! the unstable `aws_sdk_unstable` cfg) and no JSON import. Mapping the fields we use by hand
//! would silently drop anything else the settings carry. Instead the request goes through the
//! SDK normally (role, queue, user metadata, idempotency token, signing, retries, errors) with
//! an empty `JobSettings`, and a request mutation placed *before signing* swaps the serialized
//! `settings` member for ours, converted to the wire form by [`settings_to_wire`].
//!
//! The wire form is fixed by the MediaConvert model: every member's JSON name is its name with
//! the first letter lowercased (`OutputGroups` → `outputGroups`; checked over all 1,463
//! structure members of the model), and the only maps inside job settings are the four
//! selector maps of an input, whose keys are user-chosen names (`"Audio Selector 1"`) and must
//! stay as they are. So settings written as the console/CLI show them (PascalCase) and
//! settings already in wire form (camelCase) both arrive correctly.
//!
//! ## Endpoint
//! The regional endpoint (or `AWS_ENDPOINT_URL`), unless `aws.mediaconvert_endpoint` names one.
//! DescribeEndpoints is not called: the SDK marks it deprecated, account-specific endpoints are
//! no longer required.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_mediaconvert::types::{JobSettings, Order};
use aws_smithy_types::body::SdkBody;
use cuepoint_core::domain::AssetId;
use cuepoint_runtime::config::AwsSettings;
use cuepoint_runtime::ports::{PortError, PortResult, TranscodeRequest, Transcoder};
use serde_json::{Map, Value};

use crate::clients::AwsClients;
use crate::error::{port_error, retry_transient};

/// Job settings members whose values are maps keyed by user-chosen names (wire names).
const NAME_KEYED_MAPS: [&str; 4] = [
    "audioSelectors",
    "audioSelectorGroups",
    "captionSelectors",
    "dynamicAudioSelectors",
];

/// How far back `find_job` looks: pages of 20 jobs, newest first.
const FIND_JOB_PAGES: usize = 10;
const FIND_JOB_PAGE_SIZE: i32 = 20;

/// User metadata key carrying the asset id (and matched by `find_job`).
pub const ASSET_ID_KEY: &str = "assetId";

#[derive(Clone, Debug)]
pub struct MediaConvertTranscoder {
    /// Bound to the configured endpoint, if one was given.
    client: aws_sdk_mediaconvert::Client,
    role_arn: String,
    queue: Option<String>,
}

impl MediaConvertTranscoder {
    /// `endpoint`: an explicit MediaConvert endpoint (a legacy account endpoint, or a stand-in);
    /// `None` uses the regional endpoint (or `AWS_ENDPOINT_URL`). DescribeEndpoints is not
    /// called: the SDK deprecates it, account endpoints are no longer required.
    pub fn new(
        clients: &AwsClients,
        role_arn: impl Into<String>,
        queue: Option<String>,
        endpoint: Option<String>,
    ) -> Self {
        let client = match endpoint.filter(|e| !e.is_empty()) {
            Some(url) => aws_sdk_mediaconvert::Client::from_conf(
                clients
                    .mediaconvert
                    .config()
                    .to_builder()
                    .endpoint_url(url)
                    .build(),
            ),
            None => clients.mediaconvert.clone(),
        };
        Self {
            client,
            role_arn: role_arn.into(),
            queue,
        }
    }

    pub fn from_settings(clients: &AwsClients, settings: &AwsSettings) -> Self {
        Self::new(
            clients,
            settings.mediaconvert_role_arn.clone(),
            settings.mediaconvert_queue.clone(),
            settings.mediaconvert_endpoint.clone(),
        )
    }

    fn client(&self) -> &aws_sdk_mediaconvert::Client {
        &self.client
    }
}

/// Convert job settings to MediaConvert's wire JSON (see the module docs).
pub fn settings_to_wire(settings: &Value) -> PortResult<Value> {
    match settings {
        Value::Object(_) => Ok(to_wire(settings, false)),
        other => Err(PortError::Permanent(format!(
            "mediaconvert settings must be a JSON object (Inputs, OutputGroups...), got {}",
            type_name(other)
        ))),
    }
}

fn to_wire(value: &Value, name_keyed: bool) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                let key = if name_keyed {
                    key.clone()
                } else {
                    lower_first(key)
                };
                let child_is_map = !name_keyed && NAME_KEYED_MAPS.contains(&key.as_str());
                out.insert(key, to_wire(v, child_is_map));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| to_wire(v, false)).collect()),
        other => other.clone(),
    }
}

fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Replace the `settings` member of a serialized CreateJob body with `wire_settings`.
pub fn splice_settings(body: &[u8], wire_settings: &Value) -> Option<Vec<u8>> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    request
        .as_object_mut()?
        .insert("settings".into(), wire_settings.clone());
    serde_json::to_vec(&request).ok()
}

/// The user metadata sent with a job: the request's, with `assetId` always set.
pub fn job_metadata(request: &TranscodeRequest) -> HashMap<String, String> {
    let mut meta: HashMap<String, String> = request.user_metadata.clone().into_iter().collect();
    meta.insert(ASSET_ID_KEY.into(), request.asset_id.to_string());
    meta
}

#[async_trait]
impl Transcoder for MediaConvertTranscoder {
    async fn submit(&self, request: &TranscodeRequest) -> PortResult<String> {
        let client = self.client();
        let wire = settings_to_wire(&request.settings)?;
        let what = format!("mediaconvert create job for asset {}", request.asset_id);
        // Retrying here is safe: MediaConvert returns the same job for the same
        // ClientRequestToken, but only within about a minute of the first request. A later
        // retry (a redelivered message, a restarted worker) would create a second job: the
        // ingest handler looks for the asset's job with `find_job` (ListJobs) first.
        let out = retry_transient(&what, || {
            let wire = wire.clone();
            async {
                client
                    .create_job()
                    .role(&self.role_arn)
                    .set_queue(self.queue.clone())
                    .settings(JobSettings::builder().build())
                    .set_user_metadata(Some(job_metadata(request)))
                    .client_request_token(&request.client_token)
                    .customize()
                    .mutate_request(move |http| {
                        let Some(body) = http.body().bytes().and_then(|b| splice_settings(b, &wire)) else {
                            tracing::error!("mediaconvert CreateJob body was not a JSON object; settings not applied");
                            return;
                        };
                        http.headers_mut().insert("content-length", body.len().to_string());
                        *http.body_mut() = SdkBody::from(body);
                    })
                    .send()
                    .await
                    .map_err(|e| port_error(&what, e))
            }
        })
        .await?;
        out.job()
            .and_then(|j| j.id())
            .map(str::to_string)
            .ok_or_else(|| PortError::Permanent(format!("{what}: response carries no job id")))
    }

    async fn find_job(&self, asset_id: &AssetId) -> PortResult<Option<String>> {
        self.find_matching(asset_id, |_| true).await
    }

    async fn find_tagged_job(
        &self,
        asset_id: &AssetId,
        key: &str,
        value: &str,
    ) -> PortResult<Option<String>> {
        self.find_matching(asset_id, |m| m.get(key).map(String::as_str) == Some(value))
            .await
    }
}

impl MediaConvertTranscoder {
    /// The newest job of the asset whose user metadata passes `more`.
    async fn find_matching(
        &self,
        asset_id: &AssetId,
        more: impl Fn(&std::collections::HashMap<String, String>) -> bool,
    ) -> PortResult<Option<String>> {
        let client = self.client();
        let what = format!("mediaconvert list jobs for asset {asset_id}");
        let mut token: Option<String> = None;
        for _ in 0..FIND_JOB_PAGES {
            let page = retry_transient(&what, || async {
                client
                    .list_jobs()
                    .order(Order::Descending)
                    .max_results(FIND_JOB_PAGE_SIZE)
                    .set_queue(self.queue.clone())
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| port_error(&what, e))
            })
            .await?;
            let found = page.jobs().iter().find(|job| {
                job.user_metadata().is_some_and(|m| {
                    m.get(ASSET_ID_KEY).map(String::as_str) == Some(asset_id.as_str()) && more(m)
                })
            });
            if let Some(job) = found {
                return Ok(job.id().map(str::to_string));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::test_http::{test_clients, FakeServer, Reply};

    fn sample_settings() -> Value {
        json!({
            "TimecodeConfig": {"Source": "ZEROBASED"},
            "Inputs": [{
                "FileInput": "s3://ingest/in/my movie.mxf",
                "AudioSelectors": {"Audio Selector 1": {"Tracks": [1], "SelectorType": "TRACK"}},
                "CaptionSelectors": {"Captions EN": {"SourceSettings": {"SourceType": "EMBEDDED"}}}
            }],
            "OutputGroups": [{
                "Name": "HLS",
                "OutputGroupSettings": {"Type": "HLS_GROUP_SETTINGS", "HlsGroupSettings": {"SegmentLength": 1, "MinSegmentLength": 0, "Destination": "s3://out/assets/a1/hls/"}},
                "Outputs": [{"NameModifier": "_720", "AudioDescriptions": [{"AudioSourceName": "Audio Selector 1", "CodecSettings": {"Codec": "AAC", "AacSettings": {"Bitrate": 96000}}}]}]
            }]
        })
    }

    #[test]
    fn settings_convert_to_wire_names_but_keep_selector_names() {
        let wire = settings_to_wire(&sample_settings()).unwrap();
        assert_eq!(wire["timecodeConfig"]["source"], "ZEROBASED");
        let input = &wire["inputs"][0];
        assert_eq!(input["fileInput"], "s3://ingest/in/my movie.mxf");
        assert_eq!(
            input["audioSelectors"]["Audio Selector 1"]["tracks"],
            json!([1])
        );
        assert_eq!(
            input["audioSelectors"]["Audio Selector 1"]["selectorType"],
            "TRACK"
        );
        assert_eq!(
            input["captionSelectors"]["Captions EN"]["sourceSettings"]["sourceType"],
            "EMBEDDED"
        );
        let group = &wire["outputGroups"][0];
        assert_eq!(
            group["outputGroupSettings"]["hlsGroupSettings"]["minSegmentLength"],
            0
        );
        let audio = &group["outputs"][0]["audioDescriptions"][0];
        assert_eq!(
            audio["audioSourceName"], "Audio Selector 1",
            "values are never renamed"
        );
        assert_eq!(audio["codecSettings"]["aacSettings"]["bitrate"], 96000);
        // Already-wire settings pass through unchanged.
        assert_eq!(settings_to_wire(&wire).unwrap(), wire);
        assert!(settings_to_wire(&json!([1])).is_err());
    }

    #[tokio::test]
    async fn create_job_sends_settings_metadata_and_token_through_the_sdk() {
        let server = FakeServer::start(|req| {
            if req.method == "POST" && req.path.starts_with("/2017-08-29/jobs") {
                Reply::json(
                    201,
                    r#"{"job":{"id":"1700000000000-abc123","role":"r","settings":{}}}"#,
                )
            } else {
                Reply::json(404, r#"{"message":"unexpected"}"#)
            }
        });
        let clients = test_clients(&server.url());
        let transcoder = MediaConvertTranscoder::new(
            &clients,
            "arn:aws:iam::1:role/mc",
            Some("arn:q".into()),
            None,
        );
        let request = TranscodeRequest {
            asset_id: AssetId::parse("a0123456789abcdef0123").unwrap(),
            client_token: "a0123456789abcdef0123-transcode".into(),
            settings: sample_settings(),
            user_metadata: BTreeMap::from([("workflow".to_string(), "cuepoint".to_string())]),
        };
        let job_id = transcoder.submit(&request).await.unwrap();
        assert_eq!(job_id, "1700000000000-abc123");

        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(body["role"], "arn:aws:iam::1:role/mc");
        assert_eq!(body["queue"], "arn:q");
        assert_eq!(
            body["clientRequestToken"],
            "a0123456789abcdef0123-transcode"
        );
        assert_eq!(
            body["userMetadata"],
            json!({"assetId": "a0123456789abcdef0123", "workflow": "cuepoint"})
        );
        assert_eq!(
            body["settings"],
            settings_to_wire(&sample_settings()).unwrap()
        );
        // The spliced body is what was signed and sent.
        assert_eq!(
            seen[0].header("content-length"),
            Some(seen[0].body.len().to_string())
        );
        assert!(seen[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")));
    }

    #[tokio::test]
    async fn find_job_matches_asset_metadata_across_pages() {
        let server = FakeServer::start(|req| {
            assert!(req.path.contains("order=DESCENDING"), "{}", req.path);
            if req.path.contains("nextToken=p2") {
                Reply::json(
                    200,
                    r#"{"jobs":[{"id":"job-old","role":"r","settings":{},"userMetadata":{"assetId":"a1","workflow":"cuepoint"}}]}"#,
                )
            } else {
                Reply::json(
                    200,
                    r#"{"jobs":[{"id":"job-other","role":"r","settings":{},"userMetadata":{"assetId":"a2"}}],"nextToken":"p2"}"#,
                )
            }
        });
        let clients = test_clients(&server.url());
        let transcoder = MediaConvertTranscoder::new(&clients, "role", None, None);
        assert_eq!(
            transcoder
                .find_job(&AssetId::parse("a1").unwrap())
                .await
                .unwrap(),
            Some("job-old".into())
        );
        assert_eq!(
            transcoder
                .find_job(&AssetId::parse("a3").unwrap())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn service_errors_are_classified() {
        let server = FakeServer::start(|_| {
            Reply::json(429, r#"{"message":"slow down"}"#)
                .with_header("x-amzn-errortype", "TooManyRequestsException")
        });
        let clients = test_clients(&server.url());
        let transcoder = MediaConvertTranscoder::new(&clients, "role", None, None);
        let err = transcoder
            .find_job(&AssetId::parse("a1").unwrap())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");

        let server = FakeServer::start(|_| {
            Reply::json(400, r#"{"message":"bad role"}"#)
                .with_header("x-amzn-errortype", "BadRequestException")
        });
        let clients = test_clients(&server.url());
        let transcoder = MediaConvertTranscoder::new(&clients, "role", None, None);
        let err = transcoder
            .find_job(&AssetId::parse("a1").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Permanent(_)), "{err}");
    }
}
