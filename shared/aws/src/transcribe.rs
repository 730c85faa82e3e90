//! Amazon Transcribe ([`Transcriber`]).
//!
//! StartTranscriptionJob writes the transcript into the results layout (`OutputBucketName` +
//! `OutputKey`); completion arrives as the EventBridge "Transcribe Job State Change" event
//! (nothing polls); GetTranscriptionJob then says where the transcript is, or why the job failed.

use async_trait::async_trait;
use aws_sdk_transcribe::types::{Media, TranscriptionJobStatus};
use cuepoint_core::domain::S3Uri;
use cuepoint_runtime::ports::{
    PortError, PortResult, Transcriber, TranscriptionJob, TranscriptionRequest, TranscriptionStatus,
};

use crate::clients::AwsClients;
use crate::error::{error_code, port_error, retry_transient};

#[derive(Clone, Debug)]
pub struct TranscribeTranscriber {
    client: aws_sdk_transcribe::Client,
}

impl TranscribeTranscriber {
    pub fn new(clients: &AwsClients) -> Self {
        Self {
            client: clients.transcribe.clone(),
        }
    }
}

#[async_trait]
impl Transcriber for TranscribeTranscriber {
    async fn start(&self, request: &TranscriptionRequest) -> PortResult<String> {
        let c = &self.client;
        let what = format!("transcribe start {} on {}", request.job_name, request.media);
        retry_transient(&what, || {
            let what = what.as_str();
            async move {
                let sent = c
                    .start_transcription_job()
                    .transcription_job_name(&request.job_name)
                    .media(Media::builder().media_file_uri(request.media.to_string()).build())
                    // Programmes are in any language: let Transcribe identify it.
                    .identify_language(true)
                    .output_bucket_name(request.output.bucket.as_str())
                    .output_key(request.output.key.as_str())
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(request.job_name.clone()),
                    // Transcribe has no client token: the job name is the idempotency key, and
                    // a ConflictException means this asset's job was already started (by a
                    // redelivered message, or before a crash).
                    Err(e) if error_code(&e) == Some("ConflictException") => {
                        tracing::info!(job = %request.job_name, "transcription job already started");
                        Ok(request.job_name.clone())
                    }
                    Err(e) => Err(port_error(what, e)),
                }
            }
        })
        .await
    }

    async fn get(&self, job_name: &str) -> PortResult<TranscriptionJob> {
        let c = &self.client;
        let what = format!("transcribe get {job_name}");
        let out = retry_transient(&what, || {
            let what = what.as_str();
            async move {
                c.get_transcription_job()
                    .transcription_job_name(job_name)
                    .send()
                    .await
                    .map_err(|e| port_error(what, e))
            }
        })
        .await?;
        let job = out.transcription_job.ok_or_else(|| {
            PortError::Permanent(format!("{what}: response carries no TranscriptionJob"))
        })?;
        let status = match job.transcription_job_status {
            Some(TranscriptionJobStatus::Completed) => TranscriptionStatus::Completed,
            Some(TranscriptionJobStatus::Failed) => TranscriptionStatus::Failed,
            _ => TranscriptionStatus::InProgress,
        };
        let transcript = job
            .transcript
            .and_then(|t| t.transcript_file_uri)
            .map(|u| {
                s3_uri_of(&u).ok_or_else(|| {
                    PortError::Permanent(format!(
                        "{what}: TranscriptFileUri {u:?} is not an S3 object URL"
                    ))
                })
            })
            .transpose()?;
        Ok(TranscriptionJob {
            job_name: job_name.to_string(),
            status,
            failure_reason: job.failure_reason,
            transcript,
            speech: None,
        })
    }
}

