//! Writing aggregates to the store.
//!
//! At most one batch is in flight. A batch that fails is retried whole, with
//! backoff, before anything newer is cut: the store applies a batch to each
//! series at most once (see `WriteBatch`), so a retry after a half-applied
//! pipeline, or after a write abandoned at its deadline, counts nothing
//! twice. Meanwhile new events keep aggregating in memory, bounded by
//! `max_buffered` (docs/failure.md, "Store outage").

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hawkeye_store::{Store, StoreError};
use tracing::{info, warn};

use crate::aggregator::{self, Aggregator, Cut};
use crate::clock::wall_clock_us;
use crate::server_id;
use crate::stats::Stats;

/// Longest wait between two attempts while the store is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
struct FlushState {
    /// The last flush's number (see [`server_id::next_seq`]).
    seq: u64,
    /// The batch being written.
    in_flight: Option<Cut>,
    failures: u32,
}

pub(crate) struct Flusher {
    store: Arc<dyn Store>,
    /// Names this process's flushes in the store (see `WriteBatch`).
    server_id: u64,
    flush_interval: Duration,
    /// One flush at a time.
    state: tokio::sync::Mutex<FlushState>,
}

impl Flusher {
    /// A flusher writing as `server_id` (see [`crate::server_id`]).
    pub fn new(store: Arc<dyn Store>, flush_interval: Duration, server_id: u64) -> Flusher {
        Flusher {
            store,
            server_id,
            flush_interval,
            state: tokio::sync::Mutex::new(FlushState::default()),
        }
    }

    /// Writes everything aggregated before the call: the batch in flight, if
    /// any, then a new one. Dropping the future abandons the write; the
    /// batch stays in flight and the next flush writes it again.
    pub async fn flush(
        &self,
        aggregator: &Mutex<Aggregator>,
        stats: &Stats,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if state.in_flight.is_some() {
            self.write_in_flight(&mut state, aggregator, stats).await?;
        }
        let seq = server_id::next_seq(state.seq, wall_clock_us());
        let cut = aggregator::lock(aggregator).cut(self.server_id, seq);
        if cut.batch.is_empty() {
            return Ok(());
        }
        state.seq = seq;
        state.in_flight = Some(cut);
        self.write_in_flight(&mut state, aggregator, stats).await
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
