//! What a store remembers to compact: the slots (a metric name's shard)
//! written in each hour not yet compacted, bounded by
//! `HAWKEYE_MAX_PENDING_COMPACTIONS` (docs/storage.md, "Compaction").

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use tracing::warn;

/// One slot: a metric name and its shard.
pub(super) type SlotId = (String, u32);

/// The slots written in each hour whose hours are not compacted yet. A
/// slot, not a series: a server writing a million series of one name
/// remembers one entry an hour, and finds the series-hours to compact in
/// the slot's open hours (`P:{T}:hours`) when the hour has closed, where
/// every writer's hours are listed (a restarted server's too).
pub(crate) struct Pending<T = SlotId> {
    inner: Mutex<PendingInner<T>>,
    /// `HAWKEYE_MAX_PENDING_COMPACTIONS`.
    max: usize,
}

struct PendingInner<T> {
    by_hour: BTreeMap<i64, HashSet<T>>,
    len: usize,
    /// Slot-hours not remembered since the last [`Pending::not_remembered`]
    /// (the bound was reached); logged at the first.
    not_remembered: usize,
}

impl<T: Clone + Eq + std::hash::Hash> Pending<T> {
    /// Remembers at most `max` entries.
    pub(crate) fn new(max: usize) -> Pending<T> {
        Pending {
            inner: Mutex::new(PendingInner {
                by_hour: BTreeMap::new(),
                len: 0,
                not_remembered: 0,
            }),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PendingInner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn add(&self, hour: i64, series: T) {
        let mut inner = self.lock();
        if inner.len >= self.max {
            if inner.not_remembered == 0 {
                warn!(
                    max = self.max,
                    "HAWKEYE_MAX_PENDING_COMPACTIONS reached: rollup hours written from now on are not compacted by this server until it has compacted some (they stay hour hashes, read exactly, using more Redis memory); raise it, or compact more often (HAWKEYE_COMPACTION_INTERVAL)"
                );
            }
            inner.not_remembered += 1;
            return;
        }
        if inner.by_hour.entry(hour).or_default().insert(series) {
            inner.len += 1;
        }
    }

    /// Takes up to `max` entries of hours closed before `closed_before`.
    pub(super) fn take(&self, closed_before: i64, max: usize) -> Vec<(i64, T)> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut entry) = inner.by_hour.first_entry() else {
                break;
            };
            if *entry.key() >= closed_before {
                break;
            }
            let hour = *entry.key();
            let series = entry.get_mut();
            let n = (max - out.len()).min(series.len());
            let taken: Vec<T> = series.iter().take(n).cloned().collect();
            for s in &taken {
                series.remove(s);
            }
            if series.is_empty() {
                entry.remove();
            }
            inner.len -= taken.len();
            out.extend(taken.into_iter().map(|s| (hour, s)));
        }
        out
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len
    }

    /// Entries not remembered since the last call (the bound was reached);
    /// the next one past the bound is logged again.
    pub(super) fn not_remembered(&self) -> usize {
        std::mem::take(&mut self.lock().not_remembered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_closed_hours_are_taken_and_the_bound_holds() {
        let pending = Pending::new(3);
        let id = |t: &str| (t.to_string(), 0);
        pending.add(10, id("a"));
        pending.add(10, id("a"));
        pending.add(10, id("b"));
        pending.add(11, id("a"));
        assert_eq!(pending.len(), 3);
        assert_eq!(pending.not_remembered(), 0);
        // Full: not remembered, and counted.
        pending.add(11, id("b"));
        pending.add(12, id("a"));
        assert_eq!(pending.len(), 3);
        assert_eq!(pending.not_remembered(), 2);
        assert_eq!(pending.not_remembered(), 0, "counted once");
        assert_eq!(pending.take(10, 100).len(), 0, "hour 10 not closed yet");
        assert_eq!(pending.take(11, 1).len(), 1);
        assert_eq!(pending.take(12, 100).len(), 2);
        assert_eq!(pending.len(), 0);
    }
}
