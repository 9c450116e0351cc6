//! The agent's own HTTP endpoint (`AGENT_HTTP_ADDR`, off when unset):
//! `/` a status page of every monitor and trigger, `/api/alerts` the same
//! states as JSON, `/metrics` the agent's counters in Prometheus text
//! format. Everything is read from the store (the alert states the agents
//! write, the metrics through range reads), never from a server, so any
//! agent sharing a store shows the same page (docs/status-page.md).

pub mod alerts;
mod metrics;
mod page;
mod svg;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hawkeye_mail::QueueStats;
use hawkeye_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::engine::EngineStats;
use crate::error::AgentError;
use crate::monitors::MonitorsFile;
use crate::scheduler::wall_clock_ms;
use crate::silence;
use crate::state_key::{self, KeyIndex};

pub use alerts::{alert_rows, AlertRow};

/// What the endpoint reads: the store, the monitors the agent runs (kept
/// current by reloads), and the agent's counters.
#[derive(Clone)]
pub struct StatusSource {
    pub store: Arc<dyn Store>,
    pub monitors: Arc<RwLock<MonitorsFile>>,
    pub service: String,
    pub environment: String,
    pub engine: Arc<Mutex<EngineStats>>,
    pub mail: Arc<Mutex<QueueStats>>,
}

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

impl StatusSource {
    fn monitors(&self) -> MonitorsFile {
        // A panic elsewhere while holding the lock leaves a whole file.
        self.monitors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every stored state of this service and environment, as rows.
    async fn rows(&self, file: &MonitorsFile, now_ms: u64) -> Result<Vec<AlertRow>, StoreError> {
        let prefix = state_key::prefix(&self.service, &self.environment);
        let states = self.store.alert_states(&prefix).await?;
        let (silences, _) = silence::parse_all(&self.store.silences(now_ms).await?);
        let index = KeyIndex::new(file, &self.service, &self.environment);
        Ok(alert_rows(file, &index, &states, &silences, now_ms))
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
