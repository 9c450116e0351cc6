//! `/`: the status page. Every monitor of the file with a sparkline of its
//! value over the last hour (read from the store's range read, each step
//! the monitor's window, so a point is what a check at that time saw) and
//! its triggers' thresholds, then one line per trigger (and group) with its
//! state, value, since and last mail. One HTML document with inline CSS
//! and SVG: no build step, no external assets; everything that comes from
//! the monitors file or the store is HTML-escaped by the template engine
//! (docs/status-page.md).

use std::sync::OnceLock;

use futures::future::try_join_all;
use hawkeye_protocol::MetricKind;
use hawkeye_store::{Aggregation, RangeQuery, StoreError, WindowQuery};
use minijinja::{Environment, Value};
use serde::Serialize;

use super::alerts::AlertRow;
use super::source::StatusSource;
use super::svg::Sparkline;
use crate::monitors::{Monitor, MonitorsFile};
use crate::notification::{describe_group, rfc3339};

/// How far back the sparklines go.
const SPARK_SECS: u64 = 3600;
/// The page's own template: HTML, so minijinja escapes every value.
const TEMPLATE: &str = include_str!("status.html");

#[derive(Serialize)]
struct PageView {
    service: String,
    environment: String,
    generated_at: String,
    counts: Vec<(&'static str, usize)>,
    monitors: Vec<MonitorView>,
    /// States of monitors no longer in the file.
    orphans: Vec<AlertRow>,
}

#[derive(Serialize)]
struct MonitorView {
    name: String,
    what: String,
    status: &'static str,
    current: Option<String>,
    sparkline: Value,
    note: Option<String>,
    triggers: Vec<TriggerView>,
}

#[derive(Serialize)]
struct TriggerView {
    level: usize,
    condition: String,
    group: String,
    status: &'static str,
    value: Option<String>,
    since: Option<String>,
    last_mail: Option<String>,
}

/// The worst first: a monitor shows the worst state of its triggers.
const SEVERITY: [&str; 5] = ["firing", "pending", "silenced", "unreadable", "ok"];

fn severity(status: &str) -> usize {
    SEVERITY
        .iter()
        .position(|s| *s == status)
        .unwrap_or(SEVERITY.len())
}

pub(super) async fn render(
    source: &StatusSource,
    file: &MonitorsFile,
    rows: &[AlertRow],
    now_ms: u64,
) -> Result<String, StoreError> {
    let now = (now_ms / 1000) as i64;
    let lines = try_join_all(file.monitors.iter().map(|m| sparkline(source, m, now))).await?;
    let monitors: Vec<MonitorView> = file
        .monitors
        .iter()
        .enumerate()
        .zip(lines)
        .map(|((i, m), line)| monitor_view(i, m, rows, line))
        .collect();
    // What the page shows: a trigger with no stored state yet is a row
    // `ok` too, and states of triggers no longer in the file are listed.
    let counts = SEVERITY
        .iter()
        .map(|s| {
            let shown = monitors.iter().flat_map(|m| &m.triggers);
            let orphans = rows.iter().filter(|r| r.located.is_none());
            let n = shown.filter(|t| t.status == *s).count()
                + orphans.filter(|r| r.status == *s).count();
            (*s, n)
        })
        .collect();
    let view = PageView {
        service: source.service.clone(),
        environment: source.environment.clone(),
        generated_at: rfc3339(now_ms),
        counts,
        monitors,
        orphans: rows
            .iter()
            .filter(|r| r.located.is_none())
            .cloned()
            .collect(),
    };
    Ok(template()
        .get_template("status.html")
        .and_then(|t| t.render(&view))
        .unwrap_or_else(|e| {
            // The template is part of the binary and its tests render it.
            tracing::error!(error = %e, "status page template failed");
            format!("status page template failed: {e}")
        }))
}

fn template() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // The name ends in .html: minijinja escapes every value for HTML.
        env.add_template("status.html", TEMPLATE)
            .expect("the status page template parses");
        env
    })
}

/// A monitor's sparkline: its points, the step, and why there are none.
struct Line {
    points: Vec<(i64, f64)>,
    step_secs: u64,
    from: i64,
    to: i64,
    note: Option<String>,
}

