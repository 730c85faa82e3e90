//! `POST /api/uploads?name=FILE`: the request body is the media file, streamed to disk (never
//! whole in memory) under a size limit, probed, then put in the ingest bucket and announced as
//! S3 announces an upload ("Object Created"), exactly as `cuepoint ingest` does.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use cuepoint_core::domain::{AssetId, BucketName, ObjectKey, S3Uri};
use cuepoint_core::events::s3::{object_created_entry, ObjectCreated};
use cuepoint_runtime::ports::ProbeError;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::AppState;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadAccepted {
    pub asset_id: String,
    /// Where the file went (`s3://<ingest bucket>/uploads/<name>`).
    pub source: String,
    pub size: u64,
    /// The asset page.
    pub url: String,
}

/// A file name that is safe as an object key and a file name: the last path component, only
/// `[A-Za-z0-9._-]` (others become `_`), no leading dot, at most 100 characters.
pub fn safe_name(given: &str) -> Option<String> {
    let base = given.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    let cleaned: String = cleaned
        .chars()
        .rev()
        .take(100)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!cleaned.is_empty() && cleaned.chars().any(|c| c.is_ascii_alphanumeric())).then_some(cleaned)
}

/// Media types accepted from a browser or script. `application/octet-stream` (what browsers
/// send for .mxf and other types they do not know) is accepted; the probe decides.
pub fn media_type_ok(ct: &str) -> bool {
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("video/")
        || ct.starts_with("audio/")
        || matches!(ct.as_str(), "application/mxf" | "application/octet-stream")
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn accept(
    state: &AppState,
    name: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<UploadAccepted> {
    let name = safe_name(name.unwrap_or("")).ok_or_else(|| {
        ApiError::bad_request("give the file name as ?name=FILE (letters, digits, . - _)")
    })?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !media_type_ok(ct) {
        let shown = if ct.is_empty() { "no Content-Type" } else { ct };
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{shown} is not a media type: upload a video or audio file (video/*, audio/*, application/mxf)"),
        ));
    }
    let limit = state.max_upload_bytes;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the file is larger than the upload limit of {} MiB",
                limit / (1024 * 1024)
            ),
        )
    };
    if let Some(len) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(too_big());
        }
    }
    // One private directory per upload: concurrent uploads of the same name do not collide.
    let dir = state
        .upload_dir
        .join(format!("{}-{}", state.ctx.now_ms(), fastrand::u64(..)));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(format!("upload directory: {e}")))?;
    let guard = TempDir(dir.clone());
    let path = dir.join(&name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(format!("upload file: {e}")))?;
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_big());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    drop(file);
    if size == 0 {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    // Refuse what the pipeline would only fail on, while the person is still looking.
    match state.ctx.ports.prober.probe(&path.to_string_lossy()).await {
        Ok(p) if p.video.is_none() => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{name} has no video stream: cuepoint needs a video"),
            ))
        }
        Ok(_) => {}
        Err(ProbeError::Unusable(why)) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{name} is not usable media: {why}"),
            ))
        }
        Err(ProbeError::Port(e)) => return Err(e.into()),
    }
    let ctx = &state.ctx;
    let bucket = BucketName::parse(ctx.settings.ingest_bucket.clone())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let uri = free_key(state, &bucket, &name).await?;
    ctx.ports
        .blobs
        .put_file(
            &uri,
            &path,
            if ct.is_empty() {
                "application/octet-stream"
            } else {
                ct
            },
        )
        .await?;
    drop(guard);
    let head = ctx
        .ports
        .blobs
        .head(&uri)
        .await?
        .ok_or_else(|| ApiError::internal("the uploaded object vanished"))?;
    let mut created = ObjectCreated::new(bucket, uri.key.clone());
    created.size = Some(head.size);
    created.etag = head.etag.clone();
    let id = AssetId::for_source(&created.source_object());
    // S3 announces uploads itself on AWS (and refuses `aws.*` sources from anyone else); the
    // embedded blob store does not, so the app announces as `cuepoint ingest` does.
    if ctx.settings.backend == cuepoint_runtime::config::Backend::Embedded {
        ctx.ports
            .bus
            .put_events(&[object_created_entry(&created, Some(ctx.now_ms()))])
            .await?;
    }
    tracing::info!(asset_id = %id, source = %uri, size, "uploaded from the web");
    Ok(UploadAccepted {
        asset_id: id.to_string(),
        source: uri.to_string(),
        size,
        url: format!("/assets/{id}"),
    })
}

/// `uploads/<name>`, or `uploads/<stem>-2.<ext>`... when that key is taken: a new upload never
/// replaces the source of an existing asset.
async fn free_key(state: &AppState, bucket: &BucketName, name: &str) -> ApiResult<S3Uri> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.to_string(), String::new()),
    };
    for n in 1..1000 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            format!("{stem}-{n}{ext}")
        };
        let key = ObjectKey::parse(format!("uploads/{candidate}"))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let uri = S3Uri::new(bucket.clone(), key);
        if state.ctx.ports.blobs.head(&uri).await?.is_none() {
            return Ok(uri);
        }
    }
    Err(ApiError::conflict(format!("too many uploads named {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_name("clip.mov").as_deref(), Some("clip.mov"));
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            safe_name("C:\\films\\my film (1).mxf").as_deref(),
            Some("my_film__1_.mxf")
        );
        assert_eq!(safe_name(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(safe_name("..").as_deref(), None);
        assert_eq!(safe_name("").as_deref(), None);
        assert_eq!(safe_name("film/").as_deref(), None);
        assert_eq!(safe_name(&"a".repeat(300)).map(|s| s.len()), Some(100));
    }

    #[test]
    fn media_types() {
        assert!(media_type_ok("video/mp4"));
        assert!(media_type_ok("video/quicktime; charset=binary"));
        assert!(media_type_ok("application/octet-stream"));
        assert!(!media_type_ok("text/plain"));
        assert!(!media_type_ok("image/png"));
        assert!(!media_type_ok(""));
    }
}
