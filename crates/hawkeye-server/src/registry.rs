//! The open stream connections, for the decisions that concern several of
//! them (docs/protocol.md, "Limits"):
//!
//! - at `HAWKEYE_MAX_CONNECTIONS`, a new client is admitted by closing the
//!   connection idle the longest, if it has been idle at least
//!   `HAWKEYE_EVICT_IDLE_AFTER`; one with a request in progress (a line
//!   being read, answered or written back) is never chosen, nor one that
//!   made a call a moment ago (a Go client between two calls is not idle);
//! - the bytes of request lines held across connections are bounded by
//!   `HAWKEYE_MAX_PENDING_BYTES`: past it, the connection holding the most
//!   is closed;
//! - at shutdown, every connection is told to finish.
//!
//! Each connection owns an [`Entry`] of atomics it updates on its own hot
//! path without a lock; the table itself is locked only to add, remove and
//! choose a connection to close.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;

use crate::clock::{monotonic_lag_ms, monotonic_ms};
use crate::stats::Stats;

const IDLE: u8 = 0;
const BUSY: u8 = 1;
/// Closed by the registry to admit a new client; set only from `IDLE`.
const EVICTED: u8 = 2;

/// Why the server asks a connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseRequest {
    /// Answer what was read, then close.
    Shutdown,
    /// It holds the most of the pending budget: close now.
    InputBudget,
}

const NO_REQUEST: u8 = 0;
const SHUTDOWN: u8 = 1;
const INPUT_BUDGET: u8 = 2;

/// One connection's shared state.
pub(crate) struct Entry {
    state: AtomicU8,
    close: AtomicU8,
    /// When it last went idle, in [`monotonic_ms`] (a coarse clock: read at
    /// the end of every call, it is a memory read, not a hardware counter).
    last_active: AtomicU64,
    /// Bytes of request lines it holds, as last reported.
    pending: AtomicUsize,
    /// Wakes the connection to look at `state` and `close`. Not a
    /// `Notify`: the connection waits on it around every read, and
    /// registering with an `AtomicWaker` is a few atomics where a `Notify`
    /// locks a mutex to add and again to remove its waiter.
    wake: AtomicWaker,
    slot: AtomicUsize,
}

impl Entry {
    /// The connection has input to handle. `false` if it was closed to
    /// admit another client: it must say so and close without reading.
    pub fn begin_work(&self) -> bool {
        match self.state.compare_exchange(IDLE, BUSY, Acquire, Acquire) {
            Ok(_) => true,
            Err(state) => state == BUSY,
        }
    }

    /// Nothing read is left unanswered, nothing is left to write.
    pub fn end_work(&self, registry: &Registry) {
        self.last_active.store(registry.now_ms(), Relaxed);
        self.state.store(IDLE, Release);
    }

    pub fn evicted(&self) -> bool {
        self.state.load(Acquire) == EVICTED
    }

    pub fn close_request(&self) -> Option<CloseRequest> {
        match self.close.load(Acquire) {
            SHUTDOWN => Some(CloseRequest::Shutdown),
            INPUT_BUDGET => Some(CloseRequest::InputBudget),
            _ => None,
        }
    }

    fn request_close(&self, request: u8) {
        // A budget close wins over a shutdown: it must not wait.
        self.close.fetch_max(request, AcqRel);
        self.wake.wake();
    }

