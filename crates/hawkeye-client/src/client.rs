//! The [`Client`] handle: what an application calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::ClientConfig;
use crate::counters::{ClientStats, Counters};
use crate::endpoint::Endpoint;
use crate::error::{ClientError, FlushError};
use crate::sample::{Observation, Sample};
use crate::sender::{self, Control};
use crate::series::{SeriesBuilder, SeriesText};
use crate::spy::{self, SpyServer};

/// A handle to the background sender; clone it freely (all clones share one
/// queue and one connection).
///
/// Every recording method returns at once: it never waits for the socket and
/// never panics. Tags are `(key, value)` pairs; pass `&[]` for none.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    data: mpsc::Sender<Sample>,
    control: mpsc::UnboundedSender<Control>,
    series: SeriesBuilder,
    closed: AtomicBool,
    counters: Arc<Counters>,
    socket_path: std::path::PathBuf,
    flush_timeout: Duration,
}

impl Client {
    /// Starts the background sender: on the current tokio runtime when there
    /// is one, otherwise on a thread of its own (so plain synchronous programs
    /// can use the client too). Connecting happens in the background; a
    /// missing socket is not an error here.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = Endpoint::Unix(config.socket_path.clone());
        Client::start(config, endpoint)
    }

    /// A client that connects to a [`SpyServer`] in memory instead of the
    /// socket (`config.socket_path` only names it in errors): for tests
    /// that play the server, with no server process. See [`spy`](crate::spy).
    pub fn with_spy(config: ClientConfig) -> Result<(Client, SpyServer), ClientError> {
        let (server, endpoint) = spy::listen();
        let client = Client::start(config, Endpoint::Spy(endpoint))?;
        Ok((client, server))
    }

    fn start(config: ClientConfig, endpoint: Endpoint) -> Result<Client, ClientError> {
        if config.queue_capacity == 0 {
            return Err(ClientError::Config(
                "queue_capacity must be at least 1".into(),
            ));
        }
        if config.flush_interval.is_zero() {
            return Err(ClientError::Config(
                "flush_interval must be longer than 0".into(),
            ));
        }
        let (data_tx, data_rx) = mpsc::channel(config.queue_capacity);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            data: data_tx,
            control: control_tx,
            series: SeriesBuilder::new(
                &config.prefix,
                &config.default_tags,
                Arc::clone(&counters.truncated),
            ),
            closed: AtomicBool::new(false),
            counters,
            socket_path: config.socket_path.clone(),
            flush_timeout: config.flush_timeout,
        });
        let counters = Arc::clone(&shared.counters);
        let task = sender::run(config, endpoint, data_rx, control_rx, counters);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(task);
            }
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ClientError::Thread)?;
                std::thread::Builder::new()
                    .name("hawkeye-client".into())
                    .spawn(move || runtime.block_on(task))
                    .map_err(ClientError::Thread)?;
            }
        }
        Ok(Client { shared })
    }

    /// A client configured by [`ClientConfig::from_env`] (`HAWKEYE_SOCKET`).
    pub fn from_env() -> Result<Client, ClientError> {
        Client::new(ClientConfig::from_env())
    }

    /// Adds 1 to a counter.
    pub fn incr(&self, name: &str, tags: &[(&str, &str)]) {
        self.count(name, 1, tags);
    }

    /// Adds `value` to a counter (negative values subtract).
    pub fn count(&self, name: &str, value: i64, tags: &[(&str, &str)]) {
        self.record(name, tags, |s| Sample::Count(s, value as f64));
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        if self.check_finite(value) {
            self.record(name, tags, |s| Sample::GaugeSet(s, value));
        }
    }

    /// Adjusts a gauge by `delta` (statsd `+N`/`-N`).
    pub fn gauge_add(&self, name: &str, delta: f64, tags: &[(&str, &str)]) {
        if self.check_finite(delta) {
            self.record(name, tags, |s| Sample::GaugeAdd(s, delta));
        }
    }

    /// Records a duration, in milliseconds (statsd `ms`).
    pub fn timing(&self, name: &str, duration: Duration, tags: &[(&str, &str)]) {
        self.timing_ms(name, duration.as_secs_f64() * 1000.0, tags);
    }

    /// Records a duration given in milliseconds (statsd `ms`).
    pub fn timing_ms(&self, name: &str, millis: f64, tags: &[(&str, &str)]) {
        self.observe(name, Observation::Timing, millis, tags);
    }

    /// Records an observation of a distribution (statsd `h`).
    pub fn histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.observe(name, Observation::Histogram, value, tags);
    }

    /// Records an observation of a distribution (DogStatsD `d`).
    pub fn distribution(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.observe(name, Observation::Distribution, value, tags);
    }

    /// Adds `member` to a set (the server counts distinct members).
    pub fn set(&self, name: &str, member: &str, tags: &[(&str, &str)]) {
        match self.shared.series.set_member(member) {
            Some(m) => self.record(name, tags, |s| Sample::SetMember(s, m)),
            None => self.drop_invalid(),
        }
    }

    /// Sends everything recorded before this call and waits until the server
    /// has answered every `metric.send` request carrying it (lines it
    /// rejected are counted in [`ClientStats::dropped_rejected`]), at most
    /// `flush_timeout` ([`FlushError::Timeout`]; on a tokio runtime).
    ///
    /// On error the events are kept, within the configured bounds, and sent
    /// after the next reconnect.
    pub async fn flush(&self) -> Result<(), FlushError> {
        let (tx, rx) = oneshot::channel();
        if self.shared.control.send(Control::Flush(tx)).is_err() {
            return Err(FlushError::Closed);
        }
        let answer = async { rx.await.unwrap_or(Err(FlushError::Closed)) };
        if tokio::runtime::Handle::try_current().is_err() {
            // Another executor: no tokio timer to time out with.
            return answer.await;
        }
        let timeout = self.shared.flush_timeout;
        tokio::time::timeout(timeout, answer)
            .await
            .unwrap_or(Err(FlushError::Timeout(timeout)))
    }

    /// Sends what is queued, waits for the server to confirm (at most the
    /// configured `shutdown_timeout`) and stops the background task. Events
    /// recorded afterwards, from any clone, are dropped and counted.
    pub async fn shutdown(&self) -> Result<(), FlushError> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Err(FlushError::Closed);
        }
        let (tx, rx) = oneshot::channel();
        if self.shared.control.send(Control::Shutdown(tx)).is_err() {
            return Err(FlushError::Closed);
        }
        rx.await.unwrap_or(Err(FlushError::Closed))
    }

    /// [`shutdown`](Client::shutdown) for synchronous programs: call it
    /// before `main` returns so that the last events are sent (dropping the
    /// handles does not wait). Blocks the calling thread for at most
    /// `shutdown_timeout`; must not be called from inside an async context
    /// (use `shutdown().await` there).
    pub fn shutdown_blocking(&self) -> Result<(), FlushError> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Err(FlushError::Closed);
        }
        let (tx, rx) = oneshot::channel();
        if self.shared.control.send(Control::Shutdown(tx)).is_err() {
            return Err(FlushError::Closed);
        }
        rx.blocking_recv().unwrap_or(Err(FlushError::Closed))
    }

    /// What the client did so far.
    pub fn stats(&self) -> ClientStats {
        self.shared.counters.snapshot()
    }

    /// Every event dropped so far, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.stats().dropped()
    }

    /// The socket this client sends to.
    pub fn socket_path(&self) -> &std::path::Path {
        &self.shared.socket_path
    }

    pub(crate) fn series_builder(&self) -> &SeriesBuilder {
        &self.shared.series
    }

    pub(crate) fn series(&self, name: &str, tags: &[(&str, &str)]) -> Option<SeriesText> {
        self.shared.series.build(name, tags)
    }

    fn observe(&self, name: &str, kind: Observation, value: f64, tags: &[(&str, &str)]) {
        if self.check_finite(value) {
            self.record(name, tags, |s| Sample::Observe(s, kind, value));
        }
    }

    fn record(&self, name: &str, tags: &[(&str, &str)], sample: impl FnOnce(SeriesText) -> Sample) {
        match self.series(name, tags) {
            Some(series) => self.enqueue(sample(series)),
            None => self.drop_invalid(),
        }
    }

    /// Puts a sample in the queue, or counts it as dropped.
    pub(crate) fn enqueue(&self, sample: Sample) {
        let c = &self.shared.counters;
        if self.shared.closed.load(Ordering::Relaxed) {
            c.dropped_closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.shared.data.try_send(sample) {
            Ok(()) => c.recorded.fetch_add(1, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                c.dropped_queue_full.fetch_add(1, Ordering::Relaxed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                c.dropped_closed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    fn check_finite(&self, value: f64) -> bool {
        if value.is_finite() {
            true
        } else {
            self.drop_invalid();
            false
        }
    }

    fn drop_invalid(&self) {
        self.shared
            .counters
            .dropped_invalid
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket_path", &self.shared.socket_path)
            .field("stats", &self.stats())
            .finish()
    }
}