/// The monitor's value over the last hour, one point per window: the
/// metric (divided by `ratio_of`'s, × 100 with `percent`) as the checks read
/// it, all groups together for a monitor with `group_by`. Only whole
/// windows: the range ends where the step holding `now` begins, so the
/// last point is not a window still filling up.
async fn sparkline(source: &StatusSource, m: &Monitor, now: i64) -> Result<Line, StoreError> {
    let step_secs = m.window_secs().min(SPARK_SECS);
    let end = now.div_euclid(step_secs as i64) * step_secs as i64 - 1;
    let gauge_last = m.kind == MetricKind::Gauge && m.aggregation == Aggregation::Last;
    let range = |name: &str| RangeQuery {
        query: WindowQuery {
            name: name.to_string(),
            kind: Some(m.kind),
            tags: m.tags.clone(),
            aggregation: Some(m.aggregation),
            window_secs: SPARK_SECS,
            end,
            stale_after: gauge_last.then_some(m.gauge_stale_after.as_secs()),
        },
        step_secs,
    };
    let main = range(&m.metric);
    let mut line = Line {
        points: Vec::new(),
        step_secs,
        from: main.first_second(),
        to: end,
        note: None,
    };
    let points = match source.store.query_range(&main).await? {
        Ok(points) => points,
        Err(e) => {
            line.note = Some(e.to_string());
            return Ok(line);
        }
    };
    line.points = match &m.ratio_of {
        None => points,
        Some(other) => match source.store.query_range(&range(other)).await? {
            Ok(divisors) => ratio(&points, &divisors, m.percent),
            Err(e) => {
                line.note = Some(format!("{other}: {e}"));
                return Ok(line);
            }
        },
    };
    Ok(line)
}

/// `points / divisors` where both have a point (and the divisor is not 0).
fn ratio(points: &[(i64, f64)], divisors: &[(i64, f64)], percent: bool) -> Vec<(i64, f64)> {
    let scale = if percent { 100.0 } else { 1.0 };
    points
        .iter()
        .filter_map(|(second, v)| {
            let (_, d) = divisors.iter().find(|(s, _)| s == second)?;
            (*d != 0.0).then(|| (*second, v / d * scale))
        })
        .collect()
}

fn monitor_view(i: usize, m: &Monitor, rows: &[AlertRow], line: Line) -> MonitorView {
    let mut triggers = Vec::new();
    for (j, t) in m.triggers.iter().enumerate() {
        let condition = format!("{} {}", t.op, t.threshold);
        let mut states: Vec<&AlertRow> =
            rows.iter().filter(|r| r.located == Some((i, j))).collect();
        states.sort_by(|a, b| a.group.cmp(&b.group));
        if states.is_empty() {
            // Nothing stored yet: never breached (or not checked yet).
            triggers.push(TriggerView {
                level: j + 1,
                condition: condition.clone(),
                group: String::new(),
                status: "ok",
                value: None,
                since: None,
                last_mail: None,
            });
        }
        for r in states {
            let group: Vec<(String, String)> = r
                .group
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            triggers.push(TriggerView {
                level: j + 1,
                condition: condition.clone(),
                group: describe_group(&group),
                status: r.status,
                value: r.value.as_ref().map(|v| v.to_string()),
                since: r.since.clone(),
                last_mail: r.last_notified.clone(),
            });
        }
    }
    let status = triggers
        .iter()
        .map(|t| t.status)
        .min_by_key(|s| severity(s))
        .unwrap_or("ok");
    let thresholds: Vec<f64> = m.triggers.iter().map(|t| t.threshold).collect();
    let svg = Sparkline {
        points: &line.points,
        step_secs: line.step_secs,
        from: line.from,
        to: line.to,
        thresholds: &thresholds,
    }
    .render();
    MonitorView {
        name: m.id.clone().unwrap_or_else(|| m.metric.clone()),
        what: describe(m),
        status,
        current: line.points.last().map(|(_, v)| format!("{v}")),
        // Numbers and fixed names only (see svg.rs): safe as it is.
        sparkline: Value::from_safe_string(svg),
        note: line.note,
        triggers,
    }
}

/// `p95(http.latency{route=/a}) over 60s`, `/ requests`, `by route`.
fn describe(m: &Monitor) -> String {
    let tags: Vec<(String, String)> = m
        .tags
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let filter = if tags.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", describe_group(&tags))
    };
    let mut what = format!(
        "{}({}{filter}) over {}",
        m.aggregation,
        m.metric,
        humantime::format_duration(m.window)
    );
    if let Some(other) = &m.ratio_of {
        what.push_str(&format!(" / {other}"));
        if m.percent {
            what.push_str(" × 100");
        }
    }
    if !m.group_by.is_empty() {
        what.push_str(&format!(" by {}", m.group_by.join(", ")));
    }
    what
}
