//! The pages (plain HTML + JavaScript, compiled into the binary), hls.js (installed by
//! `web/install.sh` from its npm package, read from the vendor directory), and an asset's media
//! and result files, read through the blob port.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cuepoint_core::domain::AssetId;

use super::error::ApiError;
use super::AppState;

/// The hls.js build the pages load (from the npm package's `dist/`).
pub const HLS_JS: &str = "hls.min.js";

const INDEX_HTML: &str = include_str!("../../web/index.html");
const ASSET_HTML: &str = include_str!("../../web/asset.html");
const APP_CSS: &str = include_str!("../../web/app.css");
const COMMON_JS: &str = include_str!("../../web/common.js");
const ASSETS_JS: &str = include_str!("../../web/assets.js");
const ASSET_JS: &str = include_str!("../../web/asset.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { html(INDEX_HTML) }))
        .route("/assets/{id}", get(|| async { html(ASSET_HTML) }))
        .route("/static/{file}", get(static_file))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/vendor/{file}", get(vendor_file))
        .route("/media/{id}/{*path}", get(media_file))
}

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "common.js" => (COMMON_JS, "text/javascript; charset=utf-8"),
        "assets.js" => (ASSETS_JS, "text/javascript; charset=utf-8"),
        "asset.js" => (ASSET_JS, "text/javascript; charset=utf-8"),
        _ => return ApiError::not_found(format!("no static file {file:?}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn vendor_file(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    // One known file name: nothing from the request reaches the file system.
    if file != HLS_JS {
        return ApiError::not_found(format!("no vendor file {file:?}")).into_response();
    }
    let path = state.vendor_dir.join(HLS_JS);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            bytes,
        )
            .into_response(),
        Err(_) => {
            let msg = format!(
                "hls.js is not installed on this server ({} is missing): run web/install.sh, or start cuepoint serve with --web-vendor DIR\n",
                path.display()
            );
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                msg,
            )
                .into_response()
        }
    }
}

/// Whether `rel` may be served from an asset's results folder: relative, no `.`/`..`/empty
/// segments, no backslashes or control characters, and under a known part of the layout.
pub fn servable(rel: &str) -> bool {
    if rel.is_empty()
        || rel.len() > 256
        || rel.starts_with('/')
        || rel.contains('\\')
        || rel.chars().any(|c| c.is_control())
    {
        return false;
    }
    let segments: Vec<&str> = rel.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.starts_with('.'))
    {
        return false;
    }
    let ok_chars = rel
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    let allowed_dir = matches!(segments[0], "hls" | "vmap" | "loudness" | "proxy");
    let allowed_top = segments.len() == 1
        && (rel.ends_with(".json")
            || rel == cuepoint_core::results::VMAP
            || rel == cuepoint_core::results::TIMELINE);
    ok_chars && (allowed_dir || allowed_top)
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "aac" => "audio/aac",
        "json" => "application/json",
        "vmap" | "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "csv" => "text/csv",
        _ => "application/octet-stream",
    }
}

async fn media_file(
    State(state): State<AppState>,
    Path((id, rel)): Path<(String, String)>,
) -> Response {
    let Ok(id) = AssetId::parse(id) else {
        return ApiError::bad_request("invalid asset id").into_response();
    };
    if !servable(&rel) {
        return ApiError::bad_request(format!("{rel:?} is not a file of the results layout"))
            .into_response();
    }
    let uri = match state.ctx.results_prefix(&id).join(&rel) {
        Ok(u) => u,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    match state.ctx.ports.blobs.get(&uri).await {
        Ok(Some(bytes)) => (
            [
                (header::CONTENT_TYPE, content_type(&rel)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => ApiError::not_found(format!("asset {id} has no {rel}")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::servable;

    #[test]
    fn only_layout_files_are_servable() {
        for ok in [
            "hls/index.m3u8",
            "hls/segment_00001.ts",
            "labels.json",
            "ad_breaks.vmap",
            "vmap/v2.vmap",
            "timeline.svg",
        ] {
            assert!(servable(ok), "{ok}");
        }
        for bad in [
            "../x",
            "hls/../../etc/passwd",
            "/etc/passwd",
            "hls//a",
            "./labels.json",
            "hls\\..\\x",
            ".env",
            "hls/.hidden",
            "secret.txt",
            "blobs/x.json",
            "hls/a%2f..",
            "",
            "labels.json\0",
        ] {
            assert!(!servable(bad), "{bad:?}");
        }
    }
}
