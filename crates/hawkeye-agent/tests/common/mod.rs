//! Helpers shared by the agent's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hawkeye_agent::{Delivery, Engine, EngineSettings, MonitorsFile};
use hawkeye_mail::{Mail, MailError, Mailer, QueueConfig, QueueStats};
use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::{
    Aggregate, AlertCommit, AlertRead, AlertSnapshot, GaugeStats, GroupedOutcome, GroupedQuery,
    MemoryStore, OutboxEntry, QueryOutcome, SeriesWrite, Settle, Store, StoreError, Watermark,
    WindowQuery, WriteBatch,
};
use tokio::sync::Notify;

/// A store in front of another that counts calls and can be "down", or
/// hold data writes back (a slow server flush) until released.
pub struct Probe<S> {
    pub inner: S,
    pub down: AtomicBool,
    /// Only the reads of alert states fail (the windows are read).
    pub alerts_down: AtomicBool,
    writes_held: AtomicBool,
    writes_released: Notify,
    pub query_many: AtomicUsize,
    /// Window queries asked for, over all `query_many` calls.
    pub queries: AtomicUsize,
    pub alert_states: AtomicUsize,
    pub swaps: AtomicUsize,
}

impl<S> Probe<S> {
    pub fn new(inner: S) -> Probe<S> {
        Probe {
            inner,
            down: AtomicBool::new(false),
            alerts_down: AtomicBool::new(false),
            writes_held: AtomicBool::new(false),
            writes_released: Notify::new(),
            query_many: AtomicUsize::new(0),
            queries: AtomicUsize::new(0),
            alert_states: AtomicUsize::new(0),
            swaps: AtomicUsize::new(0),
        }
    }

    /// Data writes wait from now on, until [`Probe::release_writes`].
    pub fn hold_writes(&self) {
        self.writes_held.store(true, Ordering::SeqCst);
    }

    pub fn release_writes(&self) {
        self.writes_held.store(false, Ordering::SeqCst);
        self.writes_released.notify_waiters();
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("connection refused (test)".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl<S: Store> Store for Probe<S> {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        loop {
            let released = self.writes_released.notified();
            if !self.writes_held.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
        self.inner.write(batch).await
    }
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        self.query_many.fetch_add(1, Ordering::SeqCst);
        self.queries.fetch_add(queries.len(), Ordering::SeqCst);
        self.check()?;
        self.inner.query_many(queries).await
    }
    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        self.alert_states.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        if self.alerts_down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "alert states unreadable (test)".into(),
            ));
        }
        self.inner.read_alerts(read).await
    }
    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        self.swaps.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.commit_alert(commit).await
    }
    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.check()?;
        self.inner.claim_outbox(now_ms, lease, max).await
    }
    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        self.check()?;
        self.inner.settle_outbox(id, settle).await
    }
    async fn put_silence(
        &self,
        id: &str,
        silence: &str,
        ends_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_silence(id, silence, ends_at_ms).await
    }
    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.expire_silence(id).await
    }
    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.inner.silences(now_ms).await
    }
    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.check()?;
        self.inner.legacy_alert_states(keys).await
    }
    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete_legacy_alert_states(keys).await
    }
    async fn put_watermark(&self, id: u64, second: i64, live: Duration) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_watermark(id, second, live).await
    }
    async fn remove_watermark(&self, id: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.remove_watermark(id).await
    }
    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        self.check()?;
        self.inner.watermark().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }
    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        // One window read, as `query_many`.
        self.query_many.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.query_grouped(queries).await
    }
    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.check()?;
        self.inner.alert_states(prefix).await
    }
    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_history(stream, entries, max_len).await
    }
    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.check()?;
        self.inner.history(stream, since_ms).await
    }
}

/// Records every mail it is given.
#[derive(Default)]
pub struct RecordingMailer {
    pub mails: Mutex<Vec<Mail>>,
    pub arrived: Notify,
}

impl RecordingMailer {
    pub fn subjects(&self) -> Vec<String> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.subject.clone())
            .collect()
    }
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        self.mails.lock().unwrap().push(mail);
        self.arrived.notify_one();
        Ok(())
    }
}

