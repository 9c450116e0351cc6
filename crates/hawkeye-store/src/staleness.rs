//! A gauge keeps its last value until it is stale: a gauge read with `last`
//! and [`WindowQuery::stale_after`] reads back to `end - stale_after + 1`,
//! so a series reported less often than the window is checked still has a
//! value (its latest one) instead of "no data" (`docs/monitors.md`,
//! `gauge_stale_after`). Every other read covers exactly its window. Both
//! stores call these to decide which seconds they fetch.

use hawkeye_protocol::MetricKind;

use crate::window::{Aggregation, WindowQuery};

/// The first second fetched once the query's kind and aggregation are known.
pub(crate) fn read_start(query: &WindowQuery, kind: MetricKind, aggregation: Aggregation) -> i64 {
    match query.stale_after {
        Some(stale) if kind == MetricKind::Gauge && aggregation == Aggregation::Last => {
            lookback_start(query, stale)
        }
        _ => query.start(),
    }
}

/// The first second whose series are candidates, before the kind is known:
/// as far back as a gauge `last` may look.
pub(crate) fn candidates_start(query: &WindowQuery) -> i64 {
    let may_be_stale_gauge = query.kind.is_none_or(|k| k == MetricKind::Gauge)
        && query.aggregation.is_none_or(|a| a == Aggregation::Last);
    match query.stale_after {
        Some(stale) if may_be_stale_gauge => lookback_start(query, stale),
        _ => query.start(),
    }
}

fn lookback_start(query: &WindowQuery, stale: u64) -> i64 {
    let stale = stale.min(i64::MAX as u64) as i64;
    query.start().min(query.end.saturating_sub(stale) + 1)
}
