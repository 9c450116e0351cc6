//! Which monitors are due, which slot each checks, and the windows to read.
//!
//! Checks are aligned on wall-clock multiples of the interval (slots), so
//! agents sharing a store evaluate the same slots. The check of the slot
//! starting at `s` reads the window that ends with the last second before
//! `s`, and runs at `s + evaluation_delay`: with the delay longer than the
//! server's flush interval, every event is in the store when the window
//! that holds it is read; with `window = interval` consecutive windows tile
//! time, so each event is counted exactly once.

use std::collections::BTreeMap;

use hawkeye_protocol::MetricKind;
use hawkeye_store::{Aggregation, GroupedQuery, WindowQuery};

use super::health::Run;
use crate::monitors::Monitor;
use crate::state::UnixMillis;

/// A monitor as the engine schedules it.
pub(crate) struct Scheduled {
    pub(super) monitor: Monitor,
    pub(super) interval_ms: u64,
    pub(super) next_due: UnixMillis,
    /// State key of each trigger.
    pub(super) keys: Vec<String>,
    /// The last query error logged for this monitor (logged once).
    pub(super) query_error: Option<String>,
    /// Per trigger, the run of unevaluated checks ending at the next one.
    pub(super) runs: Vec<Run>,
    /// One group of a monitor with `group_by` (see `groups`): checked with
    /// it, never on its own.
    pub(super) group: Option<Group>,
    /// A monitor with `group_by`: its groups' entries, by tag values.
    pub(super) children: BTreeMap<Vec<String>, usize>,
    /// Groups past `max_groups` were left out at the last check (logged
    /// once until they fit again).
    pub(super) over_max_groups: bool,
    /// Where the monitor's window reads (its metric's, then `ratio_of`'s)
    /// are in the engine's vector of them (`own` of [`plan`]): built at its first
    /// check and kept; a tick moves only their `end`.
    query_at: Option<usize>,
    /// The same, for a monitor with `group_by`.
    grouped_queries: Vec<GroupedQuery>,
}

/// What a group's entry knows of its group.
pub(crate) struct Group {
    /// The index of the monitor it is a group of.
    pub(super) parent: usize,
    /// `(tag, value)` in `group_by` order.
    pub(super) labels: Vec<(String, String)>,
    /// The slot of the last check that found data of the group.
    pub(super) last_seen: UnixMillis,
    /// Stale: resolved and removed before the next tick.
    pub(super) gone: bool,
}

impl Scheduled {
    /// `monitor`, with the state key of each trigger, due at `now`.
    pub(super) fn new(monitor: &Monitor, keys: Vec<String>, now: UnixMillis) -> Scheduled {
        Scheduled {
            interval_ms: (monitor.interval.as_millis() as u64).max(1),
            monitor: monitor.clone(),
            next_due: now,
            runs: vec![Run::default(); keys.len()],
            keys,
            query_error: None,
            group: None,
            children: BTreeMap::new(),
            over_max_groups: false,
            query_at: None,
            grouped_queries: Vec::new(),
        }
    }

    /// Builds the window reads of a monitor without `group_by` (once: they
    /// are kept in `own`) and moves their window to end at unix second
    /// `end`; where they are in `own`.
    fn aim_own(&mut self, own: &mut Vec<WindowQuery>, end: i64) -> usize {
        let m = &self.monitor;
        let at = *self.query_at.get_or_insert_with(|| {
            let at = own.len();
            own.extend(
                std::iter::once(&m.metric)
                    .chain(&m.ratio_of)
                    .map(|n| window_query(m, n)),
            );
            at
        });
        let count = 1 + usize::from(m.ratio_of.is_some());
        for q in &mut own[at..at + count] {
            q.end = end;
        }
        at
    }

    /// Builds the grouped reads of a monitor with `group_by` (once: they
    /// are kept) and moves their window to end at unix second `end`.
    fn aim_grouped(&mut self, end: i64) {
        let m = &self.monitor;
        if self.grouped_queries.is_empty() {
            let grouped = |name: &String| GroupedQuery {
                query: window_query(m, name),
                group_by: m.group_by.clone(),
            };
            let names = std::iter::once(&m.metric).chain(&m.ratio_of);
            self.grouped_queries = names.map(grouped).collect();
        }
        for q in &mut self.grouped_queries {
            q.query.end = end;
        }
    }

    /// The monitor's index in the file: its own, or its parent's.
    pub(super) fn file_index(&self, own: usize) -> usize {
        self.group.as_ref().map_or(own, |g| g.parent)
    }

    /// The group's `(tag, value)` pairs; empty for a monitor without `group_by`.
    pub(super) fn labels(&self) -> &[(String, String)] {
        self.group.as_ref().map_or(&[], |g| &g.labels)
    }
}

/// The read of `name` (the metric or `ratio_of`) for monitor `m`; its
/// `end` is set at each check.
fn window_query(m: &Monitor, name: &str) -> WindowQuery {
    let gauge_last = m.kind == MetricKind::Gauge && m.aggregation == Aggregation::Last;
    WindowQuery {
        name: name.to_string(),
        kind: Some(m.kind),
        tags: m.tags.clone(),
        aggregation: Some(m.aggregation),
        window_secs: m.window_secs(),
        end: 0,
        stale_after: gauge_last.then_some(m.gauge_stale_after.as_secs()),
    }
}

