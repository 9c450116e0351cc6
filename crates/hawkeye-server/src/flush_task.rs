//! The flusher's two tasks: a flush every interval while the server runs,
//! and the last one at shutdown, under a hard deadline (docs/failure.md,
//! "Shutdown").

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::warn;

use crate::clock::now_secs;
use crate::shared::Shared;
use crate::stats::Stats;

/// How often idle series are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Flushes every interval until shutdown. The last flush is not done here
/// but by [`final_flush`], once every connection has finished answering:
/// done at the signal, it could miss what a connection takes in after it.
/// A flush under way at the signal is abandoned (a hung store must not hold
/// the shutdown up); the final flush writes its batch again.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut delay = shared.config.flush_interval;
    let mut last_forget = Instant::now();
    let mut last_compaction = Instant::now();
    let mut compaction: Option<tokio::task::JoinHandle<()>> = None;
    let mut dropped_seen = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
        let flush_and_publish = async {
            let flushed = shared.flush().await;
            if flushed.is_ok() {
                shared.flusher.publish_watermark(&shared.stats).await;
            }
            flushed
        };
        let flushed = tokio::select! {
            r = flush_and_publish => r,
            _ = shutdown.changed() => break,
        };
        delay = match flushed {
            Ok(()) => shared.config.flush_interval,
            Err(_) => shared.flusher.backoff().await,
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
        let idle = compaction.as_ref().is_none_or(|c| c.is_finished());
        if flushed.is_ok() && idle && last_compaction.elapsed() >= shared.config.compaction_interval
        {
            last_compaction = Instant::now();
            compaction = Some(tokio::spawn(compact(shared.clone())));
        }
        if last_forget.elapsed() >= FORGET_EVERY {
            last_forget = Instant::now();
            let mut aggregator = shared.aggregator();
            aggregator.forget_idle(now_secs());
            shared
                .stats
                .series
                .store(aggregator.series_count() as u64, Relaxed);
        }
    }
    if let Some(c) = compaction {
        c.abort();
    }
}

/// One compaction pass, beside the flushes (a long one must not delay
/// them). Stopping it anywhere is safe: its writes are compare-and-set.
async fn compact(shared: Arc<Shared>) {
    match shared.store.compact(now_secs()).await {
        Ok(done) if done.compacted + done.retried > 0 => {
            tracing::debug!(?done, "rollup hours compacted");
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "compacting rollup hours failed; tried again at the next pass"),
    }
}

/// Writes what is left, retrying until `deadline` so that nothing answered
/// is lost to a brief outage; a store call still under way at the deadline
/// is abandoned. Then removes the server's watermark, so that agents stop
/// waiting for it. Returns the answered events that could not be written
/// (logged, and counted in `events_lost`).
pub(crate) async fn final_flush(shared: &Shared, deadline: Instant) -> u64 {
    let lost = write_the_rest(shared, deadline).await;
    match tokio::time::timeout_at(deadline, shared.flusher.retire()).await {
        Ok(Ok(())) => {}
        // It runs out by itself (docs/cluster.md, "Watermark").
        Ok(Err(e)) => warn!(error = %e, "shutdown: could not remove the server's watermark"),
        Err(_) => warn!("shutdown: no time left to remove the server's watermark"),
    }
    lost
}

async fn write_the_rest(shared: &Shared, deadline: Instant) -> u64 {
    let mut failures = 0;
    let error = loop {
        match tokio::time::timeout_at(deadline, shared.flush()).await {
            Ok(Ok(())) => return 0,
            Ok(Err(e)) => {
                failures += 1;
                let wait = shared.flusher.backoff_after(failures);
                if Instant::now() + wait > deadline {
                    break e.to_string();
                }
                tokio::time::sleep(wait).await;
            }
            Err(_) => break "the store did not answer before the shutdown deadline".to_string(),
        }
    };
    let aggregator = shared.aggregator();
    let lost = aggregator.unwritten_events();
    Stats::add(&shared.stats.events_lost, lost);
    warn!(
        error = %error,
        events_lost = lost,
        aggregates = aggregator.buffered(),
        "shutdown: the store could not take the last aggregates before HAWKEYE_SHUTDOWN_TIMEOUT; these answered events are lost"
    );
    lost
}
