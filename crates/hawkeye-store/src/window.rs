//! Reading a window: which aggregations exist for which kind, what a query
//! asks, and how the per-second aggregates of several series become one value.
//! Both stores fetch per-second data their own way and share this code to
//! combine it, so they cannot disagree on what a window means.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use hawkeye_protocol::{MetricKind, TagFilter};

use crate::aggregate::{Aggregate, DistributionStats, GaugeStats};

/// Result of one query of a [`crate::Store::query_many`] call.
pub type QueryOutcome = Result<Option<f64>, QueryError>;

/// How a window is reduced to one number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Sum,
    /// Sum per second of window.
    Rate,
    Last,
    Min,
    Max,
    Avg,
    Count,
    /// `p50`, `p95`, `p99.9`…: the percentile as written (95.0).
    Percentile(f64),
    Unique,
}

impl Aggregation {
    /// The aggregation used when a query or monitor names none.
    pub fn default_for(kind: MetricKind) -> Aggregation {
        match kind {
            MetricKind::Counter => Aggregation::Sum,
            MetricKind::Gauge => Aggregation::Last,
            MetricKind::Distribution => Aggregation::Percentile(95.0),
            MetricKind::Set => Aggregation::Unique,
        }
    }

    pub fn applies_to(self, kind: MetricKind) -> bool {
        use Aggregation::*;
        match kind {
            MetricKind::Counter => matches!(self, Sum | Rate),
            MetricKind::Gauge => matches!(self, Last | Min | Max | Avg),
            MetricKind::Distribution => {
                matches!(self, Percentile(_) | Avg | Min | Max | Count | Sum)
            }
            MetricKind::Set => matches!(self, Unique),
        }
    }

    /// The names valid for `kind`, default first, for error messages.
    pub fn names_for(kind: MetricKind) -> &'static str {
        match kind {
            MetricKind::Counter => "sum, rate",
            MetricKind::Gauge => "last, min, max, avg",
            MetricKind::Distribution => "p95, p50, p90, p99 (any pNN), avg, min, max, count, sum",
            MetricKind::Set => "unique",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown aggregation {0:?} (expected sum, rate, last, min, max, avg, count, unique or pNN such as p95)")]
pub struct UnknownAggregation(pub String);

impl FromStr for Aggregation {
    type Err = UnknownAggregation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use Aggregation::*;
        Ok(match s {
            "sum" => Sum,
            "rate" => Rate,
            "last" => Last,
            "min" => Min,
            "max" => Max,
            "avg" | "mean" => Avg,
            "count" => Count,
            "unique" => Unique,
            p if p.starts_with('p') => {
                let n: f64 = p[1..]
                    .parse()
                    .map_err(|_| UnknownAggregation(s.to_string()))?;
                if !(0.0..=100.0).contains(&n) || p.len() < 2 {
                    return Err(UnknownAggregation(s.to_string()));
                }
                Percentile(n)
            }
            _ => return Err(UnknownAggregation(s.to_string())),
        })
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Aggregation::*;
        match self {
            Sum => f.write_str("sum"),
            Rate => f.write_str("rate"),
            Last => f.write_str("last"),
            Min => f.write_str("min"),
            Max => f.write_str("max"),
            Avg => f.write_str("avg"),
            Count => f.write_str("count"),
            Unique => f.write_str("unique"),
            Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// A window read: the series of `name` (of `kind`, when given) whose tags
/// match `tags`, over the `window_secs` seconds that end with `end`
/// (inclusive, unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowQuery {
    pub name: String,
    pub kind: Option<MetricKind>,
    pub tags: TagFilter,
    pub aggregation: Option<Aggregation>,
    pub window_secs: u64,
    pub end: i64,
    /// For a gauge read with `last`: how far back (seconds, counted from
    /// `end`) a series' latest value still counts when the window itself
    /// holds none of it. A gauge keeps its value until it is this stale, as
    /// in statsd and Prometheus (`docs/monitors.md`, `gauge_stale_after`).
    /// `None`: only the window counts.
    pub stale_after: Option<u64>,
}

impl WindowQuery {
    /// A query of every series of `name`, with the default aggregation of
    /// its kind, over the `window_secs` seconds that end with `end`.
    pub fn new(name: impl Into<String>, window_secs: u64, end: i64) -> WindowQuery {
        WindowQuery {
            name: name.into(),
            kind: None,
            tags: TagFilter::default(),
            aggregation: None,
            window_secs,
            end,
            stale_after: None,
        }
    }

    /// The first second inside the window.
    pub fn start(&self) -> i64 {
        self.end - self.window_secs.max(1) as i64 + 1
    }

    pub fn contains(&self, second: i64) -> bool {
        second >= self.start() && second <= self.end
    }
}

/// Why a query has no answer (as opposed to an answer of "no data").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{aggregation} does not apply to a {kind} (use {valid})")]
    WrongAggregation {
        aggregation: String,
        kind: MetricKind,
        valid: &'static str,
    },
    #[error("metric {name:?} has several types ({kinds}); name one with `type`")]
    AmbiguousKind { name: String, kinds: String },
    /// A range read ([`crate::range`]) with a step of 0 seconds.
    #[error("step: must be at least 1s")]
    ZeroStep,
    /// A range read with more steps than [`crate::range::MAX_RANGE_POINTS`].
    #[error("the range holds {points} steps, more than the {max} points a range read returns: use a longer step or a shorter window")]
    TooManyPoints { points: u64, max: u64 },
}

/// One series' seconds inside the window, reduced.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesWindow {
    Counter(f64),
    /// Gauge stats over the window; `last` is the value of its latest second.
    Gauge(GaugeStats),
    Distribution(DistributionStats),
    /// Exact members (in-memory store).
    SetMembers(HashSet<String>),
    /// A cardinality the store computed itself (Redis `PFCOUNT`).
    SetCount(f64),
}

impl SeriesWindow {
    /// Reduces one series' per-second aggregates, given in ascending order of second.
    pub fn from_seconds<'a>(
        seconds: impl IntoIterator<Item = &'a Aggregate>,
    ) -> Option<SeriesWindow> {
        let mut fold = SecondsFold::default();
        for agg in seconds {
            fold.push_ref(agg);
        }
        fold.finish()
    }
}

