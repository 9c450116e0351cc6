//! Fairness between connections on the runtime's few threads: a task that
//! has worked through [`YIELD_EVERY`] bytes of input lets the others run
//! before it goes on, so one client's megabyte request cannot hold a worker
//! while other clients wait (docs/failure.md, "Bad input").

/// Bytes of input worked through between two yields. At about 100 ns per
/// metric line this is a fraction of a millisecond.
pub(crate) const YIELD_EVERY: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Pacer {
    since_yield: usize,
}

impl Pacer {
    /// Counts `bytes` of work; past [`YIELD_EVERY`], yields to the runtime.
    pub async fn spent(&mut self, bytes: usize) {
        self.since_yield += bytes;
        if self.since_yield >= YIELD_EVERY {
            self.since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}
