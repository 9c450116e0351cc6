//! What `/metrics` shows of the series (`HAWKEYE_HTTP_ADDR`, off unless
//! set): fed by the flusher with every batch right after it is cut, so each
//! event counts once, whether or not the store took it yet
//! (docs/protocol.md, "Prometheus").
//!
//! Per series it keeps: a counter's total since the server started; a
//! gauge's last value; a distribution's total count and sum, and its
//! observations over the last 60 seconds for the quantiles; a set's members
//! (as 8-byte hashes) over the last 60 seconds for its unique count.
//!
//! Bounds, as the aggregator's: at most `HAWKEYE_MAX_SERIES` series (more
//! are not shown, and counted), series not seen for `HAWKEYE_RETENTION`
//! forgotten, and the windows' sketch buckets and set members together at
//! most `HAWKEYE_MAX_BUFFERED` (past it, new ones are not kept for the
//! window, and counted; totals stay exact).

mod page;
mod window;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use hawkeye_protocol::SeriesKey;
use hawkeye_store::aggregate::{Aggregate, DistributionStats};
use hawkeye_store::WriteBatch;
use rapidhash::quality::RandomState;

use window::Window;

/// How often idle series are looked for, at most.
const SWEEP_EVERY_SECS: i64 = 60;

/// What is kept of one series.
enum Tracked {
    Counter(f64),
    Gauge(f64),
    Distribution {
        count: f64,
        sum: f64,
        window: Window<DistributionStats>,
    },
    Set(Window<HashSet<u64>>),
}

struct Entry {
    tracked: Tracked,
    last_seen: i64,
}

#[derive(Default)]
struct State {
    series: HashMap<Arc<SeriesKey>, Entry>,
    /// Sketch buckets and set members held by the windows.
    units: usize,
    last_sweep: i64,
}

pub(crate) struct Exporter {
    state: Mutex<State>,
    max_series: usize,
    max_units: usize,
    retention_secs: i64,
    hasher: RandomState,
    /// Series not shown because `max_series` were shown already.
    pub series_dropped: AtomicU64,
    /// Sketch buckets and set members not kept for the windows (budget).
    pub window_units_dropped: AtomicU64,
}

