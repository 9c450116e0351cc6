//! The hawkeye agent: reads `monitors.yaml`, evaluates every monitor's
//! window on its interval, and mails alerts through a [`Mailer`], debounced
//! as `docs/alerts.md` says.
//!
//! Embedding:
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn hawkeye_store::Store>) -> Result<(), hawkeye_agent::AgentError> {
//! use std::sync::Arc;
//! let config = hawkeye_agent::AgentConfig::default();
//! let monitors = hawkeye_agent::load_monitors("monitors.yaml".as_ref(), config.retention)?;
//! let config = config.with_monitors(monitors);
//! let agent = hawkeye_agent::start(config, store, Arc::new(hawkeye_mail::LogMailer::new())).await?;
//! // ... later
//! agent.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules: [`monitors`] (the file format and its validation),
//! [`template`], [`evaluation`] (value → observation), [`state`] (the alert
//! state machine), [`state_key`] (where states are stored), [`silence`],
//! [`notification`] (the mail), [`outbox`] (mail waiting to be sent),
//! [`engine`] (one tick), [`delivery`] (sending the outbox),
//! [`scheduler`] (the task that runs ticks), [`agent_config`] (settings),
//! [`monitor_tests`] (`hawkeye test`: unit tests of a monitors file),
//! [`backtest`] (`hawkeye backtest`: the stored data replayed).
//! The semantics are in `docs/alerts.md`, the file format in
//! `docs/monitors.md`.

/// The allocator the `hawkeye-agent` program (and the agent benchmark)
/// runs with, set there with `#[global_allocator]`: a tick allocates and
/// frees small objects for every due monitor, which mimalloc serves in
/// fewer instructions and keeps closer together than glibc's malloc (at
/// 100 000 monitors the tick mostly waits on memory; README, "Agent"). A
/// program that embeds the agent keeps its own choice.
pub type Allocator = mimalloc::MiMalloc;

/// The value of [`Allocator`], for `#[global_allocator]`.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

pub mod agent_config;
pub mod backtest;
pub mod delivery;
pub mod engine;
mod error;
pub mod error_budget;
pub mod evaluation;
mod flush_wait;
pub mod http;
pub mod monitor_tests;
pub mod monitors;
pub mod notification;
pub mod outbox;
pub mod scheduler;
pub mod silence;
mod slo_notice;
pub mod state;
pub mod state_key;
pub mod template;
pub mod webhook;
pub mod yaml_location;

use std::sync::{Arc, Mutex, RwLock};

use hawkeye_mail::{Mailer, QueueStats};
use hawkeye_store::Store;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

pub use agent_config::{load_dotenv, retention_from_env, AgentConfig, MonitorsSource};
pub use delivery::Delivery;
pub use engine::{Engine, EngineSettings, EngineStats, Notified, TickReport};
pub use error::AgentError;
pub use hawkeye_notify::{HttpNotifier, Notifier, NotifyError, Webhook};
pub use monitors::{
    load_monitors, parse_monitors, BurnWindows, ConfigErrors, ConfigProblem, Missing, Monitor,
    MonitorsFile, Op, Retention, Slo, Trigger, WebhookFormat,
};
pub use silence::{Silence, SilenceError};

use scheduler::Control;

/// Counters of a running agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub engine: EngineStats,
    pub mail: QueueStats,
}

/// A running agent. Dropping it without [`AgentHandle::shutdown`] stops the
/// evaluation task at its next wake-up but does not wait for queued mail.
pub struct AgentHandle {
    control: mpsc::UnboundedSender<Control>,
    /// `None` once it has ended (see [`AgentHandle::evaluation_ended`]).
    task: Option<JoinHandle<()>>,
    retention: Retention,
    delivery: Option<JoinHandle<()>>,
    stop_delivery: watch::Sender<bool>,
    mail_stats: Arc<Mutex<QueueStats>>,
    stats: Arc<Mutex<EngineStats>>,
    grace: std::time::Duration,
    /// The monitors running, for the status page (replaced by reloads).
    monitors: Arc<RwLock<MonitorsFile>>,
    http: Option<http::HttpServer>,
}

/// Each warning of a loaded monitors file, at every load (see
/// [`MonitorsFile::warnings`]).
fn log_warnings(file: &MonitorsFile) {
    for w in &file.warnings {
        tracing::warn!("{w}");
    }
}

/// Starts the agent on the current tokio runtime: validates the monitors
/// (read from the file when `config.monitors` names one) against
/// `config.retention`, starts the delivery of the outbox through `mailer`,
/// and the scheduler. Returns once both run.
pub async fn start(
    config: AgentConfig,
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
) -> Result<AgentHandle, AgentError> {
    let notifier = HttpNotifier::new(config.webhook_timeout)
        .map_err(|e| AgentError::Env(format!("cannot set up webhooks: {e}")))?;
    start_with_notifier(config, store, mailer, Arc::new(notifier)).await
}