pub fn settings() -> EngineSettings {
    EngineSettings {
        service: "shop".into(),
        environment: "test".into(),
        mail_from: "hawkeye@localhost".into(),
        evaluation_delay_ms: 0,
        state_ttl: hawkeye_agent::engine::DEFAULT_STATE_TTL,
    }
}

/// The mail side of a test: sends what the engines' store has in its
/// outbox to a recording mailer.
pub struct Queue {
    mailer: Arc<dyn Mailer>,
    store: std::sync::OnceLock<Arc<dyn Store>>,
}

pub fn queue<M: Mailer>(mailer: Arc<M>) -> Queue {
    Queue {
        mailer,
        store: std::sync::OnceLock::new(),
    }
}

impl Queue {
    /// Sends everything in the outbox now; returns the delivery counters.
    pub async fn shutdown(&self, _grace: Duration) -> QueueStats {
        let store = self
            .store
            .get()
            .expect("an engine was made with this queue")
            .clone();
        let mut delivery = Delivery::new(
            store,
            self.mailer.clone(),
            std::sync::Arc::new(hawkeye_agent::HttpNotifier::new(Duration::from_secs(10)).unwrap()),
            QueueConfig::default(),
            Duration::from_secs(60),
        );
        delivery.drain(wall_ms).await;
        delivery.stats()
    }
}

pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn engine(file: &MonitorsFile, store: Arc<dyn Store>, queue: &Queue, now: u64) -> Engine {
    let _ = queue.store.set(store.clone());
    Engine::new(file, store, settings(), now)
}

/// Now, rounded down to a multiple of a minute, so that check slots of any
/// interval dividing 60 s start here. Data must be recent for the memory
/// store to keep it.
pub fn base_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    now / 60_000 * 60_000
}

/// The last whole second before `ms`: where data must be for the check at
/// `ms` to read it.
pub fn secs(ms: u64) -> i64 {
    (ms / 1000) as i64 - 1
}

static SEQ: AtomicUsize = AtomicUsize::new(1);

pub async fn write(
    store: &dyn Store,
    kind: MetricKind,
    name: &str,
    tags: &[(&str, &str)],
    second: i64,
    agg: Aggregate,
) {
    let batch = WriteBatch {
        server_id: 7,
        seq: SEQ.fetch_add(1, Ordering::SeqCst) as u64,
        series: vec![SeriesWrite {
            key: Arc::new(SeriesKey::new(kind, name, tags)),
            points: vec![(second, agg)],
        }],
    };
    store.write(&batch).await.expect("write");
}

pub async fn count(store: &dyn Store, name: &str, second: i64, n: f64) {
    write(
        store,
        MetricKind::Counter,
        name,
        &[],
        second,
        Aggregate::Counter(n),
    )
    .await;
}

pub async fn gauge(store: &dyn Store, name: &str, second: i64, v: f64) {
    write(
        store,
        MetricKind::Gauge,
        name,
        &[],
        second,
        Aggregate::Gauge(GaugeStats::new(v)),
    )
    .await;
}

/// A connection to the test's redis-server, as one agent process has.
pub async fn redis_store(redis: &hawkeye_testkit::RedisServer) -> Arc<dyn Store> {
    Arc::new(
        hawkeye_store::RedisStore::new(hawkeye_store::RedisConfig::new(
            redis.url(),
            "hawkeye",
            Duration::from_secs(3600),
        ))
        .expect("connect to the test redis"),
    )
}

/// Runs a `hawkeye test` file (`test`, after its `monitors:` line) against
/// `monitors`, both written in a fresh directory.
pub async fn monitor_tests(
    monitors: &str,
    test: &str,
) -> Result<hawkeye_agent::monitor_tests::TestReport, hawkeye_agent::monitor_tests::TestFileError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitors.yaml"), monitors).unwrap();
    let path = dir.path().join("t.test.yaml");
    std::fs::write(&path, format!("monitors: monitors.yaml\n{test}")).unwrap();
    hawkeye_agent::monitor_tests::run_file(&path, Duration::from_secs(3600)).await
}

pub fn memory() -> Arc<Probe<MemoryStore>> {
    Arc::new(Probe::new(MemoryStore::new(Duration::from_secs(3600))))
}

pub mod processes;
pub mod stack;
