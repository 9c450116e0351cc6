//! The arithmetic of one line on one aggregate, written once: [`plan`]
//! computes what the aggregate's numbers would become, on copies, and refuses
//! the line if any would leave the range; only then does [`commit`] change
//! the aggregate, with the numbers the plan computed.
//!
//! The range is ±[`MAX_MAGNITUDE`], not just "finite": the store adds
//! aggregates up (seconds of a window, series of a name, flushes of several
//! servers), and a window total past the largest double would read back as
//! no data. 1e200 leaves room for 1e108 aggregates in one sum.

use hawkeye_protocol::{MetricKind, MetricLine, Value};
use hawkeye_store::aggregate::{Aggregate, GaugeStats};

/// Largest magnitude of a value, and of every number of a per-second
/// aggregate (sums, weighted counts).
pub const MAX_MAGNITUDE: f64 = 1e200;

/// What a line will do, computed before anything changes.
pub(super) enum Plan {
    Counter(f64),
    Gauge { stats: GaugeStats, current: f64 },
    Distribution { count: f64, sum: f64 },
    Set,
}

fn in_range(x: f64) -> bool {
    // False for NaN and the infinities too.
    x.abs() <= MAX_MAGNITUDE
}

/// The numbers `line` (each value weighing `weight`) would leave in
/// `existing` (or in a fresh aggregate), or `None` if one leaves the range.
/// `gauge` is the series' current gauge value, which `+N`/`-N` adjust.
pub(super) fn plan(
    existing: Option<&Aggregate>,
    gauge: f64,
    line: &MetricLine<'_>,
    weight: f64,
) -> Option<Plan> {
    let numbers = line.values.iter().filter_map(|v| match v {
        Value::Number(n) | Value::Delta(n) => Some(*n),
        Value::Member(_) => None,
    });
    if !in_range(weight) || numbers.clone().any(|n| !in_range(n)) {
        return None;
    }
    match line.kind {
        MetricKind::Counter => {
            let mut sum = match existing {
                Some(Aggregate::Counter(s)) => *s,
                _ => 0.0,
            };
            for n in numbers {
                sum += n * weight;
            }
            in_range(sum).then_some(Plan::Counter(sum))
        }
        MetricKind::Gauge => {
            let mut stats = match existing {
                Some(Aggregate::Gauge(g)) => g.clone(),
                _ => GaugeStats {
                    last: gauge,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    sum: 0.0,
                    count: 0.0,
                },
            };
            let mut current = gauge;
            for value in &line.values {
                current = match value {
                    Value::Delta(d) => current + d,
                    Value::Number(v) => *v,
                    Value::Member(_) => current,
                };
                if stats.count == 0.0 {
                    stats = GaugeStats::new(current);
                } else {
                    stats.observe(current);
                }
            }
            (in_range(current) && in_range(stats.sum)).then_some(Plan::Gauge { stats, current })
        }
        MetricKind::Distribution => {
            let (mut count, mut sum) = match existing {
                Some(Aggregate::Distribution(d)) => (d.count, d.sum),
                _ => (0.0, 0.0),
            };
            for n in numbers {
                count += weight;
                sum += n * weight;
            }
            (in_range(count) && in_range(sum)).then_some(Plan::Distribution { count, sum })
        }
        MetricKind::Set => Some(Plan::Set),
    }
}

/// Applies a plan made for `agg` (a fresh or existing aggregate of the
/// line's kind) by [`plan`]. Returns the buffer units it added (see
/// [`units`]).
pub(super) fn commit(
    agg: &mut Aggregate,
    gauge: &mut f64,
    plan: Plan,
    line: &MetricLine<'_>,
    weight: f64,
) -> usize {
    match (agg, plan) {
        (Aggregate::Counter(sum), Plan::Counter(planned)) => {
            *sum = planned;
            0
        }
        (Aggregate::Gauge(g), Plan::Gauge { stats, current }) => {
            *g = stats;
            *gauge = current;
            0
        }
        (Aggregate::Distribution(d), Plan::Distribution { count, sum }) => {
            let buckets = d.sketch.positive.len() + d.sketch.negative.len();
            let mut empty = d.count == 0.0;
            for value in &line.values {
                if let Value::Number(v) = value {
                    if empty {
                        (d.min, d.max, empty) = (*v, *v, false);
                    } else {
                        (d.min, d.max) = (d.min.min(*v), d.max.max(*v));
                    }
                    d.sketch.add(*v, weight);
                }
            }
            (d.count, d.sum) = (count, sum);
            d.sketch.positive.len() + d.sketch.negative.len() - buckets
        }
        (Aggregate::Set(members), Plan::Set) => {
            let mut added = 0;
            for value in &line.values {
                // Look up before inserting so a repeated member allocates nothing.
                if let Value::Member(m) = value {
                    if !members.contains(*m) {
                        members.insert((*m).to_string());
                        added += member_units(m);
                    }
                }
            }
            added
        }
        // `plan` matches the line's kind, as does the series' aggregate.
        _ => 0,
    }
}