/// [`start`], posting webhooks through `notifier` (an application's own)
/// instead of the built-in HTTP one.
pub async fn start_with_notifier(
    config: AgentConfig,
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    notifier: Arc<dyn Notifier>,
) -> Result<AgentHandle, AgentError> {
    let monitors = match config.monitors {
        MonitorsSource::File(ref path) => load_monitors(path, config.retention_limits())?,
        MonitorsSource::Inline(ref file) => {
            file.validate(config.retention_limits())?;
            file.clone()
        }
    };
    config.validate()?;
    log_warnings(&monitors);
    let settings = config.engine_settings();
    let wake = Arc::new(Notify::new());
    let engine = Engine::new(
        &monitors,
        store.clone(),
        settings,
        scheduler::wall_clock_ms(),
    )
    .with_outbox_wake(wake.clone());
    let flush_wait = flush_wait::FlushWait::new(
        store.clone(),
        config.evaluation_delay,
        config.watermark_wait,
    );
    // Listening first: an address in use stops the start before any task runs.
    let mail_stats = Arc::new(Mutex::new(QueueStats::default()));
    let stats = Arc::new(Mutex::new(EngineStats::default()));
    let shared_monitors = Arc::new(RwLock::new(monitors.clone()));
    let http = match config.http_addr {
        Some(addr) => Some(
            http::HttpServer::start(
                addr,
                http::StatusSource {
                    store: store.clone(),
                    monitors: shared_monitors.clone(),
                    service: config.service.clone(),
                    environment: config.environment.clone(),
                    engine: stats.clone(),
                    mail: mail_stats.clone(),
                },
            )
            .await?,
        ),
        None => None,
    };
    let delivery = Delivery::new(
        store,
        mailer,
        notifier,
        config.mail_queue.clone(),
        config.mail_lease,
    );
    let (stop_delivery, stop_rx) = watch::channel(false);
    let delivery = tokio::spawn(delivery::run(delivery, wake, stop_rx, mail_stats.clone()));
    let (control, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(scheduler::run(engine, flush_wait, rx, stats.clone()));
    tracing::info!(
        monitors = monitors.monitors.len(),
        triggers = monitors.monitors.iter().map(|m| m.triggers.len()).sum::<usize>(),
        service = %config.service,
        environment = %config.environment,
        "agent started"
    );
    Ok(AgentHandle {
        control,
        task: Some(task),
        retention: config.retention_limits(),
        delivery: Some(delivery),
        stop_delivery,
        mail_stats,
        stats,
        grace: config.shutdown_grace,
        monitors: shared_monitors,
        http,
    })
}

impl AgentHandle {
    /// Replaces the monitors. An invalid file (including a window longer
    /// than the retention) is refused (the agent keeps the monitors it has)
    /// and the problems are returned.
    pub fn reload(&self, monitors: MonitorsFile) -> Result<(), AgentError> {
        monitors.validate(self.retention)?;
        log_warnings(&monitors);
        *self.monitors.write().unwrap_or_else(|e| e.into_inner()) = monitors.clone();
        self.control
            .send(Control::Reload(Box::new(monitors)))
            .map_err(|_| AgentError::Stopped)
    }

    /// Where the status page and `/metrics` listen (`AGENT_HTTP_ADDR`;
    /// the port chosen when it asked for port 0); `None` when off.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(|h| h.addr())
    }

    pub fn stats(&self) -> AgentStats {
        AgentStats {
            engine: self.stats.lock().map(|s| *s).unwrap_or_default(),
            mail: self.mail_stats.lock().map(|s| *s).unwrap_or_default(),
        }
    }

    /// The data retention the monitors are checked against.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Resolves when the evaluation task ends without being asked to (a
    /// panic or a bug), saying why; until then, never. A program should
    /// exit non-zero then rather than keep running without evaluating.
    /// Cancel-safe (for `select!`).
    pub async fn evaluation_ended(&mut self) -> String {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let result = task.await;
        self.task = None;
        match result {
            Ok(()) => "the evaluation task ended".to_string(),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("the evaluation task panicked: {what}")
            }
            Err(e) => format!("the evaluation task ended: {e}"),
        }
    }

    /// Stops evaluating (a tick in progress finishes), then sends what the
    /// outbox holds, waiting at most the configured grace period (what is
    /// left stays in the outbox for the next agent).
    pub async fn shutdown(self) -> AgentStats {
        if let Some(http) = self.http {
            http.stop();
        }
        let _ = self.control.send(Control::Shutdown);
        if let Some(task) = self.task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the evaluation task ended abnormally");
            }
        }
        let engine = self.stats.lock().map(|s| *s).unwrap_or_default();
        let _ = self.stop_delivery.send(true);
        if let Some(mut delivery) = self.delivery {
            if tokio::time::timeout(self.grace, &mut delivery)
                .await
                .is_err()
            {
                delivery.abort();
                tracing::warn!(
                    "mail still unsent after {:?}; it stays in the outbox for the next agent",
                    self.grace
                );
            }
        }
        let mail = self.mail_stats.lock().map(|s| *s).unwrap_or_default();
        tracing::info!(sent = mail.sent, dropped = mail.dropped, "agent stopped");
        AgentStats { engine, mail }
    }
}
