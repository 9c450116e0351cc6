//! Writing aggregates to the store.
//!
//! At most one batch is in flight. A batch that fails is retried whole, with
//! backoff, before anything newer is cut: the store applies a batch to each
//! series at most once (see `WriteBatch`), so a retry after a half-applied
//! pipeline, or after a write abandoned at its deadline, counts nothing
//! twice. Meanwhile new events keep aggregating in memory, bounded by
//! `max_buffered` (docs/failure.md, "Store outage").
//!
//! After each flush of the flush task the server's watermark goes to the
//! store: the newest second whose events it has all written
//! (docs/cluster.md, "Watermark"). Events are stamped under the
//! aggregator's lock and a flush takes its list of series to cut under it,
//! so every event stamped before the second a flush began in is in one of
//! its batches or an earlier one.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hawkeye_store::{Store, StoreError};
use tracing::{info, warn};

use crate::aggregator::{self, Aggregator, Cut, CutQueue};
use crate::clock::wall_clock_us;
use crate::exporter::Exporter;
use crate::server_id;
use crate::stats::Stats;

/// Longest wait between two attempts while the store is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a watermark counts without being written again, at least (ten
/// flush intervals if longer): a server that stops flushing holds agents
/// back that long at most.
const WATERMARK_LIFE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct FlushState {
    /// The last batch's number (see [`server_id::next_seq`]).
    seq: u64,
    /// The batch being written.
    in_flight: Option<Cut>,
    /// The series the flush under way has still to cut.
    queue: CutQueue,
    /// The second the flush under way began in, until all of its queue is
    /// written.
    began: Option<i64>,
    failures: u32,
    /// Every event stamped before this second is in the store.
    flushed_before: i64,
    /// The watermark last written to the store.
    published: i64,
    /// Writing the watermark failed last time (logged once).
    watermark_failing: bool,
}

pub(crate) struct Flusher {
    store: Arc<dyn Store>,
    /// Names this process's flushes in the store (see `WriteBatch`).
    server_id: u64,
    flush_interval: Duration,
    /// One flush at a time.
    state: tokio::sync::Mutex<FlushState>,
    /// Shown every batch as it is cut (`/metrics`).
    exporter: Option<Arc<Exporter>>,
}

impl Flusher {
    /// A flusher writing as `server_id` (see [`crate::server_id`]).
    pub fn new(store: Arc<dyn Store>, flush_interval: Duration, server_id: u64) -> Flusher {
        Flusher {
            store,
            server_id,
            flush_interval,
            state: tokio::sync::Mutex::new(FlushState::default()),
            exporter: None,
        }
    }

    /// Shows `exporter` every batch right after it is cut.
    pub fn export_to(self, exporter: Option<Arc<Exporter>>) -> Flusher {
        Flusher { exporter, ..self }
    }

    /// Writes everything aggregated before the call: what an earlier flush
    /// left (failed or abandoned half-way), then every series with waiting
    /// aggregates, a batch at a time (aggregator/cut.rs says why). Dropping
    /// the future abandons the write; the batch stays in flight and the next
    /// flush writes it again.
    pub async fn flush(
        &self,
        aggregator: &Mutex<Aggregator>,
        stats: &Stats,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        self.write_queue(&mut state, aggregator, stats).await?;
        {
            let mut aggregator = aggregator::lock(aggregator);
            // The clock read under the lock: see the module's comment.
            state.began = Some((wall_clock_us() / 1_000_000) as i64);
            aggregator.take_dirty(&mut state.queue);
        }
        state.queue.sort();
        self.write_queue(&mut state, aggregator, stats).await
    }

