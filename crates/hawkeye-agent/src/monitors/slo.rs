//! SLO monitors in a monitors file: the `slo` key, burn-rate triggers, the
//! workbook's default triggers, and the rules between them
//! (`docs/monitors.md`, "SLO monitors"; what they mean at run time:
//! `docs/alerts.md`, "SLO burn-rate alerts").

use std::time::Duration;

use hawkeye_protocol::{MetricKind, PlainUnit};

use super::model::{Monitor, Notifier, Retention, Slo, Trigger};
use super::problems::Problems;
use super::raw::{self, Addresses, Level, RawDuration};
use crate::yaml_location::YamlPath;

/// The period the workbook's burn rates are written for.
const WORKBOOK_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// The shortest period the default triggers are derived for: below it the
/// scaled short windows would fall under a minute.
pub const MIN_DEFAULT_PERIOD: Duration = Duration::from_secs(86_400);

/// Who a default trigger goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Page,
    Ticket,
}

/// The Google SRE workbook's multiwindow, multi-burn-rate alerts for a 30d
/// period ("Alerting on SLOs", table 5-8): burn rate, long window, short
/// window. Lowest level first: a firing page inhibits the ticket.
const WORKBOOK: [(f64, u64, u64, Severity); 3] = [
    (1.0, 3 * 86_400, 6 * 3600, Severity::Ticket),
    (6.0, 6 * 3600, 30 * 60, Severity::Page),
    (14.4, 3600, 5 * 60, Severity::Page),
];

/// The `slo` mapping as written.
pub(crate) struct SloKeys {
    pub slo: Option<Slo>,
    /// Recipients of the default page triggers.
    pub page: Vec<String>,
    /// Recipients of the default ticket trigger (`page` when empty).
    pub ticket: Vec<String>,
}

/// Reads the monitor's `slo` key; `None` when absent.
pub(crate) fn read(level: &Level, problems: &mut Problems) -> Option<SloKeys> {
    let value = level.value("slo").filter(|v| !v.is_null())?;
    let at = level.at.key("slo");
    let slo = raw::level(value, &at, &raw::SLO, problems)?;
    let objective = slo.get::<f64>("objective", problems);
    let period = slo.get::<RawDuration>("period", problems).and_then(|d| {
        d.resolve(PlainUnit::Seconds)
            .map_err(|e| problems.at(at.key("period"), e))
            .ok()
    });
    let addresses = |key: &str, problems: &mut Problems| {
        slo.get::<Addresses>(key, problems)
            .map(|a| a.0)
            .unwrap_or_default()
    };
    Some(SloKeys {
        slo: objective
            .zip(period)
            .map(|(objective, period)| Slo { objective, period }),
        page: addresses("page", problems),
        ticket: addresses("ticket", problems),
    })
}

/// A window of the default triggers for `period`: the workbook's, scaled by
/// `period / 30d` so that each trigger still fires when the same share of
/// the budget (2 %, 5 %, 10 %) is spent within it, in whole minutes.
fn scaled(secs: u64, period: Duration) -> Duration {
    let exact = secs as f64 * period.as_secs_f64() / WORKBOOK_PERIOD.as_secs_f64();
    Duration::from_secs(((exact / 60.0).round() as u64).max(1) * 60)
}

/// The workbook's triggers for `slo` (ticket, slow page, fast page), or why
/// there are none.
pub(crate) fn default_triggers(slo: &Slo, keys: &SloKeys) -> Result<Vec<Trigger>, String> {
    if slo.period < MIN_DEFAULT_PERIOD {
        return Err(format!(
            "the default burn-rate triggers need a period of at least {}; write `triggers` with `burn_rate`, `long_window` and `short_window`",
            hawkeye_protocol::format_duration(MIN_DEFAULT_PERIOD)
        ));
    }
    let ticket = if keys.ticket.is_empty() {
        &keys.page
    } else {
        &keys.ticket
    };
    Ok(WORKBOOK
        .iter()
        .map(|&(rate, long, short, severity)| {
            let to = match severity {
                Severity::Page => &keys.page,
                Severity::Ticket => ticket,
            };
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            let long = scaled(long, slo.period);
            let short = scaled(short, slo.period).min(long - Duration::from_secs(60));
            Trigger {
                send_resolved: true,
                ..Trigger::burn_rate(rate, long, short.max(Duration::from_secs(60)), &to)
            }
        })
        .collect())
}

