//! Writing aggregates to the store.
//!
//! At most one batch is in flight. A batch that fails is retried whole, with
//! backoff, before anything newer is cut: the store applies a batch to each
//! series at most once (see `WriteBatch`), so a retry after a half-applied
//! pipeline counts nothing twice. Meanwhile new events keep aggregating in
//! memory, bounded by `max_buffered`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hawkeye_store::{StoreError, WriteBatch};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::shared::{now_secs, Shared};

/// Longest wait between two attempts while the store is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often idle series are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct FlushState {
    seq: u64,
    /// The batch being written, and the buffer units it holds.
    in_flight: Option<(WriteBatch, usize)>,
    failures: u32,
}

impl Shared {
    /// Writes everything aggregated before the call: the batch in flight, if
    /// any, then a new one.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let mut state = self.flush.lock().await;
        if state.in_flight.is_some() {
            self.write_in_flight(&mut state).await?;
        }
        let seq = state.seq + 1;
        let (batch, units) = self.aggregator().cut(self.server_id, seq);
        if batch.is_empty() {
            return Ok(());
        }
        state.seq = seq;
        state.in_flight = Some((batch, units));
        self.write_in_flight(&mut state).await
    }

    async fn write_in_flight(&self, state: &mut FlushState) -> Result<(), StoreError> {
        let Some((batch, units)) = state.in_flight.as_ref() else {
            return Ok(());
        };
        match self.store.write(batch).await {
            Ok(()) => {
                let written = *units;
                state.in_flight = None;
                if state.failures > 0 {
                    info!(
                        failures = state.failures,
                        "store reachable again; buffered aggregates written"
                    );
                }
                state.failures = 0;
                let mut aggregator = self.aggregator();
                aggregator.written(written);
                self.stats
                    .buffered
                    .store(aggregator.buffered() as u64, Relaxed);
                self.stats.flushes.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(e) => {
                if state.failures == 0 {
                    // Logged once per outage; recovery is logged above.
                    warn!(error = %e, "store write failed; keeping aggregates in memory and retrying");
                }
                state.failures += 1;
                self.stats.store_errors.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = self.config.flush_interval;
        base.saturating_mul(1 << failures.min(10))
            .min(MAX_BACKOFF.max(base))
    }
}

/// Flushes every interval until shutdown. The last flush is not done here
/// but by [`final_flush`], once every connection has finished answering:
/// done at the signal, it could miss what a connection takes in after it.
pub(crate) async fn run(shared: std::sync::Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut delay = shared.config.flush_interval;
    let mut last_forget = tokio::time::Instant::now();
    let mut dropped_seen = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
        delay = match shared.flush().await {
            Ok(()) => shared.config.flush_interval,
            Err(_) => {
                let failures = shared.flush.lock().await.failures;
                shared.backoff(failures)
            }
        };
        let dropped = shared.stats.dropped.load(Relaxed);
        if dropped > dropped_seen {
            warn!(
                dropped = dropped - dropped_seen,
                total = dropped,
                "events dropped: buffer full (HAWKEYE_MAX_BUFFERED)"
            );
            dropped_seen = dropped;
        }
        if last_forget.elapsed() >= FORGET_EVERY {
            last_forget = tokio::time::Instant::now();
            let mut aggregator = shared.aggregator();
            aggregator.forget_idle(now_secs());
            shared
                .stats
                .series
                .store(aggregator.series_count() as u64, Relaxed);
        }
    }
}

/// Writes what is left, retrying for up to `shutdown_timeout` so that nothing
/// accepted is lost to a brief outage.
pub(crate) async fn final_flush(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
    let mut failures = 0;
    loop {
        match shared.flush().await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                let wait = shared.backoff(failures);
                if tokio::time::Instant::now() + wait > deadline {
                    let lost = shared.aggregator().buffered();
                    warn!(error = %e, lost_aggregates = lost, "shutdown: the store stayed unreachable; unwritten aggregates are lost");
                    return;
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}
