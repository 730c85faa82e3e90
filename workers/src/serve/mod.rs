//! `cuepoint serve`: the review app. A JSON API under `/api`, two pages (assets, asset) and the
//! asset's media, all read through the ports, so the same server runs on the embedded backend
//! or on AWS. Embedded, it also keeps the search catalog (SQLite FTS5) from the bus.

pub mod api;
pub mod breaks;
pub mod catalog;
pub mod error;
pub mod insights;
pub mod pages;
pub mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cuepoint_runtime::config::Backend as BackendKind;
use tokio::sync::watch;

use crate::app;
use crate::backend::{self, Backend};
use crate::cli::run::CommonArgs;
use crate::context::WorkerContext;
use crate::handlers::WorkerKind;

use self::catalog::Catalog;
use self::error::ApiError;

/// Name of the cookie a browser keeps the token in after opening `/?token=...` once.
pub const TOKEN_COOKIE: &str = "cuepoint_token";

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; any other address needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Require this bearer token on every API call and page (`Authorization: Bearer T`; a
    /// browser opens `/?token=T` once and keeps it in a cookie). Also CUEPOINT_SERVE_TOKEN.
    #[arg(long)]
    pub token: Option<String>,
    /// Do not run the pipeline's workers in this process (they run elsewhere on the same data).
    /// Always the case on AWS, where the workers are services of their own.
    #[arg(long)]
    pub no_workers: bool,
    /// Largest upload accepted, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub max_upload_mib: u64,
    /// Where `web/install.sh` put the browser libraries (hls.js). Default:
    /// $CUEPOINT_WEB_VENDOR, else $XDG_CACHE_HOME/cuepoint/web or ~/.cache/cuepoint/web.
    #[arg(long)]
    pub web_vendor: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ctx: WorkerContext,
    pub catalog: Option<Arc<Catalog>>,
    pub token: Option<Arc<str>>,
    pub upload_dir: PathBuf,
    pub max_upload_bytes: u64,
    pub vendor_dir: PathBuf,
}

/// The default place of the browser libraries installed by `web/install.sh`.
pub fn default_vendor_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CUEPOINT_WEB_VENDOR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    cache.join("cuepoint").join("web")
}

/// A running server (tests start one on port 0).
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("server task")?
    }
}

/// `cuepoint serve`: run until SIGTERM / Ctrl-C.
pub async fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let stop = cuepoint_runtime::telemetry::shutdown_signal();
    let server = start(args).await?;
    println!("cuepoint review app on http://{}/", server.addr);
    stop.await;
    server.shutdown().await
}

/// Bind, wire the backend, start the workers (unless `--no-workers`) and the catalog, serve.
pub async fn start(args: &ServeArgs) -> anyhow::Result<RunningServer> {
    let from_env = std::env::var("CUEPOINT_SERVE_TOKEN").ok();
    let token = args
        .token
        .as_deref()
        .or(from_env.as_deref())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if !args.bind.ip().is_loopback() && token.is_none() {
        anyhow::bail!("--bind {} is not a loopback address: set --token (or CUEPOINT_SERVE_TOKEN) so the app is not open to the network", args.bind);
    }
    let settings = args.common.settings()?;
    let backend: Backend = backend::build(&settings, false).await?;
    // On AWS the workers are their own ECS services; the app only reads and edits.
    let workers = if args.no_workers || settings.backend == BackendKind::Aws {
        None
    } else {
        if let Some(engine) = &backend.engine {
            engine
                .resume(true, true)
                .await
                .context("resuming unfinished local media jobs")?;
        }
        Some(app::start(
            &backend.ctx,
            &WorkerKind::ALL,
            |q| backend.queue(q),
            false,
        ))
    };
    let catalog = match settings.backend {
        BackendKind::Embedded => {
            let path = settings.data_dir.join("catalog.sqlite");
            Some(Arc::new(Catalog::open(&path).with_context(|| {
                format!("opening the search catalog {}", path.display())
            })?))
        }
        BackendKind::Aws => None,
    };
    let catalog_loop = match (&catalog, backend.try_queue(catalog::QUEUE)) {
        (Some(c), Some(q)) => Some(catalog::start_consumer(&backend.ctx, c.clone(), q)),
        _ => None,
    };
    if let Some(c) = &catalog {
        // Assets completed before the catalog queue existed (or while it was purged).
        let (ctx, c) = (backend.ctx.clone(), c.clone());
        tokio::spawn(async move {
            if let Err(e) = catalog::catch_up(&ctx, &c).await {
                tracing::warn!(error = %e, "catalog catch-up failed");
            }
        });
    }
    let upload_dir = settings.data_dir.join("uploads-incoming");
    std::fs::create_dir_all(&upload_dir)
        .with_context(|| format!("creating {}", upload_dir.display()))?;
    let state = AppState {
        ctx: backend.ctx.clone(),
        catalog,
        token: token.map(Arc::from),
        upload_dir,
        max_upload_bytes: args.max_upload_mib.saturating_mul(1024 * 1024),
        vendor_dir: args.web_vendor.clone().unwrap_or_else(default_vendor_dir),
    };
    if !state.vendor_dir.join(pages::HLS_JS).is_file() {
        tracing::warn!(dir = %state.vendor_dir.display(), "hls.js is not installed: the player needs web/install.sh");
    }
    let router = router(state);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
        if let Some(c) = catalog_loop {
            c.shutdown().await;
        }
        if let Some(w) = workers {
            w.shutdown().await;
        }
        backend.shutdown().await;
        served.context("serving")
    });
    Ok(RunningServer { addr, stop, task })
}

/// Every route, behind the token check.
pub fn router(state: AppState) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .merge(api::routes())
        .merge(pages::routes())
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            ApiError::not_found("no such page or API route (see /api/openapi.json)")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(t.trim().to_string());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The token check: a bearer header or the cookie. A page opened with `?token=T` sets the
/// cookie and redirects to itself without the token in the address bar.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(want) = state.token.clone() else {
        return next.run(req).await;
    };
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    if presented_token(req.headers())
        .is_some_and(|t| constant_time_eq(t.as_bytes(), want.as_bytes()))
    {
        return next.run(req).await;
    }
    let is_api = req.uri().path().starts_with("/api/");
    if !is_api {
        if let Some(q) = req.uri().query() {
            let given = q
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "token")
                .map(|(_, v)| v);
            if given.is_some_and(|t| constant_time_eq(t.as_bytes(), want.as_bytes())) {
                let rest: Vec<&str> = q
                    .split('&')
                    .filter(|kv| !kv.starts_with("token="))
                    .collect();
                let target = if rest.is_empty() {
                    req.uri().path().to_string()
                } else {
                    format!("{}?{}", req.uri().path(), rest.join("&"))
                };
                let cookie = format!("{TOKEN_COOKIE}={want}; Path=/; HttpOnly; SameSite=Strict");
                return ([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response();
            }
        }
        let page = "<!doctype html><meta charset=utf-8><title>cuepoint: token needed</title>\
            <p>This cuepoint server requires a token. Open <code>/?token=YOUR_TOKEN</code> once; \
            the browser keeps it for the session.</p>";
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response();
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <token>)",
    )
    .into_response()
}

#[cfg(test)]
mod tests;
