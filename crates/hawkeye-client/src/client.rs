//! The [`Client`] handle: what an application calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::aggregate::{Observation, Sample};
use crate::config::ClientConfig;
use crate::error::{ClientError, FlushError};
use crate::http_layer::HttpMetricsLayer;
use crate::sender::{self, Control};
use crate::series::{SeriesBuilder, SeriesText};

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

/// Counters shared with the background task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) recorded: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_invalid: AtomicU64,
    pub(crate) dropped_unreachable: AtomicU64,
    pub(crate) dropped_closed: AtomicU64,
    pub(crate) dropped_rejected: AtomicU64,
    pub(crate) dropped_too_large: AtomicU64,
    pub(crate) truncated: Arc<AtomicU64>,
    pub(crate) last_rejection: std::sync::Mutex<Option<String>>,
    pub(crate) delivered: AtomicU64,
    pub(crate) lines_written: AtomicU64,
    pub(crate) batches_confirmed: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connected: AtomicBool,
}

/// A snapshot of what a client did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Events accepted into the queue.
    pub recorded: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped because their value was not a finite number, or nothing
    /// usable was left of the name.
    pub dropped_invalid: u64,
    /// Events dropped because the server stayed unreachable longer than the
    /// configured bounds (`max_pending`, `max_unconfirmed_bytes`) allowed.
    pub dropped_unreachable: u64,
    /// Events recorded after [`Client::shutdown`].
    pub dropped_closed: u64,
    /// Events in lines the server answered it rejected (too many series
    /// -32001, buffer full -32002, an invalid line); the reason of the last
    /// one is in `last_rejection` and in the log.
    pub dropped_rejected: u64,
    /// Events in `metric.send` requests the server refused as longer than
    /// its line limit (-32004); see `ClientConfig::max_message_bytes`.
    pub dropped_too_large: u64,
    /// Tag keys, tag values and set members cut to
    /// [`MAX_TAG_BYTES`](crate::MAX_TAG_BYTES) (the events are kept).
    pub truncated: u64,
    /// Why the server rejected the last rejected line.
    pub last_rejection: Option<String>,
    /// Events the server answered it took.
    pub delivered: u64,
    /// Metric lines written to the socket (after aggregation).
    pub lines_written: u64,
    /// `metric.send` requests the server answered.
    pub batches_confirmed: u64,
    /// Successful connections (the first one and every reconnect).
    pub connects: u64,
    /// Whether the client is connected now.
    pub connected: bool,
}

impl ClientStats {
    /// Every event dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_invalid
            + self.dropped_unreachable
            + self.dropped_closed
            + self.dropped_rejected
            + self.dropped_too_large
    }
}

impl Client {
    /// Starts the background sender: on the current tokio runtime when there
    /// is one, otherwise on a thread of its own (so plain synchronous programs
    /// can use the client too). Connecting happens in the background; a
    /// missing socket is not an error here.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
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
        let task = sender::run(config, data_rx, control_rx, Arc::clone(&shared.counters));
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
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            recorded: get(&c.recorded),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_invalid: get(&c.dropped_invalid),
            dropped_unreachable: get(&c.dropped_unreachable),
            dropped_closed: get(&c.dropped_closed),
            dropped_rejected: get(&c.dropped_rejected),
            dropped_too_large: get(&c.dropped_too_large),
            truncated: get(&c.truncated),
            last_rejection: c
                .last_rejection
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
            delivered: get(&c.delivered),
            lines_written: get(&c.lines_written),
            batches_confirmed: get(&c.batches_confirmed),
            connects: get(&c.connects),
            connected: c.connected.load(Ordering::Relaxed),
        }
    }

    /// Every event dropped so far, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.stats().dropped()
    }

    /// The socket this client sends to.
    pub fn socket_path(&self) -> &std::path::Path {
        &self.shared.socket_path
    }

    /// A tower layer counting the responses of the service it wraps under
    /// `prefix` (see [`HttpMetricsLayer`]).
    pub fn http_layer(&self, prefix: &str) -> HttpMetricsLayer {
        HttpMetricsLayer::new(self.clone(), prefix)
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