/// Why default triggers cannot be made for a monitor without `triggers`,
/// if they cannot.
pub(crate) fn defaults_missing_recipients(keys: &SloKeys, notifier: Notifier) -> Option<&str> {
    (notifier == Notifier::Email && keys.page.is_empty()).then_some(
        "without `triggers`, an SLO needs `page` (the addresses its default triggers mail) or `notifier: log`",
    )
}

/// The window the engine's outage check and plain read use for an SLO
/// monitor: its shortest short window.
pub(crate) fn shortest_window(triggers: &[Trigger]) -> Option<Duration> {
    triggers
        .iter()
        .filter_map(|t| t.burn.map(|b| b.short))
        .min()
}

/// The rules of an SLO monitor: `ratio_of`, counters, the objective, the
/// period within the rollup retention, no `group_by` or `percent`.
pub(crate) fn check_monitor(
    m: &Monitor,
    at: &YamlPath,
    kind_known: bool,
    retention: Retention,
    problems: &mut Problems,
) {
    let Some(slo) = &m.slo else { return };
    let fmt = hawkeye_protocol::format_duration;
    let at_slo = at.key("slo");
    if m.ratio_of.is_none() {
        problems.at(
            at_slo.clone(),
            "an SLO needs `ratio_of`: `metric` counts the bad events, `ratio_of` all events",
        );
    }
    if kind_known && m.kind != MetricKind::Counter {
        problems.at(
            at.key("type"),
            format!(
                "an SLO counts events: its metrics must be counters (`type: c`), not {}",
                m.kind
            ),
        );
    }
    if !(slo.objective > 0.0 && slo.objective < 100.0) {
        problems.at(
            at_slo.key("objective"),
            format!(
                "objective must be a percentage between 0 and 100 (exclusive), such as 99.9, not {}",
                slo.objective
            ),
        );
    }
    if slo.period < Duration::from_secs(60) || slo.period.subsec_nanos() != 0 {
        problems.at(
            at_slo.key("period"),
            "period must be whole seconds, at least 1m",
        );
    } else if slo.period > retention.longest_window() {
        problems.at(
            at_slo.key("period"),
            format!(
                "period {} is longer than the rollup retention {} (HAWKEYE_ROLLUP_RETENTION); shorten it or raise HAWKEYE_ROLLUP_RETENTION",
                fmt(slo.period),
                fmt(retention.longest_window())
            ),
        );
    }
    if !m.group_by.is_empty() {
        problems.at(
            at.key("group_by"),
            "group_by is not supported on an SLO monitor (one SLO per monitor: give each its `tags`)",
        );
    }
    if m.percent {
        problems.at(
            at.key("percent"),
            "percent does not apply to an SLO monitor (its burn rates and budget have their own units)",
        );
    }
}

