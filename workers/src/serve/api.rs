//! The JSON API under `/api`: what the pages use and scripts can call. Every error is
//! `{"message", "status"}`; `/api/openapi.json` describes it all (generated with utoipa).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use cuepoint_core::asset::Asset;
use cuepoint_core::domain::AssetId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::breaks::{self, BreaksEdit, BreaksView};
use super::catalog::{self, SearchResults};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::insights::{self, Insights, Timeline};
use super::upload::{self, UploadAccepted};
use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "cuepoint review API", description = "Assets, their breaks (read and edit), search, uploads. Errors are {message, status}."),
    paths(list_assets, get_asset, get_breaks, put_breaks, get_timeline, get_insights, search, upload),
    components(schemas(ErrorBody, AssetRow, AssetDetail, ResultLinks, BreaksView, BreaksEdit, Timeline, Insights, SearchResults, UploadAccepted)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/openapi.json",
            get(|| async { Json(ApiDoc::openapi()) }),
        )
        .route("/api/assets", get(list_assets))
        .route("/api/assets/{id}", get(get_asset))
        .route("/api/assets/{id}/breaks", get(get_breaks).put(put_breaks))
        .route("/api/assets/{id}/timeline", get(get_timeline))
        .route("/api/assets/{id}/insights", get(get_insights))
        .route("/api/search", get(search))
        .route("/api/uploads", post(upload))
        .route(
            "/api/{*rest}",
            get(not_found)
                .post(not_found)
                .put(not_found)
                .delete(not_found),
        )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route (see /api/openapi.json)")
}

/// One asset in the list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssetRow {
    pub id: String,
    pub name: String,
    pub source: String,
    pub state: String,
    pub duration: Option<f64>,
    /// `mono`, `2.0`, `5.1`... as the media stage found it.
    pub layout: Option<String>,
    pub audio_tracks: Option<usize>,
    /// 1-based tracks without sound.
    pub silent_tracks: Vec<u32>,
    pub breaks: usize,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Failed assets: the stage and the cause.
    pub failed_stage: Option<String>,
    pub failure: Option<String>,
    /// VMAP version of the breaks (1: as scored).
    pub vmap_version: u32,
}

impl AssetRow {
    pub fn of(a: &Asset) -> Self {
        let audio = a.audio.as_ref();
        Self {
            id: a.id.to_string(),
            name: catalog::asset_name(a),
            source: a.source.uri().to_string(),
            state: a.state.to_string(),
            duration: a.probe.as_ref().map(|p| p.duration_seconds),
            layout: audio.map(|x| {
                serde_json::to_value(x.layout)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }),
            audio_tracks: audio.map(|x| x.audiocount),
            silent_tracks: audio
                .map(|x| {
                    x.loudnessmap
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| **m == 0)
                        .map(|(i, _)| i as u32 + 1)
                        .collect()
                })
                .unwrap_or_default(),
            breaks: a.breaks.len(),
            created_at_ms: a.created_at_ms,
            updated_at_ms: a.updated_at_ms,
            failed_stage: a.failure.as_ref().map(|f| f.stage.to_string()),
            failure: a.failure.as_ref().map(|f| f.reason.clone()),
            vmap_version: a.vmap_version(),
        }
    }
}

/// Links to an asset's outputs, served by this app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultLinks {
    pub prefix: String,
    pub hls: Option<String>,
    pub vmap: Option<String>,
    pub timeline_svg: String,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssetDetail {
    pub asset: AssetRow,
    /// The stored record as it is (see the README's results layout).
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    pub results: ResultLinks,
}

fn parse_id(id: &str) -> ApiResult<AssetId> {
    AssetId::parse(id).map_err(|_| {
        ApiError::bad_request("invalid asset id: expected 1-64 characters of [A-Za-z0-9_-]")
    })
}

async fn load(state: &AppState, id: &str) -> ApiResult<Asset> {
    let id = parse_id(id)?;
    state
        .ctx
        .ports
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no asset {id}")))
}

#[utoipa::path(get, path = "/api/assets", responses((status = 200, body = [AssetRow]), (status = 401, body = ErrorBody)))]
async fn list_assets(State(state): State<AppState>) -> ApiResult<Json<Vec<AssetRow>>> {
    let mut assets = state.ctx.ports.store.list().await?;
    assets.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(a.id.cmp(&b.id)));
    Ok(Json(assets.iter().map(AssetRow::of).collect()))
}

