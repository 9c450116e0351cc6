//! What a client counts: atomics the handles and the background task add
//! to, and [`ClientStats`], the snapshot an application reads. What each
//! counter means for delivery: docs/client.md.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    pub(crate) last_rejection: Mutex<Option<String>>,
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
    /// Events recorded after [`Client::shutdown`](crate::Client::shutdown).
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

impl Counters {
    /// What was counted so far.
    pub(crate) fn snapshot(&self) -> ClientStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            recorded: get(&self.recorded),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_invalid: get(&self.dropped_invalid),
            dropped_unreachable: get(&self.dropped_unreachable),
            dropped_closed: get(&self.dropped_closed),
            dropped_rejected: get(&self.dropped_rejected),
            dropped_too_large: get(&self.dropped_too_large),
            truncated: get(&self.truncated),
            last_rejection: self
                .last_rejection
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
            delivered: get(&self.delivered),
            lines_written: get(&self.lines_written),
            batches_confirmed: get(&self.batches_confirmed),
            connects: get(&self.connects),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}