/// The rules of one trigger that depend on the monitor being an SLO or
/// not: an SLO's triggers are burn-rate triggers with windows within its
/// period; other monitors' are not. `slo` is `Some(period)` for an SLO
/// monitor (`None` inside when its period is invalid).
pub(crate) fn check_trigger(
    t: &Trigger,
    slo: Option<Option<Duration>>,
    at: &YamlPath,
    problems: &mut Problems,
) {
    let fmt = hawkeye_protocol::format_duration;
    let (burn, period) = match (t.burn, slo) {
        (None, None) => return,
        (Some(_), None) => {
            problems.at(
                at.key("burn_rate"),
                "burn_rate needs `slo` on the monitor (objective and period)",
            );
            return;
        }
        (None, Some(_)) => {
            problems.at(
                at.clone(),
                "an SLO monitor's triggers are burn-rate triggers: give `burn_rate`, `long_window` and `short_window` instead of `threshold`",
            );
            return;
        }
        (Some(burn), Some(period)) => (burn, period),
    };
    if !(t.threshold.is_finite() && t.threshold > 0.0) {
        problems.at(
            at.key("burn_rate"),
            format!(
                "burn_rate must be a number above 0 (1 spends the budget exactly over the period), not {}",
                t.threshold
            ),
        );
    }
    for (name, d) in [("long_window", burn.long), ("short_window", burn.short)] {
        if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
            problems.at(
                at.key(name),
                format!("{name} must be whole seconds, at least 1s"),
            );
        }
    }
    if burn.short >= burn.long {
        problems.at(
            at.key("short_window"),
            format!(
                "short_window {} must be shorter than long_window {}",
                fmt(burn.short),
                fmt(burn.long)
            ),
        );
    }
    if let Some(period) = period.filter(|p| burn.long > *p) {
        problems.at(
            at.key("long_window"),
            format!(
                "long_window {} is longer than the SLO period {}",
                fmt(burn.long),
                fmt(period)
            ),
        );
    }
}

/// Reads a trigger's `burn_rate`, `long_window` and `short_window`: the
/// threshold (the burn rate) and windows of a burn-rate trigger, or `None`
/// for a threshold trigger. Mixing the two kinds is reported.
pub(crate) fn read_burn(
    level: &Level,
    problems: &mut Problems,
) -> Option<(f64, Option<super::model::BurnWindows>)> {
    let window = |key: &str, problems: &mut Problems| {
        level.get::<RawDuration>(key, problems).and_then(|d| {
            d.resolve(PlainUnit::Seconds)
                .map_err(|e| problems.at(level.at.key(key), e))
                .ok()
        })
    };
    let long = window("long_window", problems);
    let short = window("short_window", problems);
    if !level.has("burn_rate") {
        for key in ["long_window", "short_window"] {
            if level.has(key) {
                problems.at(
                    level.at.key(key),
                    format!("{key} applies to burn-rate triggers only: give `burn_rate` (of an SLO monitor)"),
                );
            }
        }
        return None;
    }
    for key in ["threshold", "op", "recovery_threshold"] {
        if level.has(key) {
            problems.at_key(
                level.at.key(key),
                format!("`{key}` cannot be mixed with `burn_rate`: a burn-rate trigger fires when both windows burn at or over the rate"),
            );
        }
    }
    if !(level.has("long_window") && level.has("short_window")) {
        problems.at(
            level.at.clone(),
            "a burn-rate trigger needs `long_window` and `short_window`",
        );
    }
    let rate = level.get::<f64>("burn_rate", problems).unwrap_or(1.0);
    Some((
        rate,
        long.zip(short)
            .map(|(long, short)| super::model::BurnWindows { long, short }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(page: &[&str]) -> SloKeys {
        SloKeys {
            slo: None,
            page: page.iter().map(|s| s.to_string()).collect(),
            ticket: Vec::new(),
        }
    }

    #[test]
    fn defaults_scale_their_windows_with_the_period() {
        let slo = Slo {
            objective: 99.0,
            period: Duration::from_secs(7 * 86_400),
        };
        let t = default_triggers(&slo, &keys(&["a@b.c"])).unwrap();
        let windows: Vec<(u64, u64)> = t
            .iter()
            .map(|t| {
                let b = t.burn.unwrap();
                (b.long.as_secs() / 60, b.short.as_secs() / 60)
            })
            .collect();
        // 3d·7/30 = 16.8h, 6h·7/30 = 84m, 1h·7/30 = 14m; 5m·7/30 rounds to 1m.
        // (30 days: the workbook's own, tests/slo_config.rs.)
        assert_eq!(windows, [(1008, 84), (84, 7), (14, 1)]);
        let short = Slo {
            objective: 99.0,
            period: Duration::from_secs(3600),
        };
        assert!(default_triggers(&short, &keys(&["a@b.c"])).is_err());
    }
}