#[utoipa::path(get, path = "/api/assets/{id}", params(("id" = String, Path)),
    responses((status = 200, body = AssetDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_asset(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AssetDetail>> {
    let asset = load(&state, &id).await?;
    let prefix = state.ctx.results_prefix(&asset.id);
    let base = prefix.key.as_str().to_string();
    let files = state
        .ctx
        .ports
        .blobs
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|u| u.key.as_str().strip_prefix(&base).map(str::to_string))
        .filter(|rel| {
            super::pages::servable(rel) && !rel.starts_with("hls/") && !rel.starts_with("proxy/")
        })
        .map(|rel| format!("/media/{}/{rel}", asset.id))
        .collect();
    let media = |rel: &str| format!("/media/{}/{rel}", asset.id);
    let results = ResultLinks {
        prefix: prefix.to_string(),
        hls: asset
            .results
            .hls_master
            .as_ref()
            .map(|_| media(cuepoint_core::results::HLS_MASTER)),
        vmap: asset
            .results
            .vmap
            .as_ref()
            .map(|_| media(cuepoint_core::results::VMAP)),
        timeline_svg: media(cuepoint_core::results::TIMELINE),
        files,
    };
    Ok(Json(AssetDetail {
        asset: AssetRow::of(&asset),
        record: serde_json::to_value(&asset).map_err(|e| ApiError::internal(e.to_string()))?,
        results,
    }))
}

#[utoipa::path(get, path = "/api/assets/{id}/breaks", params(("id" = String, Path)),
    responses((status = 200, body = BreaksView), (status = 404, body = ErrorBody)))]
async fn get_breaks(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BreaksView>> {
    let asset = load(&state, &id).await?;
    // A crash between an edit's write and its VMAP/event: finish it now (idempotent).
    if let Some(edit) = asset.edits.last() {
        if state.ctx.ports.blobs.head(&edit.vmap).await?.is_none() {
            breaks::publish(&state.ctx, &asset).await?;
        }
    }
    Ok(Json(breaks::view(&state.ctx, &asset).await?))
}

#[utoipa::path(put, path = "/api/assets/{id}/breaks", params(("id" = String, Path)), request_body = BreaksEdit,
    responses((status = 200, body = BreaksView, description = "saved as a new VMAP version"),
        (status = 400, body = ErrorBody, description = "a break outside the programme, two breaks closer than 1 s"),
        (status = 409, body = ErrorBody, description = "the asset is FAILED or still in the pipeline, or the breaks changed since `version`")))]
async fn put_breaks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<BreaksEdit>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<BreaksView>> {
    let Json(edit) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"version\": N, \"breaks\": [{{\"timestamp\": seconds}}]}}: {}",
            e.body_text()
        ))
    })?;
    let asset = load(&state, &id).await?;
    let saved = breaks::save(&state.ctx, &asset, &edit).await?;
    Ok(Json(breaks::view(&state.ctx, &saved).await?))
}

#[utoipa::path(get, path = "/api/assets/{id}/timeline", params(("id" = String, Path)), responses((status = 200, body = Timeline), (status = 404, body = ErrorBody)))]
async fn get_timeline(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Timeline>> {
    let asset = load(&state, &id).await?;
    Ok(Json(insights::timeline(&state.ctx, &asset).await?))
}

#[utoipa::path(get, path = "/api/assets/{id}/insights", params(("id" = String, Path)), responses((status = 200, body = Insights), (status = 404, body = ErrorBody)))]
async fn get_insights(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Insights>> {
    let asset = load(&state, &id).await?;
    Ok(Json(insights::insights(&state.ctx, &asset.id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchQuery {
    /// Words: labels, persons, transcript words, moderation labels, file names.
    pub q: String,
    /// At most this many hits (default 100).
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/search", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody), (status = 501, body = ErrorBody, description = "no catalog on this backend")))]
async fn search(
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let Some(catalog) = state.catalog.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "search needs the embedded catalog; this server runs on AWS without one (docs/review-app.md)",
        ));
    };
    if catalog::fts_query(&q.q).is_none() {
        return Err(ApiError::bad_request(
            "type at least one word to search for",
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let text = q.q.clone();
    let results = tokio::task::spawn_blocking(move || catalog.search(&text, limit))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(results))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The file's name (made path-safe).
    pub name: Option<String>,
}

#[utoipa::path(post, path = "/api/uploads", params(UploadQuery), request_body(content = Vec<u8>, content_type = "video/*", description = "the media file as the body"),
    responses((status = 202, body = UploadAccepted, description = "uploaded and announced: the pipeline starts"),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody, description = "larger than --max-upload-mib"),
        (status = 415, body = ErrorBody, description = "not a media type, or not usable media")))]
async fn upload(
    State(state): State<AppState>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> impl IntoResponse {
    match upload::accept(&state, q.name.as_deref(), &headers, body).await {
        Ok(a) => (StatusCode::ACCEPTED, Json(a)).into_response(),
        Err(e) => e.into_response(),
    }
}
