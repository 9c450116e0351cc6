//! The server's HTTP listener (`HAWKEYE_HTTP_ADDR`, off unless set):
//! `GET /metrics` in the Prometheus text format, the server's own counters
//! and every series it holds (docs/protocol.md, "Prometheus").

use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hawkeye_protocol::exposition;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::warn;

use crate::clock::now_secs;
use crate::shared::Shared;

/// Serves `/metrics` until shutdown.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(shared);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "the HTTP listener stopped");
    }
}

/// The page is built on a blocking thread: with many series it takes a
/// while, and the runtime it would otherwise hold serves the connections.
async fn metrics(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
) -> impl IntoResponse {
    let page = tokio::task::spawn_blocking(move || match &shared.exporter {
        Some(exporter) => exporter.render(&shared.stats.snapshot(), now_secs()),
        None => String::new(),
    })
    .await
    .unwrap_or_default();
    ([(CONTENT_TYPE, exposition::CONTENT_TYPE)], page)
}
