//! `hawkeye query NAME --range 1h [--step 1m]`: one metric over a range
//! (`metric.range`, docs/protocol.md), drawn as a terminal sparkline with
//! its min, max and last value, or printed as JSON points with `--json`.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use hawkeye_client::rpc::RpcConnection;
use hawkeye_protocol::jsonrpc::{RangeParams, RangeResult};

use crate::query_args::QueryArgs;

/// The widest sparkline drawn: more steps than this share a column.
const MAX_COLUMNS: usize = 120;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub(crate) async fn query_range(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let range = args.range.clone().unwrap_or_default();
    let query = args.params(&range);
    let params = RangeParams {
        metric: query.metric,
        window: query.window,
        step: args.step.clone().map(serde_json::Value::String),
        agg: query.agg,
        tags: query.tags,
        kind: query.kind,
    };
    let mut conn = RpcConnection::connect(&args.socket.socket).await?;
    let result = conn.range(&params).await.context("metric.range failed")?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&args.what(), &range, &result));
    Ok(ExitCode::SUCCESS)
}

/// The text `hawkeye query --range` prints: a title, the sparkline, and
/// min / max / last.
pub fn render(what: &str, range: &str, result: &RangeResult) -> String {
    let step = result.step_secs;
    let title = format!("{what} over {range}, one point per {step}s");
    let (Some(first), Some(last)) = (result.points.first(), result.points.last()) else {
        return format!("{title}: no data\n");
    };
    let (min, max) = result
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
    format!(
        "{title}\n{}\nmin {min}  max {max}  last {} (at {})\n",
        sparkline(&result.points, step, first.0, last.0),
        last.1,
        rfc3339(last.0)
    )
}

/// One bar per step from `from` to `to` (a blank where a step has no
/// point); past 120 steps, neighbours share a column (their mean).
pub fn sparkline(points: &[(i64, f64)], step_secs: u64, from: i64, to: i64) -> String {
    let step = step_secs.max(1) as i64;
    let steps = ((to - from) / step + 1) as usize;
    let per_column = steps.div_ceil(MAX_COLUMNS).max(1);
    let mut columns: Vec<(f64, u32)> = vec![(0.0, 0); steps.div_ceil(per_column)];
    for (second, value) in points {
        let column = ((second - from) / step) as usize / per_column;
        if let Some(c) = columns.get_mut(column) {
            c.0 += value;
            c.1 += 1;
        }
    }
    let means: Vec<Option<f64>> = columns
        .iter()
        .map(|(sum, n)| (*n > 0).then(|| sum / f64::from(*n)))
        .collect();
    let (lo, hi) = means
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    means
        .iter()
        .map(|mean| match mean {
            None => ' ',
            Some(_) if hi <= lo => BARS[BARS.len() / 2],
            Some(v) => {
                let level = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round();
                BARS[(level as usize).min(BARS.len() - 1)]
            }
        })
        .collect()
}

fn rfc3339(second: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(second.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_from_min_to_max_and_gaps_stay_blank() {
        let points = [(0, 1.0), (10, 8.0), (30, 4.5)];
        assert_eq!(sparkline(&points, 10, 0, 30), "▁█ ▅");
        // A flat line sits in the middle.
        assert_eq!(sparkline(&[(0, 3.0), (1, 3.0)], 1, 0, 1), "▅▅");
    }

    #[test]
    fn many_steps_share_columns() {
        let points: Vec<(i64, f64)> = (0..3600).map(|s| (s, s as f64)).collect();
        let line = sparkline(&points, 1, 0, 3599);
        assert_eq!(line.chars().count(), MAX_COLUMNS);
        assert!(line.starts_with('▁') && line.ends_with('█'), "{line}");
    }

    #[test]
    fn the_text_has_min_max_and_last() {
        let result = RangeResult {
            points: vec![(60, 2.0), (120, 7.0), (180, 5.0)],
            step_secs: 60,
        };
        let text = render("x", "1h", &result);
        assert!(
            text.contains("min 2  max 7  last 5 (at 1970-01-01T00:03:00Z)"),
            "{text}"
        );
        let empty = RangeResult {
            points: vec![],
            step_secs: 60,
        };
        assert_eq!(
            render("x", "1h", &empty),
            "x over 1h, one point per 60s: no data\n"
        );
    }
}
