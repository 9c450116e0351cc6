//! Which monitors are due, which slot each checks, and the windows to read.
//!
//! Checks are aligned on wall-clock multiples of the interval (slots), so
//! agents sharing a store evaluate the same slots. The check of the slot
//! starting at `s` reads the window that ends with the last second before
//! `s`, and runs at `s + evaluation_delay`: with the delay longer than the
//! server's flush interval, every event is in the store when the window
//! that holds it is read; with `window = interval` consecutive windows tile
//! time, so each event is counted exactly once.

use hawkeye_protocol::MetricKind;
use hawkeye_store::{Aggregation, WindowQuery};

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
        }
    }
}

/// The reads of one tick.
pub(crate) struct Plan {
    /// Indexes of the monitors due.
    pub due: Vec<usize>,
    /// Per monitor due: the slot its check reads (unix ms).
    pub slots: Vec<UnixMillis>,
    pub queries: Vec<WindowQuery>,
    /// Per monitor due: its query, and its denominator's for `ratio_of`.
    pub query_index: Vec<(usize, Option<usize>)>,
}

/// Plans the checks due at `now` and schedules each monitor's next one.
pub(crate) fn plan(monitors: &mut [Scheduled], now: UnixMillis, delay_ms: u64) -> Plan {
    let mut plan = Plan {
        due: Vec::new(),
        slots: Vec::new(),
        queries: Vec::new(),
        query_index: Vec::new(),
    };
    for (i, s) in monitors.iter_mut().enumerate() {
        if s.next_due > now {
            continue;
        }
        let slot_index = now.saturating_sub(delay_ms) / s.interval_ms;
        let slot = slot_index * s.interval_ms;
        s.next_due = slot + s.interval_ms + delay_ms;
        let m = &s.monitor;
        // The last whole second before the slot began.
        let end = (slot / 1000) as i64 - 1;
        let gauge_last = m.kind == MetricKind::Gauge && m.aggregation == Aggregation::Last;
        let query = |name: &str| WindowQuery {
            name: name.to_string(),
            kind: Some(m.kind),
            tags: m.tags.clone(),
            aggregation: Some(m.aggregation),
            window_secs: m.window_secs(),
            end,
            stale_after: gauge_last.then_some(m.gauge_stale_after.as_secs()),
        };
        let main = plan.queries.len();
        plan.queries.push(query(&m.metric));
        let other = m.ratio_of.as_ref().map(|o| {
            plan.queries.push(query(o));
            plan.queries.len() - 1
        });
        plan.due.push(i);
        plan.slots.push(slot);
        plan.query_index.push((main, other));
    }
    plan
}