/// One series' per-second aggregates reduced as they come, in ascending
/// order of second: what [`SeriesWindow::from_seconds`] does, for a reader
/// whose seconds arrive in order and need no map to sort them.
#[derive(Debug, Default)]
pub struct SecondsFold(Option<Aggregate>);

impl SecondsFold {
    /// Adds the next second.
    pub fn push(&mut self, agg: Aggregate) {
        match &mut self.0 {
            None => self.0 = Some(agg),
            Some(acc) => acc.merge(&agg),
        }
    }

    fn push_ref(&mut self, agg: &Aggregate) {
        match &mut self.0 {
            None => self.0 = Some(agg.clone()),
            Some(acc) => acc.merge(agg),
        }
    }

    /// Whether no second was added since the last [`SecondsFold::finish`].
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The window of the seconds added (`None`: none), and a fold empty
    /// again for the next series.
    pub fn finish(&mut self) -> Option<SeriesWindow> {
        self.0.take().map(|a| match a {
            Aggregate::Counter(v) => SeriesWindow::Counter(v),
            Aggregate::Gauge(g) => SeriesWindow::Gauge(g),
            Aggregate::Distribution(d) => SeriesWindow::Distribution(*d),
            Aggregate::Set(s) => SeriesWindow::SetMembers(*s),
        })
    }
}

