//! The status page's sparklines: one metric's points over the last hour
//! as an inline SVG path, with each trigger's threshold drawn across it.
//! The markup holds numbers and fixed names only, nothing from the
//! monitors file, so it needs no escaping.

use std::fmt::Write;

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 64.0;
/// Room above and below the line so that extremes and thresholds show.
const PAD: f64 = 4.0;

/// What one sparkline draws: `points` (`(second, value)`, ascending, one
/// per step with data) between seconds `from` and `to`, and `thresholds`.
pub(super) struct Sparkline<'a> {
    pub points: &'a [(i64, f64)],
    pub step_secs: u64,
    pub from: i64,
    pub to: i64,
    pub thresholds: &'a [f64],
}

impl Sparkline<'_> {
    /// The `<svg>` element. The value line breaks where steps have no data.
    pub fn render(&self) -> String {
        let (lo, hi) = self.scale();
        let span = (self.to - self.from).max(1) as f64;
        let x = |second: i64| (second - self.from) as f64 / span * WIDTH;
        let y = |v: f64| PAD + (hi - v) / (hi - lo) * (HEIGHT - 2.0 * PAD);
        let mut svg = format!(
            r#"<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">"#
        );
        for t in self.thresholds.iter().filter(|t| t.is_finite()) {
            // A threshold off the scale sits on the edge it lies beyond.
            let class = if (lo..=hi).contains(t) {
                "threshold"
            } else {
                "threshold beyond"
            };
            let _ = write!(
                svg,
                r#"<line class="{class}" x1="0" x2="{WIDTH}" y1="{0:.1}" y2="{0:.1}"/>"#,
                y(t.clamp(lo, hi))
            );
        }
        let mut path = String::new();
        let mut previous: Option<i64> = None;
        for (second, value) in self.points {
            let joined = previous.is_some_and(|p| second - p <= self.step_secs as i64);
            let command = if joined { 'L' } else { 'M' };
            let _ = write!(path, "{command}{:.1} {:.1} ", x(*second), y(*value));
            if !joined {
                // A point alone is drawn as a dot (a zero-length round-capped line).
                let _ = write!(path, "l0 0 ");
            }
            previous = Some(*second);
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="value" d="{}"/>"#, path.trim_end());
        }
        if let Some((second, value)) = self.points.last() {
            let _ = write!(
                svg,
                r#"<circle class="last" cx="{:.1}" cy="{:.1}" r="2.5"/>"#,
                x(*second),
                y(*value)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

impl Sparkline<'_> {
    /// The values' range, widened to the thresholds near it: a threshold
    /// further from the values than their own spread (or half their size)
    /// would flatten the line, so it is drawn on the edge instead.
    fn scale(&self) -> (f64, f64) {
        let finite = |v: &f64| v.is_finite();
        let values: Vec<f64> = self.points.iter().map(|(_, v)| *v).filter(finite).collect();
        let Some((lo, hi)) = bounds(values.iter().copied()) else {
            return widen(bounds(self.thresholds.iter().copied().filter(finite)));
        };
        let reach = (hi - lo).max(lo.abs().max(hi.abs()) * 0.5);
        let near = self
            .thresholds
            .iter()
            .copied()
            .filter(|t| t.is_finite() && *t >= lo - reach && *t <= hi + reach);
        widen(bounds(values.into_iter().chain(near)))
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
    })
}

/// A range that can be drawn: not empty, not a single value.
fn widen(bounds: Option<(f64, f64)>) -> (f64, f64) {
    match bounds {
        None => (0.0, 1.0),
        Some((lo, hi)) if lo == hi => (lo - 1.0, hi + 1.0),
        Some(range) => range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_gaps_are_drawn() {
        let points = [(0, 1.0), (60, 3.0), (180, 2.0)];
        let svg = Sparkline {
            points: &points,
            step_secs: 60,
            from: 0,
            to: 240,
            thresholds: &[5.0],
        }
        .render();
        // The threshold is the highest value: at the top of the drawing.
        assert!(
            svg.contains(r#"<line class="threshold" x1="0" x2="320" y1="4.0" y2="4.0"/>"#),
            "{svg}"
        );
        // 0 and 60 are joined; 180 follows a step without data.
        assert!(
            svg.contains(r#"d="M0.0 60.0 l0 0 L80.0 32.0 M240.0 46.0 l0 0""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<circle class="last" cx="240.0" cy="46.0""#),
            "{svg}"
        );
    }

    #[test]
    fn a_far_threshold_sits_on_the_edge_instead_of_flattening_the_line() {
        let points = [(0, 90.0), (60, 110.0)];
        let svg = Sparkline {
            points: &points,
            step_secs: 60,
            from: 0,
            to: 60,
            thresholds: &[1_000_000.0, 120.0],
        }
        .render();
        assert!(
            svg.contains(r#"<line class="threshold beyond" x1="0" x2="320" y1="4.0""#),
            "{svg}"
        );
        // 120 is near: the scale is 90..=120, and 110 is a third from the top.
        assert!(
            svg.contains(r#"<line class="threshold" x1="0" x2="320" y1="4.0""#),
            "{svg}"
        );
        assert!(svg.contains(r#"L320.0 22.7"#), "{svg}");
    }

    #[test]
    fn no_points_still_draw_the_threshold() {
        let svg = Sparkline {
            points: &[],
            step_secs: 60,
            from: 0,
            to: 3600,
            thresholds: &[100.0],
        }
        .render();
        assert!(svg.contains("class=\"threshold\""), "{svg}");
        assert!(!svg.contains("<path"), "{svg}");
    }
}
