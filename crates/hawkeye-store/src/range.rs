//! Range reads: a window cut into steps, one value per step, for graphs
//! (`metric.range`, the agent's status page). Each step is read exactly as
//! a window query of that step would be, so a point never disagrees with
//! `metric.query` over the same seconds (docs/protocol.md, "metric.range").
//!
//! Steps are aligned to multiples of the step in unix time, as Graphite
//! and CloudWatch periods are: the range's start is moved back to the start
//! of its first step, so the same step reads the same seconds whatever the
//! moment the range is asked for. Only the last step (the one holding `end`)
//! may be partial; its rate divides by the seconds it covers.

use crate::window::{QueryError, WindowQuery};

/// The most points one range read returns: the same bound as Prometheus's
/// range queries (11 000 points per series). It caps what one read costs
/// the store and holds in memory (one window per step).
pub const MAX_RANGE_POINTS: u64 = 11_000;

/// A range read: `query`'s window (its `window_secs` ending at `end`) cut
/// into steps of `step_secs`, each reduced with the query's aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    pub query: WindowQuery,
    pub step_secs: u64,
}

/// `(unix second the step starts, value)` for every step with data, oldest
/// first; steps without data have no point.
pub type RangePoints = Vec<(i64, f64)>;

/// Result of one [`crate::Store::query_range`]: the points, or why the query has
/// no answer.
pub type RangeOutcome = Result<RangePoints, QueryError>;

impl RangeQuery {
    /// The first second read: the range's start, moved back to a multiple of the step.
    pub fn first_second(&self) -> i64 {
        self.query
            .start()
            .div_euclid(self.step() as i64)
            .saturating_mul(self.step() as i64)
    }

    fn step(&self) -> u64 {
        self.step_secs.clamp(1, i64::MAX as u64)
    }

    /// How many steps the range holds.
    pub fn points(&self) -> u64 {
        ((self.query.end - self.first_second()) as u64) / self.step() + 1
    }

    /// The whole range as one window (aligned start included): resolves
    /// the kind and checks the aggregation once for every step.
    pub fn whole(&self) -> WindowQuery {
        WindowQuery {
            window_secs: (self.query.end - self.first_second() + 1) as u64,
            ..self.query.clone()
        }
    }

    /// One window query per step, oldest first; each one's `start()` is its
    /// point's timestamp.
    pub fn steps(&self) -> Result<Vec<WindowQuery>, QueryError> {
        if self.step_secs == 0 {
            return Err(QueryError::ZeroStep);
        }
        let points = self.points();
        if points > MAX_RANGE_POINTS {
            return Err(QueryError::TooManyPoints {
                points,
                max: MAX_RANGE_POINTS,
            });
        }
        let step = self.step() as i64;
        let first = self.first_second();
        Ok((0..points as i64)
            .map(|i| {
                let start = first + i * step;
                let end = (start + step - 1).min(self.query.end);
                WindowQuery {
                    window_secs: (end - start + 1) as u64,
                    end,
                    ..self.query.clone()
                }
            })
            .collect())
    }
}

/// The points of `steps` from their outcomes, in the same order.
pub(crate) fn points_of(
    steps: &[WindowQuery],
    outcomes: impl IntoIterator<Item = crate::window::QueryOutcome>,
) -> RangeOutcome {
    let mut points = Vec::new();
    for (step, outcome) in steps.iter().zip(outcomes) {
        if let Some(value) = outcome? {
            points.push((step.start(), value));
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(window_secs: u64, end: i64, step_secs: u64) -> RangeQuery {
        RangeQuery {
            query: WindowQuery::new("x", window_secs, end),
            step_secs,
        }
    }

    #[test]
    fn steps_are_aligned_and_only_the_last_is_partial() {
        // 10:00:30 back one hour, one-minute steps: 61 steps, the first
        // starting at 09:00:00 (aligned back from 09:00:31), the last
        // holding 10:00:00..=10:00:30.
        let end = 36_000 + 30;
        let steps = range(3600, end, 60).steps().unwrap();
        assert_eq!(steps.len(), 61);
        assert_eq!(steps[0].start(), 32_400);
        assert_eq!(steps[0].window_secs, 60);
        assert_eq!(steps[59].end, 36_000 - 1);
        assert_eq!(steps[60].start(), 36_000);
        assert_eq!(steps[60].window_secs, 31);
        assert_eq!(steps[60].end, end);
        for pair in steps.windows(2) {
            assert_eq!(pair[0].end + 1, pair[1].start(), "no gap, no overlap");
        }
        assert_eq!(range(3600, end, 60).whole().start(), 32_400);
    }

    #[test]
    fn a_zero_step_and_too_many_points_are_errors() {
        assert_eq!(range(60, 1000, 0).steps(), Err(QueryError::ZeroStep));
        let e = range(86_400, 1_000_000, 1).steps().unwrap_err();
        assert_eq!(
            e,
            QueryError::TooManyPoints {
                points: 86_400,
                max: MAX_RANGE_POINTS
            }
        );
        assert!(e.to_string().contains("11000"), "{e}");
        // A step longer than the window: one point.
        assert_eq!(range(60, 1000, 3600).steps().unwrap().len(), 1);
    }
}