/// The reads of one tick.
#[derive(Default)]
pub(crate) struct Plan {
    /// Indexes of the monitors due.
    pub due: Vec<usize>,
    /// Per monitor due: the slot its check reads (unix ms).
    pub slots: Vec<UnixMillis>,
    /// The window reads of the tick: first the monitors' own, lent (see
    /// [`Plan::give_back`]), then those `slo.rs` adds.
    pub queries: Vec<WindowQuery>,
    /// Per monitor due: its query, and its denominator's for `ratio_of`;
    /// `None` for an SLO monitor, which reads only its burn-rate windows
    /// and period (`slo.rs` adds them), never its `window`.
    pub query_index: Vec<Option<(usize, Option<usize>)>>,
    /// Grouped reads: one per monitor with `group_by` (two with
    /// `ratio_of`); its groups join `due` once read. Lent as `queries`.
    pub grouped_queries: Vec<GroupedQuery>,
    /// Per monitor with `group_by` due: its index, slot, and grouped queries.
    pub grouped: Vec<(usize, UnixMillis, usize, Option<usize>)>,
    /// How many of `queries` (the first ones) are the monitors' own.
    own: usize,
    /// `queries` is the engine's whole vector of the monitors' own reads
    /// (every monitor that has them is due: the usual tick), lent as is.
    whole: bool,
    /// Otherwise, where each of the first `own` queries was taken from.
    own_at: Vec<usize>,
    /// The monitors with `group_by` whose queries were lent, in order.
    lent: Vec<usize>,
}

impl Plan {
    /// Lends the own reads of the monitors due (`lent` of them, at the
    /// places `query_index` says in `own`) to `queries`: the whole vector
    /// when they are all of it, without touching any; otherwise each is
    /// moved out (and `query_index` then says where it is in `queries`).
    fn lend(&mut self, own: &mut Vec<WindowQuery>, lent: usize) {
        self.own = lent;
        if lent > 0 && lent == own.len() {
            self.whole = true;
            std::mem::swap(&mut self.queries, own);
            return;
        }
        for index in self.query_index.iter_mut().flatten() {
            let (main, other) = *index;
            for at in std::iter::once(main).chain(other) {
                let moved = std::mem::replace(&mut own[at], WindowQuery::new(String::new(), 0, 0));
                self.queries.push(moved);
                self.own_at.push(at);
            }
            let main = self.own_at.len() - 1 - usize::from(other.is_some());
            *index = (main, other.map(|_| main + 1));
        }
    }

    /// Returns the queries lent to the plan (once the store has read them):
    /// the monitors' own to `own`, the grouped ones to their monitors.
    /// `queries` and `grouped_queries` are empty after; calling it again
    /// does nothing.
    pub(crate) fn give_back(&mut self, monitors: &mut [Scheduled], own: &mut Vec<WindowQuery>) {
        if self.whole {
            // Without the reads `slo.rs` added after them.
            self.queries.truncate(self.own);
            std::mem::swap(&mut self.queries, own);
            self.whole = false;
        } else {
            for (q, &at) in self.queries.drain(..).zip(&self.own_at) {
                own[at] = q;
            }
            self.own_at.clear();
        }
        self.queries.clear();
        self.own = 0;
        let mut grouped = self.grouped_queries.drain(..);
        for &i in &self.lent {
            let s = &mut monitors[i];
            let count = 1 + usize::from(s.monitor.ratio_of.is_some());
            s.grouped_queries.extend(grouped.by_ref().take(count));
        }
        self.lent.clear();
    }

    /// The plan emptied, its buffers kept for the next tick's: at 100 000
    /// monitors, vectors grown from empty at every tick cost more than
    /// planning itself (reallocations and copies, fresh pages).
    /// Grouped queries not given back (none after [`Plan::give_back`]) are
    /// dropped: their monitors build them again at their next check.
    fn recycle(mut self) -> Plan {
        self.due.clear();
        self.slots.clear();
        self.query_index.clear();
        self.queries.clear();
        self.grouped_queries.clear();
        self.grouped.clear();
        self.lent.clear();
        self.own_at.clear();
        self.own = 0;
        self.whole = false;
        self
    }
}

/// Plans the checks due at `now` into `plan` (a recycled one, see
/// [`Plan::recycle`]) and schedules each monitor's next one. `own` holds
/// the window reads of the monitors without `group_by` (see
/// [`Scheduled::aim_own`]); they are lent to the plan until
/// [`Plan::give_back`].
pub(crate) fn plan(
    monitors: &mut [Scheduled],
    own: &mut Vec<WindowQuery>,
    now: UnixMillis,
    delay_ms: u64,
    plan: Plan,
) -> Plan {
    let mut plan = plan.recycle();
    plan.due.reserve(monitors.len());
    plan.slots.reserve(monitors.len());
    plan.query_index.reserve(monitors.len());
    let mut lent = 0;
    for (i, s) in monitors.iter_mut().enumerate() {
        // Groups are checked with their monitor.
        if s.next_due > now || s.group.is_some() {
            continue;
        }
        let slot_index = now.saturating_sub(delay_ms) / s.interval_ms;
        let slot = slot_index * s.interval_ms;
        s.next_due = slot + s.interval_ms + delay_ms;
        if s.monitor.slo.is_some() {
            // No `group_by` on an SLO monitor (monitors/slo.rs refuses it).
            plan.due.push(i);
            plan.slots.push(slot);
            plan.query_index.push(None);
            continue;
        }
        // The last whole second before the slot began.
        let end = (slot / 1000) as i64 - 1;
        let ratio = s.monitor.ratio_of.is_some();
        if !s.monitor.group_by.is_empty() {
            s.aim_grouped(end);
            plan.lent.push(i);
            let main = plan.grouped_queries.len();
            plan.grouped_queries.append(&mut s.grouped_queries);
            plan.grouped
                .push((i, slot, main, ratio.then_some(main + 1)));
            continue;
        }
        let at = s.aim_own(own, end);
        lent += 1 + usize::from(ratio);
        plan.due.push(i);
        plan.slots.push(slot);
        plan.query_index.push(Some((at, ratio.then_some(at + 1))));
    }
    plan.lend(own, lent);
    plan
}