/// Picks the kind a query reads: the one it names, or the only one present.
pub fn resolve_kind(
    query: &WindowQuery,
    present: impl IntoIterator<Item = MetricKind>,
) -> Result<Option<MetricKind>, QueryError> {
    if query.kind.is_some() {
        return Ok(query.kind);
    }
    let mut kinds: Vec<MetricKind> = present.into_iter().collect();
    kinds.sort();
    kinds.dedup();
    match kinds.len() {
        0 => Ok(None),
        1 => Ok(Some(kinds[0])),
        _ => Err(QueryError::AmbiguousKind {
            name: query.name.clone(),
            kinds: kinds
                .iter()
                .map(|k| k.code())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Checks that the query's aggregation fits `kind`, and returns it.
pub fn aggregation_for(query: &WindowQuery, kind: MetricKind) -> Result<Aggregation, QueryError> {
    let aggregation = query
        .aggregation
        .unwrap_or_else(|| Aggregation::default_for(kind));
    if !aggregation.applies_to(kind) {
        return Err(QueryError::WrongAggregation {
            aggregation: aggregation.to_string(),
            kind,
            valid: Aggregation::names_for(kind),
        });
    }
    Ok(aggregation)
}

/// The windows of several series combined, one series at a time, so that a
/// query over many series never holds them all.
///
/// Across series: counters and gauge `last` values add up (all series of a
/// name are summed, as the spec says); min, max and avg take all series'
/// observations together; distributions merge their sketches; sets count the
/// union.
#[derive(Debug, Default)]
pub struct Combined {
    any: bool,
    counter: f64,
    gauge: Option<GaugeStats>,
    gauge_last_sum: f64,
    /// Made at the first distribution series: most reads have none, and
    /// a `Combined` without it is small to make, clear and drop (one per
    /// query read).
    dist: Option<Box<DistributionStats>>,
    /// Made at the first set series: most reads have none, and an empty
    /// set still costs a fresh hasher seed.
    members: Option<HashSet<String>>,
    set_count: f64,
}

impl Combined {
    /// Empties it for the next query (nothing to do if nothing was added).
    pub fn clear(&mut self) {
        if self.any {
            *self = Combined::default();
        }
    }

    pub fn add(&mut self, series: SeriesWindow) {
        self.any = true;
        match series {
            SeriesWindow::Counter(v) => self.counter += v,
            SeriesWindow::Gauge(g) => {
                self.gauge_last_sum += g.last;
                match &mut self.gauge {
                    None => self.gauge = Some(g),
                    Some(acc) => acc.merge(&g),
                }
            }
            SeriesWindow::Distribution(d) => {
                self.dist.get_or_insert_with(Default::default).merge(&d)
            }
            SeriesWindow::SetMembers(m) => self.members.get_or_insert_with(HashSet::new).extend(m),
            SeriesWindow::SetCount(c) => self.set_count += c,
        }
    }

    /// The query's value; `None` means the window holds no data.
    pub fn value(&self, aggregation: Aggregation, window_secs: u64) -> Option<f64> {
        use Aggregation::*;
        if !self.any {
            return None;
        }
        if let Some(g) = &self.gauge {
            return match aggregation {
                Last => Some(self.gauge_last_sum),
                Min => Some(g.min),
                Max => Some(g.max),
                Avg => Some(g.sum / g.count),
                _ => None,
            };
        }
        if let Some(dist) = self.dist.as_ref().filter(|d| d.count > 0.0) {
            return match aggregation {
                Percentile(p) => dist.quantile(p / 100.0),
                Avg => Some(dist.sum / dist.count),
                Min => Some(dist.min),
                Max => Some(dist.max),
                Count => Some(dist.count),
                Sum => Some(dist.sum),
                _ => None,
            };
        }
        match aggregation {
            Sum => Some(self.counter),
            Rate => Some(self.counter / window_secs.max(1) as f64),
            Unique => Some(self.members.as_ref().map_or(0, HashSet::len) as f64 + self.set_count),
            _ => None,
        }
    }
}

/// Combines the windows of every matching series into the query's value.
pub fn evaluate(
    aggregation: Aggregation,
    window_secs: u64,
    series: impl IntoIterator<Item = SeriesWindow>,
) -> Option<f64> {
    let mut combined = Combined::default();
    for s in series {
        combined.add(s);
    }
    combined.value(aggregation, window_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_names() {
        assert_eq!(
            "p95".parse::<Aggregation>().unwrap(),
            Aggregation::Percentile(95.0)
        );
        assert_eq!(
            "p99.9".parse::<Aggregation>().unwrap(),
            Aggregation::Percentile(99.9)
        );
        assert_eq!(Aggregation::Percentile(99.9).to_string(), "p99.9");
        assert_eq!("rate".parse::<Aggregation>().unwrap(), Aggregation::Rate);
        for bad in ["p", "p101", "median", "", "P95"] {
            assert!(bad.parse::<Aggregation>().is_err(), "{bad}");
        }
        assert_eq!(Aggregation::Percentile(95.0).to_string(), "p95");
    }

    #[test]
    fn gauges_sum_last_values_across_series() {
        let a = SeriesWindow::Gauge(GaugeStats::new(3.0));
        let mut b = GaugeStats::new(10.0);
        b.observe(4.0);
        let b = SeriesWindow::Gauge(b);
        assert_eq!(
            evaluate(Aggregation::Last, 60, [a.clone(), b.clone()]),
            Some(7.0)
        );
        assert_eq!(
            evaluate(Aggregation::Max, 60, [a.clone(), b.clone()]),
            Some(10.0)
        );
        assert_eq!(evaluate(Aggregation::Min, 60, [a, b]), Some(3.0));
    }

    /// One `Combined` serves several queries in turn (the Redis read):
    /// cleared, it keeps nothing of the previous query's series.
    #[test]
    fn a_cleared_combination_forgets_the_previous_query() {
        let mut c = Combined::default();
        let mut d = DistributionStats::default();
        d.observe(5.0, 1.0);
        c.add(SeriesWindow::Distribution(d));
        assert_eq!(c.value(Aggregation::Max, 60), Some(5.0));
        c.clear();
        assert_eq!(c.value(Aggregation::Sum, 60), None, "no series");
        c.add(SeriesWindow::Counter(3.0));
        assert_eq!(
            c.value(Aggregation::Sum, 60),
            Some(3.0),
            "not a distribution"
        );
        c.clear();
        c.add(SeriesWindow::Gauge(GaugeStats::new(2.0)));
        assert_eq!(c.value(Aggregation::Last, 60), Some(2.0), "not a counter");
    }

    #[test]
    fn empty_window_is_none_and_rate_divides() {
        assert_eq!(evaluate(Aggregation::Sum, 60, []), None);
        assert_eq!(
            evaluate(Aggregation::Rate, 60, [SeriesWindow::Counter(120.0)]),
            Some(2.0)
        );
    }
}
