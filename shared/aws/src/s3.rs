//! S3 ([`BlobStore`]).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use cuepoint_core::domain::{ObjectKey, S3Uri};
use cuepoint_runtime::ports::{BlobMeta, BlobStore, PortError, PortResult};

use crate::clients::AwsClients;
use crate::error::{port_error, retry_transient};

/// How long a presigned GET URL handed to FFmpeg stays valid.
pub const PRESIGN_VALIDITY: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
}

impl S3BlobStore {
    pub fn new(clients: &AwsClients) -> Self {
        Self {
            client: clients.s3.clone(),
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn get(&self, uri: &S3Uri) -> PortResult<Option<Vec<u8>>> {
        let what = format!("s3 get {uri}");
        retry_transient(&what, || async {
            let out = match self
                .client
                .get_object()
                .bucket(uri.bucket.as_str())
                .key(uri.key.as_str())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                    return Ok(None)
                }
                Err(e) => return Err(port_error(&what, e)),
            };
            // A body cut off mid-stream is worth another try, like any network failure.
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| PortError::Transient(format!("{what}: reading body: {e}")))?;
            Ok(Some(bytes.into_bytes().to_vec()))
        })
        .await
    }

    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>, content_type: &str) -> PortResult<()> {
        let what = format!("s3 put {uri}");
        retry_transient(&what, || async {
            self.client
                .put_object()
                .bucket(uri.bucket.as_str())
                .key(uri.key.as_str())
                .content_type(content_type)
                .body(ByteStream::from(bytes.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| port_error(&what, e))
        })
        .await
    }

    async fn head(&self, uri: &S3Uri) -> PortResult<Option<BlobMeta>> {
        let what = format!("s3 head {uri}");
        retry_transient(&what, || async {
            match self
                .client
                .head_object()
                .bucket(uri.bucket.as_str())
                .key(uri.key.as_str())
                .send()
                .await
            {
                Ok(out) => Ok(Some(BlobMeta {
                    size: out.content_length().unwrap_or(0).max(0) as u64,
                    // HeadObject quotes the ETag; S3 events carry it bare, and the asset id is
                    // derived from it: the same object must give the same id either way.
                    etag: out.e_tag().map(|t| t.trim_matches('"').to_string()),
                })),
                Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                    Ok(None)
                }
                Err(e) => Err(port_error(&what, e)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &S3Uri) -> PortResult<Vec<S3Uri>> {
        let what = format!("s3 list {prefix}");
        let mut uris = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = retry_transient(&what, || async {
                self.client
                    .list_objects_v2()
                    .bucket(prefix.bucket.as_str())
                    .prefix(prefix.key.as_str())
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| port_error(&what, e))
            })
            .await?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let key = ObjectKey::parse(key)
                    .map_err(|e| PortError::Permanent(format!("{what}: {e}")))?;
                uris.push(S3Uri::new(prefix.bucket.clone(), key));
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(uris)
    }

    /// One PutObject streamed from the file (up to S3's 5 GB single-put limit; multipart is
    /// not needed for the media sizes cuepoint handles in tests).
    async fn put_file(&self, uri: &S3Uri, path: &Path, content_type: &str) -> PortResult<()> {
        let what = format!("s3 put {uri} from {}", path.display());
        retry_transient(&what, || async {
            // A fresh stream per attempt: a failed upload consumed the previous one.
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| PortError::Permanent(format!("{what}: {e}")))?;
            self.client
                .put_object()
                .bucket(uri.bucket.as_str())
                .key(uri.key.as_str())
                .content_type(content_type)
                .body(body)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| port_error(&what, e))
        })
        .await
    }

    /// A presigned GET URL valid for an hour (FFmpeg reads it over HTTPS). A missing object is
    /// `NotFound`, as in every `BlobStore`: presigning alone would hand FFmpeg a URL that 404s
    /// and the caller would take the object for unusable media.
    async fn readable_location(&self, uri: &S3Uri) -> PortResult<String> {
        if self.head(uri).await?.is_none() {
            return Err(PortError::NotFound(format!("{uri} does not exist")));
        }
        let what = format!("s3 presign {uri}");
        let config = PresigningConfig::expires_in(PRESIGN_VALIDITY)
            .map_err(|e| PortError::Permanent(format!("{what}: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(uri.bucket.as_str())
            .key(uri.key.as_str())
            .presigned(config)
            .await
            .map_err(|e| port_error(&what, e))?;
        Ok(request.uri().to_string())
    }
}
