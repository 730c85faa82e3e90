//! Placeholder ad creatives of the built-in inventory: generated with FFmpeg the first time a
//! VMAP names one, and kept under the output bucket (`ads/`), so the default VMAPs point at files
//! cuepoint wrote instead of at a third party's CDN.

use cuepoint_core::domain::S3Uri;
use cuepoint_runtime::consumer::HandlerError;

use crate::context::WorkerContext;

static GENERATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static GENERATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Make sure the placeholder at `uri` exists. Generating it is best effort: without FFmpeg the
/// VMAP still names it and a warning says why the file is missing.
pub async fn ensure(ctx: &WorkerContext, uri: &S3Uri) -> Result<(), HandlerError> {
    if ctx.ports.blobs.head(uri).await?.is_some() {
        return Ok(());
    }
    // A burst of assets reaches scoring together: one handler of this process generates while
    // the others wait for it and then find the file (an FFmpeg encode each, of the same file,
    // cost more than the rest of the pipeline's orchestration).
    let _one_at_a_time = GENERATING.lock().await;
    if ctx.ports.blobs.head(uri).await?.is_some() {
        return Ok(());
    }
    let name = uri
        .key
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or("ad.mp4")
        .to_string();
    // Unique per call: another process may be generating the same creative.
    let tmp = std::env::temp_dir().join(format!(
        "cuepoint-creative-{}-{}-{}",
        std::process::id(),
        GENERATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        name
    ));
    let generated = cuepoint_engine::placeholder::generate_placeholder_ad(&name, &tmp).await;
    let result = match generated {
        Ok(()) => ctx
            .ports
            .blobs
            .put_file(uri, &tmp, "video/mp4")
            .await
            .map_err(HandlerError::from),
        Err(e) => {
            tracing::warn!(creative = %uri, error = %e, "could not generate the placeholder ad creative");
            Ok(())
        }
    };
    let _ = std::fs::remove_file(&tmp);
    result
}
