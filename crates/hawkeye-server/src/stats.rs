//! The server's counters, read by `server.stats`. Atomics, so that hot paths
//! update them without a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hawkeye_protocol::jsonrpc::StatsResult;

#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub lines_accepted: AtomicU64,
    pub lines_rejected: AtomicU64,
    pub flushes: AtomicU64,
    pub store_errors: AtomicU64,
    pub buffered: AtomicU64,
    pub dropped: AtomicU64,
    pub series: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsResult {
        StatsResult {
            connections: self.connections.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            lines_accepted: self.lines_accepted.load(Relaxed),
            lines_rejected: self.lines_rejected.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            buffered: self.buffered.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            series: self.series.load(Relaxed),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
}