/// A set member costs a unit per 64 bytes begun beyond its first: members
/// may be up to `HAWKEYE_MAX_KEY_BYTES` long, and the bound must follow memory.
fn member_units(member: &str) -> usize {
    1 + member.len() / 64
}

/// A fresh aggregate for a line of `kind`.
pub(super) fn fresh(kind: MetricKind, gauge: f64) -> Aggregate {
    match kind {
        MetricKind::Counter => Aggregate::Counter(0.0),
        MetricKind::Gauge => Aggregate::Gauge(GaugeStats {
            last: gauge,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0.0,
        }),
        MetricKind::Distribution => Aggregate::Distribution(Box::default()),
        MetricKind::Set => Aggregate::Set(Box::default()),
    }
}

/// What an aggregate counts against `max_buffered`: one, plus each sketch
/// bucket and each set member (by its length), so that the bound follows
/// memory. Linear in a set's members: for a batch or an undo, not per event.
pub(super) fn units(agg: &Aggregate) -> usize {
    match agg {
        Aggregate::Distribution(d) => 1 + d.sketch.positive.len() + d.sketch.negative.len(),
        Aggregate::Set(members) => 1 + members.iter().map(|m| member_units(m)).sum::<usize>(),
        Aggregate::Counter(_) | Aggregate::Gauge(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::parse_line;

    fn planned(existing: Option<&Aggregate>, line: &str) -> Option<Plan> {
        let line = parse_line(line).unwrap();
        plan(existing, 0.0, &line, 1.0 / line.sample_rate)
    }

    #[test]
    fn sums_past_the_range_are_refused_before_anything_changes() {
        let near = Aggregate::Counter(9e199);
        assert!(planned(Some(&near), "a:2e199|c").is_none());
        assert!(planned(Some(&near), "a:1e198|c").is_some());
        assert!(planned(None, "a:1e201|c").is_none());
        assert!(
            planned(None, "a:1e150|c|@1e-60").is_none(),
            "the weight counts"
        );
        assert!(planned(None, "a:1e199:1e199:1e199|ms").is_some());
        assert!(planned(None, "a:9e199:9e199|ms").is_none());
        assert!(planned(None, "a:1e201|g").is_none());
        assert!(
            planned(None, "a:9e199|g|@0.5").is_some(),
            "gauges are not weighted"
        );
    }

    #[test]
    fn commit_writes_what_was_planned() {
        let line = parse_line("a:2:4|ms|@0.5").unwrap();
        let mut agg = fresh(MetricKind::Distribution, 0.0);
        let mut gauge = 0.0;
        let p = plan(Some(&agg), gauge, &line, 2.0).unwrap();
        assert_eq!(
            commit(&mut agg, &mut gauge, p, &line, 2.0),
            2,
            "two buckets"
        );
        let Aggregate::Distribution(d) = &agg else {
            panic!()
        };
        assert_eq!((d.count, d.sum, d.min, d.max), (4.0, 12.0, 2.0, 4.0));
        assert_eq!(d.sketch.count(), 4.0);

        let line = parse_line("g:+3:-1|g").unwrap();
        let mut agg = fresh(MetricKind::Gauge, 10.0);
        let mut gauge = 10.0;
        let p = plan(Some(&agg), gauge, &line, 1.0).unwrap();
        assert_eq!(commit(&mut agg, &mut gauge, p, &line, 1.0), 0);
        assert_eq!(gauge, 12.0);
        assert_eq!(
            agg,
            Aggregate::Gauge(GaugeStats {
                last: 12.0,
                min: 12.0,
                max: 13.0,
                sum: 25.0,
                count: 2.0
            })
        );
    }
}