    /// Ready when the registry has evicted the connection or asked it to
    /// close (for any reason with `any_close`, else only for the budget);
    /// otherwise the task is woken when it does. Registering before looking
    /// at the flags, which are set before the wake, loses no request.
    pub fn poll_asked(&self, cx: &mut Context<'_>, any_close: bool) -> Poll<()> {
        self.wake.register(cx.waker());
        let asked = match self.close_request() {
            Some(CloseRequest::InputBudget) => true,
            Some(CloseRequest::Shutdown) => any_close,
            None => false,
        };
        if asked || self.evicted() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Whether a new connection may be served.
pub(crate) enum Admission {
    Admitted(Arc<Entry>),
    /// At the limit with no idle connection to close.
    Refused,
}

#[derive(Default)]
struct Table {
    entries: Vec<Option<Arc<Entry>>>,
    free: Vec<usize>,
    len: usize,
}

pub(crate) struct Registry {
    table: Mutex<Table>,
    max_connections: usize,
    max_pending: usize,
    /// Least idleness, in milliseconds of the coarse clock, of a connection
    /// closed to admit another: `HAWKEYE_EVICT_IDLE_AFTER` plus how far the
    /// clock may lag ([`idle_margin`]), so that a
    /// connection is never closed before it has really been idle that long.
    evict_idle_after: u64,
}

impl Registry {
    pub fn new(max_connections: usize, max_pending: usize, evict_idle_after: Duration) -> Registry {
        Registry {
            table: Mutex::new(Table::default()),
            max_connections,
            max_pending,
            evict_idle_after: idle_margin(evict_idle_after, monotonic_lag_ms()),
        }
    }

    fn now_ms(&self) -> u64 {
        monotonic_ms()
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // No code under this lock can panic half-way; keep serving if a
        // panic elsewhere poisoned it.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection, closing the longest-idle one if the table is
    /// full.
    pub fn admit(&self, stats: &Stats) -> Admission {
        let mut table = self.table();
        if table.len >= self.max_connections {
            let victim = self
                .now_ms()
                .checked_sub(self.evict_idle_after)
                .and_then(|idle_since| longest_idle(&table, idle_since));
            let Some(victim) = victim else {
                return Admission::Refused;
            };
            remove(&mut table, &victim);
            victim.wake.wake();
            Stats::bump(&stats.connections_closed_idle);
        }
        let entry = Arc::new(Entry {
            state: AtomicU8::new(IDLE),
            close: AtomicU8::new(NO_REQUEST),
            last_active: AtomicU64::new(self.now_ms()),
            pending: AtomicUsize::new(0),
            wake: AtomicWaker::new(),
            slot: AtomicUsize::new(0),
        });
        let slot = match table.free.pop() {
            Some(i) => i,
            None => {
                table.entries.push(None);
                table.entries.len() - 1
            }
        };
        entry.slot.store(slot, Relaxed);
        table.entries[slot] = Some(entry.clone());
        table.len += 1;
        Admission::Admitted(entry)
    }

    /// The connection has ended: it leaves the table and gives its pending
    /// bytes back.
    pub fn leave(&self, entry: &Arc<Entry>, stats: &Stats) {
        self.set_pending(entry, 0, stats);
        remove(&mut self.table(), entry);
    }

    /// Tells every connection to answer what it has read and close.
    pub fn shut_down_all(&self) {
        for entry in self.table().entries.iter().flatten() {
            entry.request_close(SHUTDOWN);
        }
    }

    /// Records that `entry` holds `bytes` of request lines. Past the budget,
    /// the connection holding the most (possibly this one) is told to close,
    /// and its bytes stop counting at once, so that one excess closes one
    /// connection.
    pub fn set_pending(&self, entry: &Entry, bytes: usize, stats: &Stats) {
        if entry.pending.load(Relaxed) == bytes {
            return;
        }
        let before = entry.pending.swap(bytes, AcqRel);
        let total = if bytes >= before {
            let added = (bytes - before) as u64;
            stats.pending_bytes.fetch_add(added, AcqRel) + added
        } else {
            let removed = (before - bytes) as u64;
            stats.pending_bytes.fetch_sub(removed, AcqRel) - removed
        };
        if total as usize > self.max_pending {
            self.close_largest(stats);
        }
    }

    /// Closes the largest holders until the total is within the budget.
    /// Under the table lock, so that connections passing the budget at the
    /// same moment do not each close one more than needed.
    fn close_largest(&self, stats: &Stats) {
        let table = self.table();
        while stats.pending_bytes.load(Acquire) as usize > self.max_pending {
            let largest = table
                .entries
                .iter()
                .flatten()
                .max_by_key(|e| e.pending.load(Relaxed))
                .filter(|e| e.pending.load(Relaxed) > 0);
            let Some(victim) = largest else {
                return;
            };
            let held = victim.pending.swap(0, AcqRel);
            stats.pending_bytes.fetch_sub(held as u64, AcqRel);
            victim.request_close(INPUT_BUDGET);
        }
    }
}

/// `at_least` in milliseconds of a clock that may lag the true time by up
/// to `lag`, never lead it: the stamp of going idle may be up to `lag`
/// early, which makes a connection look idle longer than it was; the
/// reading at admission lagging only makes it look idle for less. So
/// `lag` more is asked. Zero stays zero: any idle connection has been idle
/// that long.
fn idle_margin(at_least: Duration, lag: u64) -> u64 {
    let ms = at_least.as_millis().min(u64::MAX as u128 / 2) as u64;
    if ms == 0 {
        0
    } else {
        ms + lag
    }
}

/// The idle connection that went idle first, if that was at `idle_since` or
/// before, now marked evicted; `None` if every connection has a request in
/// progress or was active since.
fn longest_idle(table: &Table, idle_since: u64) -> Option<Arc<Entry>> {
    loop {
        let candidate = table
            .entries
            .iter()
            .flatten()
            .filter(|e| e.state.load(Acquire) == IDLE)
            .min_by_key(|e| e.last_active.load(Relaxed))
            .filter(|e| e.last_active.load(Relaxed) <= idle_since)?;
        // It may have begun work since it was looked at: then look again.
        if candidate
            .state
            .compare_exchange(IDLE, EVICTED, AcqRel, Acquire)
            .is_ok()
        {
            return Some(candidate.clone());
        }
    }
}

fn remove(table: &mut Table, entry: &Arc<Entry>) {
    let slot = entry.slot.load(Relaxed);
    if table
        .entries
        .get(slot)
        .and_then(Option::as_ref)
        .is_some_and(|e| Arc::ptr_eq(e, entry))
    {
        table.entries[slot] = None;
        table.free.push(slot);
        table.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(r: &Registry, stats: &Stats) -> Arc<Entry> {
        match r.admit(stats) {
            Admission::Admitted(e) => e,
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn the_longest_idle_is_closed_and_busy_ones_never() {
        let stats = Stats::default();
        let r = Registry::new(3, 1 << 20, Duration::ZERO);
        let a = admitted(&r, &stats);
        let b = admitted(&r, &stats);
        let c = admitted(&r, &stats);
        // b went idle before a (stamped a millisecond earlier: the coarse
        // clock may give both the same reading); c is in the middle of a
        // request.
        assert!(b.begin_work());
        b.end_work(&r);
        assert!(a.begin_work());
        a.end_work(&r);
        b.last_active
            .store(a.last_active.load(Relaxed) - 1, Relaxed);
        assert!(c.begin_work());
        let d = admitted(&r, &stats);
        assert!(b.evicted() && !a.evicted() && !c.evicted());
        assert!(!b.begin_work(), "an evicted connection reads nothing more");
        // d starts a request too: a is the only idle one left.
        assert!(d.begin_work());
        let _e = admitted(&r, &stats);
        assert!(a.evicted());
        assert!(_e.begin_work());
        // Every connection is busy: a new client is refused, none is closed.
        assert!(matches!(r.admit(&stats), Admission::Refused));
        assert!(!c.evicted() && !d.evicted());
        assert_eq!(stats.connections_closed_idle.load(Relaxed), 2);
    }

    #[test]
    fn the_idle_time_asked_covers_the_clocks_lag() {
        assert_eq!(idle_margin(Duration::ZERO, 5), 0);
        assert_eq!(idle_margin(Duration::from_secs(1), 5), 1005);
        assert_eq!(idle_margin(Duration::MAX, 5), u64::MAX / 2 + 5);
        let r = Registry::new(1, 1 << 20, Duration::from_millis(100));
        assert_eq!(r.evict_idle_after, 100 + monotonic_lag_ms());
    }

    #[test]
    fn no_more_is_closed_than_the_excess_needs() {
        let stats = Stats::default();
        let r = Registry::new(10, 100, Duration::ZERO);
        let empty = admitted(&r, &stats);
        let small = admitted(&r, &stats);
        let big = admitted(&r, &stats);
        r.set_pending(&small, 10, &stats);
        r.set_pending(&big, 95, &stats);
        assert_eq!(big.close_request(), Some(CloseRequest::InputBudget));
        // A check arriving late (another connection saw the excess too)
        // closes nothing more: the total is back within the budget.
        r.close_largest(&stats);
        assert_eq!(small.close_request(), None);
        assert_eq!(empty.close_request(), None);
        // A connection holding nothing is never closed for the budget.
        stats.pending_bytes.fetch_add(1000, AcqRel);
        r.close_largest(&stats);
        assert_eq!(small.close_request(), Some(CloseRequest::InputBudget));
        assert_eq!(empty.close_request(), None);
    }

    #[test]
    fn a_connection_active_a_moment_ago_is_not_idle() {
        let stats = Stats::default();
        let r = Registry::new(1, 1 << 20, Duration::from_secs(3600));
        let a = admitted(&r, &stats);
        assert!(a.begin_work());
        a.end_work(&r);
        assert!(matches!(r.admit(&stats), Admission::Refused));
        assert!(!a.evicted());
    }

    #[test]
    fn past_the_budget_the_largest_holder_is_told_to_close() {
        let stats = Stats::default();
        let r = Registry::new(10, 100, Duration::ZERO);
        let small = admitted(&r, &stats);
        let big = admitted(&r, &stats);
        r.set_pending(&small, 10, &stats);
        r.set_pending(&big, 80, &stats);
        assert_eq!(stats.pending_bytes.load(Relaxed), 90);
        assert_eq!(big.close_request(), None);
        r.set_pending(&small, 30, &stats);
        assert_eq!(big.close_request(), Some(CloseRequest::InputBudget));
        assert_eq!(small.close_request(), None);
        assert_eq!(
            stats.pending_bytes.load(Relaxed),
            30,
            "the closed one's bytes are given back at once"
        );
        // When the closed connection ends, nothing is given back twice.
        r.leave(&big, &stats);
        r.leave(&small, &stats);
        assert_eq!(stats.pending_bytes.load(Relaxed), 0);
    }
}
