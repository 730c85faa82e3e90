//! Logging setup and the shutdown signal.

use crate::config::LogFormat;

/// Install the tracing subscriber: JSON lines (with span fields such as asset_id and event_id
/// on every line) for services, compact text for people. `RUST_LOG` overrides the level.
pub fn init(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Text => builder.compact().with_target(false).try_init(),
    };
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). The SIGTERM handler is installed when this is
/// called, not when the future is first polled: a worker that takes it before starting up
/// stops gracefully on a SIGTERM that arrives while it starts (ECS may scale in at any time).
/// Call it inside a Tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
