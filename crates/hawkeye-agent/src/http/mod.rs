//! The agent's own HTTP endpoint (`AGENT_HTTP_ADDR`, off when unset):
//! `/` a status page of every monitor and trigger, `/api/alerts` the same
//! states as JSON, `/metrics` the agent's counters in Prometheus text
//! format. Everything is read from the store (the alert states the agents
//! write, the metrics through range reads), never from a server, so any
//! agent sharing a store shows the same page (docs/status-page.md).

pub mod alerts;
mod metrics;
mod page;
mod source;
mod svg;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hawkeye_store::StoreError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::AgentError;
use crate::scheduler::wall_clock_ms;

pub use alerts::{alert_rows, AlertRow};
pub use source::StatusSource;

/// The endpoint, serving until dropped or [`HttpServer::stop`]ped.
pub struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Listens on `addr` (port 0: any free port, see [`HttpServer::addr`])
    /// and serves `source`.
    pub async fn start(addr: SocketAddr, source: StatusSource) -> Result<HttpServer, AgentError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Http { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| AgentError::Http { addr, source })?;
        let app = Router::new()
            .route("/", get(status_page))
            .route("/api/alerts", get(api_alerts))
            .route("/metrics", get(metrics))
            .with_state(source);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the status endpoint stopped");
            }
        });
        tracing::info!(%addr, "status page and /metrics listening");
        Ok(HttpServer { addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A store that does not answer: the page says so (503) instead of
/// showing stale or empty states.
fn unavailable(e: StoreError) -> Response {
    tracing::warn!(error = %e, "status page: the store did not answer");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the store did not answer: {e}\n"),
    )
        .into_response()
}

async fn status_page(State(source): State<StatusSource>) -> Response {
    let now_ms = wall_clock_ms();
    let file = source.monitors();
    let rows = match source.rows(&file, now_ms).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    match page::render(&source, &file, &rows, now_ms).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn api_alerts(State(source): State<StatusSource>) -> Response {
    let file = source.monitors();
    match source.rows(&file, wall_clock_ms()).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn metrics(State(source): State<StatusSource>) -> Response {
    let file = source.monitors();
    // The alert gauges need the store; the counters do not, so a store
    // that does not answer still leaves the counters scrapeable.
    let rows = source.rows(&file, wall_clock_ms()).await.ok();
    let body = metrics::render(&source, &file, rows.as_deref());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}
