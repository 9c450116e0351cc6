//! Waiting for something to happen with a deadline: polling a condition, or
//! counters that workers advance (for "the load made progress").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls `done` every 20 ms until it holds; panics, naming `what`, when
/// `within` has passed. For conditions no process signals (a cluster's
/// state, a counter), never as a stand-in for a signal that exists.
pub fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One counter per worker; each worker adds 1 per unit of work done.
#[derive(Clone, Default)]
pub struct Progress {
    counters: Vec<Arc<AtomicU64>>,
}

impl Progress {
    /// A new counter, for one more worker.
    pub fn counter(&mut self) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.counters.push(counter.clone());
        counter
    }

    /// Waits until every worker has done `n` more units (blocking).
    pub fn wait_for(&self, n: u64, within: Duration, what: &str) {
        let targets: Vec<u64> = self
            .counters
            .iter()
            .map(|c| c.load(Ordering::SeqCst) + n)
            .collect();
        eventually(what, within, || {
            self.counters
                .iter()
                .zip(&targets)
                .all(|(c, t)| c.load(Ordering::SeqCst) >= *t)
        });
    }
}