    /// Writes the batch in flight, then the rest of the queue, a batch at a
    /// time; then the flush under way is complete.
    async fn write_queue(
        &self,
        state: &mut FlushState,
        aggregator: &Mutex<Aggregator>,
        stats: &Stats,
    ) -> Result<(), StoreError> {
        loop {
            if state.in_flight.is_some() {
                self.write_in_flight(state, aggregator, stats).await?;
            }
            match self.cut_next(state, aggregator) {
                Some(cut) => state.in_flight = Some(cut),
                None => break,
            }
        }
        if let Some(began) = state.began.take() {
            state.flushed_before = state.flushed_before.max(began);
        }
        Ok(())
    }

    /// The next batch of the queue, numbered; `None` when all of it is cut.
    /// The one place a batch is cut.
    fn cut_next(&self, state: &mut FlushState, aggregator: &Mutex<Aggregator>) -> Option<Cut> {
        let mut aggregator = aggregator::lock(aggregator);
        while !state.queue.is_empty() {
            let now = wall_clock_us();
            let seq = server_id::next_seq(state.seq, now);
            let cut = aggregator.cut(&mut state.queue, self.server_id, seq);
            if !cut.batch.is_empty() {
                state.seq = seq;
                if let Some(exporter) = &self.exporter {
                    // Each batch is cut once, so /metrics counts each
                    // event once.
                    exporter.observe(&cut.batch, (now / 1_000_000) as i64);
                }
                return Some(cut);
            }
        }
        None
    }

    /// Writes the watermark when it moved on (at most once a second). The
    /// flush task calls it after each flush; a query's flush does not (a
    /// store slow to take the watermark must not hold queries up), nor does
    /// the last one (the watermark is removed then). A failure is counted,
    /// logged once, and tried again after the next flush; the data is
    /// written all the same.
    pub async fn publish_watermark(&self, stats: &Stats) {
        let mut state = self.state.lock().await;
        let watermark = state.flushed_before - 1;
        if watermark <= state.published {
            return;
        }
        let life = WATERMARK_LIFE.max(self.flush_interval * 10);
        match self
            .store
            .put_watermark(self.server_id, watermark, life)
            .await
        {
            Ok(()) => {
                if state.watermark_failing {
                    info!("the server's watermark is written again");
                }
                state.watermark_failing = false;
                state.published = watermark;
            }
            Err(e) => {
                stats.store_errors.fetch_add(1, Relaxed);
                if !state.watermark_failing {
                    warn!(error = %e, "could not write the server's watermark; agents wait for it at most HAWKEYE_WATERMARK_WAIT");
                }
                state.watermark_failing = true;
            }
        }
    }

    /// Removes this server's watermark: it writes nothing more, so agents
    /// must not wait for it.
    pub async fn retire(&self) -> Result<(), StoreError> {
        self.store.remove_watermark(self.server_id).await
    }

    async fn write_in_flight(
        &self,
        state: &mut FlushState,
        aggregator: &Mutex<Aggregator>,
        stats: &Stats,
    ) -> Result<(), StoreError> {
        let Some(cut) = state.in_flight.as_ref() else {
            return Ok(());
        };
        match self.store.write(&cut.batch).await {
            Ok(()) => {
                if state.failures > 0 {
                    info!(
                        failures = state.failures,
                        "store reachable again; buffered aggregates written"
                    );
                }
                state.failures = 0;
                let mut aggregator = aggregator::lock(aggregator);
                aggregator.written(cut);
                state.in_flight = None;
                stats.buffered.store(aggregator.buffered() as u64, Relaxed);
                stats.flushes.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(e) => {
                if state.failures == 0 {
                    // Logged once per outage; recovery is logged above.
                    warn!(error = %e, "store write failed; keeping aggregates in memory and retrying");
                }
                state.failures += 1;
                stats.store_errors.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// How long to wait before the next attempt, after the flushes so far.
    pub async fn backoff(&self) -> Duration {
        let failures = self.state.lock().await.failures;
        self.backoff_after(failures)
    }

    pub fn backoff_after(&self, failures: u32) -> Duration {
        let base = self.flush_interval;
        base.saturating_mul(1 << failures.min(10))
            .min(MAX_BACKOFF.max(base))
    }
}