/// The S3 object a `TranscriptFileUri` names: `https://s3.<region>.amazonaws.com/<bucket>/<key>`
/// (what Transcribe returns with `OutputBucketName`), the virtual-hosted form, or `s3://`.
pub fn s3_uri_of(url: &str) -> Option<S3Uri> {
    if url.starts_with("s3://") {
        return S3Uri::parse(url).ok();
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or("");
    let (bucket, key) =
        if host.starts_with("s3.") || host.starts_with("s3-") || !host.contains(".s3") {
            // path style (also an emulator's host:port)
            path.split_once('/')?
        } else {
            (host.split(".s3").next()?, path)
        };
    S3Uri::parse(&format!("s3://{bucket}/{}", percent_decode(key)?)).ok()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_http::{FakeServer, Reply};
    use cuepoint_core::domain::AssetId;
    use serde_json::{json, Value};

    fn transcriber(server: &FakeServer) -> TranscribeTranscriber {
        TranscribeTranscriber::new(&crate::test_http::test_clients(&server.url()))
    }

    fn request() -> TranscriptionRequest {
        TranscriptionRequest {
            job_name: "cuepoint-a0123456789abcdef0123".into(),
            asset_id: AssetId::parse("a0123456789abcdef0123").unwrap(),
            source: S3Uri::parse("s3://in-bucket/masters/show.mxf").unwrap(),
            media: S3Uri::parse("s3://out-bucket/assets/a0123456789abcdef0123/proxy/proxy.mp4").unwrap(),
            audio_track: 2,
            speech_tracks: vec![1, 2],
            output: S3Uri::parse(
                "s3://out-bucket/assets/a0123456789abcdef0123/transcribe/cuepoint-a0123456789abcdef0123.json",
            )
            .unwrap(),
        }
    }

    /// The request as the SDK (generated from Transcribe's service model) serializes it: the
    /// operation, and every member cuepoint sets, under the model's names.
    #[tokio::test]
    async fn start_request_matches_the_service_model() {
        let server = FakeServer::start(|_| {
            Reply::json(
                200,
                r#"{"TranscriptionJob":{"TranscriptionJobName":"cuepoint-a0123456789abcdef0123","TranscriptionJobStatus":"QUEUED"}}"#,
            )
        });
        let t = transcriber(&server);
        assert_eq!(
            t.start(&request()).await.unwrap(),
            "cuepoint-a0123456789abcdef0123"
        );
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.header("x-amz-target").unwrap(),
            "Transcribe.StartTranscriptionJob"
        );
        assert_eq!(
            req.header("content-type").unwrap(),
            "application/x-amz-json-1.1"
        );
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            json!({
                "TranscriptionJobName": "cuepoint-a0123456789abcdef0123",
                "Media": {"MediaFileUri": "s3://out-bucket/assets/a0123456789abcdef0123/proxy/proxy.mp4"},
                "IdentifyLanguage": true,
                "OutputBucketName": "out-bucket",
                "OutputKey": "assets/a0123456789abcdef0123/transcribe/cuepoint-a0123456789abcdef0123.json",
            })
        );
    }

    #[tokio::test]
    async fn a_job_already_started_is_found_not_refused() {
        let server = FakeServer::start(|_| {
            Reply::json(
                400,
                r#"{"__type":"ConflictException","Message":"The requested job name already exists. Use a different job name."}"#,
            )
        });
        let t = transcriber(&server);
        assert_eq!(
            t.start(&request()).await.unwrap(),
            "cuepoint-a0123456789abcdef0123"
        );
        assert_eq!(
            server.requests().len(),
            1,
            "a conflict is an answer, not retried"
        );
    }

    #[tokio::test]
    async fn bad_requests_are_permanent() {
        let server = FakeServer::start(|_| {
            Reply::json(
                400,
                r#"{"__type":"BadRequestException","Message":"The S3 URI that you provided can't be accessed."}"#,
            )
        });
        let e = transcriber(&server).start(&request()).await.unwrap_err();
        assert!(
            matches!(e, PortError::Permanent(ref m) if m.contains("can't be accessed")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn get_reads_status_reason_and_transcript_location() {
        let server = FakeServer::start(|req| {
            assert_eq!(
                req.header("x-amz-target").unwrap(),
                "Transcribe.GetTranscriptionJob"
            );
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            match body["TranscriptionJobName"].as_str().unwrap() {
                "done" => Reply::json(
                    200,
                    r#"{"TranscriptionJob":{"TranscriptionJobName":"done","TranscriptionJobStatus":"COMPLETED",
                    "Transcript":{"TranscriptFileUri":"https://s3.us-west-2.amazonaws.com/out-bucket/assets/a1/transcribe/done.json"}}}"#,
                ),
                _ => Reply::json(
                    200,
                    r#"{"TranscriptionJob":{"TranscriptionJobName":"bad","TranscriptionJobStatus":"FAILED",
                    "FailureReason":"The media format that you specified doesn't match the detected media format."}}"#,
                ),
            }
        });
        let t = transcriber(&server);
        let done = t.get("done").await.unwrap();
        assert_eq!(done.status, TranscriptionStatus::Completed);
        assert_eq!(
            done.transcript.unwrap().to_string(),
            "s3://out-bucket/assets/a1/transcribe/done.json"
        );
        assert_eq!(
            done.speech, None,
            "Transcribe measures no speech activity: it comes from word times"
        );
        let bad = t.get("bad").await.unwrap();
        assert_eq!(bad.status, TranscriptionStatus::Failed);
        assert!(bad.failure_reason.unwrap().contains("media format"));
        assert_eq!(bad.transcript, None);
    }

    #[test]
    fn transcript_urls_name_their_objects() {
        let want = "s3://out-bucket/assets/a1/transcribe/j.json";
        for url in [
            "https://s3.us-west-2.amazonaws.com/out-bucket/assets/a1/transcribe/j.json",
            "https://out-bucket.s3.us-west-2.amazonaws.com/assets/a1/transcribe/j.json",
            "https://s3.amazonaws.com/out-bucket/assets/a1/transcribe/j.json?X-Amz-Signature=x",
            "http://localhost:4566/out-bucket/assets/a1/transcribe/j.json",
            "s3://out-bucket/assets/a1/transcribe/j.json",
        ] {
            assert_eq!(
                s3_uri_of(url).map(|u| u.to_string()).as_deref(),
                Some(want),
                "{url}"
            );
        }
        assert_eq!(
            s3_uri_of("https://s3.amazonaws.com/b-1/my%20file.json")
                .unwrap()
                .key
                .as_str(),
            "my file.json"
        );
        assert!(s3_uri_of("ftp://x/y").is_none());
        assert!(s3_uri_of("https://s3.amazonaws.com/").is_none());
    }
}