impl Exporter {
    pub fn new(max_series: usize, max_units: usize, retention_secs: i64) -> Exporter {
        Exporter {
            state: Mutex::new(State::default()),
            max_series,
            max_units,
            retention_secs,
            hasher: RandomState::new(),
            series_dropped: AtomicU64::new(0),
            window_units_dropped: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock panics half-way through an update.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in a batch just cut, at `now` (unix seconds).
    pub fn observe(&self, batch: &WriteBatch, now: i64) {
        let mut state = self.state();
        let state = &mut *state;
        for write in &batch.series {
            if state.series.len() >= self.max_series && !state.series.contains_key(&write.key) {
                self.series_dropped.fetch_add(1, Relaxed);
                continue;
            }
            let entry = state
                .series
                .entry(write.key.clone())
                .or_insert_with(|| Entry {
                    tracked: fresh(&write.points[0].1),
                    last_seen: now,
                });
            entry.last_seen = now;
            for (second, aggregate) in &write.points {
                self.add(
                    &mut entry.tracked,
                    &mut state.units,
                    *second,
                    now,
                    aggregate,
                );
            }
        }
        if now - state.last_sweep >= SWEEP_EVERY_SECS {
            state.last_sweep = now;
            self.sweep(state, now);
        }
    }

    /// Adds one second's aggregate of a series.
    fn add(
        &self,
        tracked: &mut Tracked,
        units: &mut usize,
        second: i64,
        now: i64,
        agg: &Aggregate,
    ) {
        let budget = self.max_units;
        let dropped = &self.window_units_dropped;
        match (tracked, agg) {
            (Tracked::Counter(total), Aggregate::Counter(n)) => *total += n,
            (Tracked::Gauge(last), Aggregate::Gauge(g)) => *last = g.last,
            (Tracked::Distribution { count, sum, window }, Aggregate::Distribution(d)) => {
                *count += d.count;
                *sum += d.sum;
                let freed = |old: DistributionStats| *units -= buckets(&old);
                if let Some(bucket) = window.bucket(second, now, freed) {
                    let before = buckets(bucket);
                    // At most: buckets already there do not grow.
                    let grows = buckets(d);
                    if *units + grows > budget {
                        dropped.fetch_add(grows as u64, Relaxed);
                    } else {
                        bucket.merge(d);
                        *units += buckets(bucket) - before;
                    }
                }
            }
            (Tracked::Set(window), Aggregate::Set(members)) => {
                let freed = |old: HashSet<u64>| *units -= old.len();
                if let Some(bucket) = window.bucket(second, now, freed) {
                    for member in members.iter() {
                        if *units >= budget {
                            dropped.fetch_add(1, Relaxed);
                        } else if bucket.insert(window::member_hash(&self.hasher, member)) {
                            *units += 1;
                        }
                    }
                }
            }
            // The series key holds the kind: a mismatch cannot happen.
            _ => {}
        }
    }

    /// Forgets series not seen for the retention; drops window buckets
    /// gone out of the window.
    fn sweep(&self, state: &mut State, now: i64) {
        let cutoff = now - self.retention_secs;
        let units = &mut state.units;
        state.series.retain(|_, entry| {
            let keep = entry.last_seen >= cutoff;
            match &mut entry.tracked {
                Tracked::Distribution { window, .. } => {
                    window.expire(if keep { now } else { i64::MAX }, |old| {
                        *units -= buckets(&old)
                    });
                }
                Tracked::Set(window) => {
                    window.expire(if keep { now } else { i64::MAX }, |old| *units -= old.len());
                }
                Tracked::Counter(_) | Tracked::Gauge(_) => {}
            }
            keep
        });
    }

    /// Series shown now.
    #[cfg(test)]
    pub fn series_count(&self) -> usize {
        self.state().series.len()
    }
}

fn fresh(first: &Aggregate) -> Tracked {
    match first {
        Aggregate::Counter(_) => Tracked::Counter(0.0),
        Aggregate::Gauge(g) => Tracked::Gauge(g.last),
        Aggregate::Distribution(_) => Tracked::Distribution {
            count: 0.0,
            sum: 0.0,
            window: Window::default(),
        },
        Aggregate::Set(_) => Tracked::Set(Window::default()),
    }
}

/// Sketch buckets of a distribution (what it costs in the budget).
fn buckets(d: &DistributionStats) -> usize {
    d.sketch.positive.len() + d.sketch.negative.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::jsonrpc::StatsResult;
    use hawkeye_protocol::parse_line;

    const NOW: i64 = 1_700_000_000;

    /// A batch as the aggregator would cut it, from lines at `second`.
    fn batch(lines: &[&str], second: i64) -> WriteBatch {
        let mut aggregator = crate::aggregator::Aggregator::new(1000, 100_000, 3600);
        for line in lines {
            aggregator
                .apply(&parse_line(line).unwrap(), second)
                .unwrap();
        }
        let mut queue = crate::aggregator::CutQueue::default();
        aggregator.take_dirty(&mut queue);
        queue.sort();
        aggregator.cut(&mut queue, 1, 1).batch
    }

    fn page(e: &Exporter, now: i64) -> String {
        e.render(&StatsResult::default(), now)
    }

    #[test]
    fn counters_add_up_gauges_keep_the_last_sets_count_their_window() {
        let e = Exporter::new(100, 1000, 3600);
        e.observe(&batch(&["hits:1|c", "g:5|g", "u:a|s", "u:b|s"], NOW), NOW);
        e.observe(
            &batch(&["hits:2|c|@0.5", "g:7|g", "u:a|s"], NOW + 1),
            NOW + 1,
        );
        let text = page(&e, NOW + 1);
        assert!(text.contains("\nhits_total 5.0\n"), "{text}");
        assert!(text.contains("\ng 7.0\n"), "{text}");
        assert!(text.contains("\nu 2.0\n"), "{text}");
        // A minute later the set's members are out of its window; the
        // counter is a total since the start.
        let text = page(&e, NOW + 61);
        assert!(text.contains("\nu 0.0\n"), "{text}");
        assert!(text.contains("\nhits_total 5.0\n"), "{text}");
    }

    #[test]
    fn series_are_bounded_and_forgotten_after_the_retention() {
        let e = Exporter::new(2, 1000, 3600);
        e.observe(&batch(&["a:1|c", "b:1|c", "c:1|c"], NOW), NOW);
        assert_eq!(e.series_count(), 2);
        assert_eq!(e.series_dropped.load(Relaxed), 1);
        e.observe(&batch(&["a:1|c"], NOW + 3000), NOW + 3000);
        // b is idle past the retention: forgotten at the next sweep, which
        // makes room for c.
        e.observe(&batch(&["a:1|c"], NOW + 3601), NOW + 3601);
        assert_eq!(e.series_count(), 1);
        e.observe(&batch(&["c:1|c"], NOW + 3602), NOW + 3602);
        assert_eq!(e.series_count(), 2);
        assert_eq!(e.series_dropped.load(Relaxed), 1);
    }

    #[test]
    fn the_windows_hold_at_most_the_budget() {
        let e = Exporter::new(100, 3, 3600);
        let members: Vec<String> = (0..5).map(|i| format!("u:m{i}|s")).collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        e.observe(&batch(&members, NOW), NOW);
        assert_eq!(e.window_units_dropped.load(Relaxed), 2);
        assert!(page(&e, NOW).contains("\nu 3.0\n"));
        // Out of the window, the budget is given back.
        e.observe(&batch(&["u:new|s"], NOW + 70), NOW + 70);
        assert!(page(&e, NOW + 70).contains("\nu 1.0\n"));
        assert_eq!(e.state().units, 1);
    }
}
