//! From the raw levels to typed monitors: durations with their plain units,
//! ops, types, aggregations, defaults. The rules between values are in
//! [`super::check`], run on the result.

use std::time::Duration;

use hawkeye_protocol::line::LineError;
use hawkeye_protocol::{MetricKind, PlainUnit, TagFilter};
use hawkeye_store::Aggregation;
use serde_yaml::Value;

use super::check;
use super::maintenance::{MaintenanceWindow, TimeOfDay, Weekday};
use super::model::{
    Monitor, MonitorsFile, Notifier, Op, Retention, Trigger, DEFAULT_GAUGE_STALE_AFTER,
    DEFAULT_GROUP_STALE_AFTER, DEFAULT_INTERVAL, DEFAULT_MAX_GROUPS, DEFAULT_RUN_EVERY,
};
use super::problems::Problems;
use super::raw::{self, Addresses, Level, RawDuration};
use super::slo;
use crate::yaml_location::YamlPath;

pub(crate) fn file(
    value: &Value,
    retention: Retention,
    problems: &mut Problems,
) -> Option<MonitorsFile> {
    let root = YamlPath::root();
    if value.is_null() {
        problems.at(
            root,
            "the file is empty (expected `version: 1` and `monitors:`)",
        );
        return None;
    }
    let level = raw::level(value, &root, &raw::FILE, problems)?;
    let version = match level.get::<u64>("version", problems) {
        None | Some(1) => 1,
        Some(v) => {
            problems.at(
                root.key("version"),
                format!("unsupported version {v} (this agent reads version 1)"),
            );
            1
        }
    };
    let monitors: Vec<Monitor> = raw::list(&level, "monitors", problems)
        .into_iter()
        .filter_map(|(m, at)| monitor(m, &at, retention, problems))
        .collect();
    let file = MonitorsFile {
        version,
        monitors,
        warnings: Vec::new(),
    };
    check::ids_are_unique(&file, problems);
    Some(file)
}

/// A duration key of `level`, `None` when absent or invalid (reported).
fn duration(
    level: &Level,
    key: &str,
    plain: PlainUnit,
    problems: &mut Problems,
) -> Option<Duration> {
    let d = level.get::<RawDuration>(key, problems)?;
    d.resolve(plain)
        .map_err(|e| problems.at(level.at.key(key), e))
        .ok()
}

/// `interval`, the default when not written. The Go original read
/// `interval: 0` as its default of 60s; files written for it load the same
/// way, with a warning, instead of being refused.
fn interval(level: &Level, problems: &mut Problems) -> Duration {
    match duration(level, "interval", PlainUnit::Seconds, problems) {
        Some(Duration::ZERO) => {
            problems.warn(
                level.at.key("interval"),
                format!(
                    "interval: 0 is read as {}s, as the Go hawkeye did; write `interval: {}s` to say so",
                    DEFAULT_INTERVAL.as_secs(),
                    DEFAULT_INTERVAL.as_secs()
                ),
            );
            DEFAULT_INTERVAL
        }
        written => written.unwrap_or(DEFAULT_INTERVAL),
    }
}

/// A key parsed with `FromStr`, `None` when absent or invalid (reported).
fn parsed<T: std::str::FromStr<Err = String>>(
    level: &Level,
    key: &str,
    problems: &mut Problems,
) -> Option<T> {
    let text = raw::text(level, key, problems)?;
    text.parse()
        .map_err(|e: String| problems.at(level.at.key(key), e))
        .ok()
}

/// `type`, a counter when not written; `None` when it is not a type.
fn kind(level: &Level, problems: &mut Problems) -> Option<MetricKind> {
    let text = raw::text(level, "type", problems);
    match text.as_deref().map(str::trim) {
        None => Some(MetricKind::Counter),
        Some(t) => MetricKind::from_statsd(t).or_else(|| {
            // The list of types lives with the line format, once.
            problems.at(
                level.at.key("type"),
                LineError::UnknownType(t.to_string()).to_string(),
            );
            None
        }),
    }
}

fn aggregation(level: &Level, problems: &mut Problems) -> Option<Aggregation> {
    raw::text(level, "aggregate", problems).and_then(|a| {
        a.trim()
            .parse::<Aggregation>()
            .map_err(|e| problems.at(level.at.key("aggregate"), e.to_string()))
            .ok()
    })
}

fn notifier(level: &Level, problems: &mut Problems) -> Notifier {
    match raw::text(level, "notifier", problems)
        .as_deref()
        .map(str::trim)
    {
        None | Some("email") => Notifier::Email,
        Some("log") => Notifier::Log,
        Some(other) => {
            problems.at(
                level.at.key("notifier"),
                format!("unknown notifier {other:?} (expected email or log)"),
            );
            Notifier::Email
        }
    }
}

fn monitor(
    value: &Value,
    at: &YamlPath,
    retention: Retention,
    problems: &mut Problems,
) -> Option<Monitor> {
    let before = problems.len();
    let level = raw::level(value, at, &raw::MONITOR, problems)?;
    let kind = kind(&level, problems);
    let interval = interval(&level, problems);
    let window = duration(&level, "window", PlainUnit::Seconds, problems).unwrap_or(interval);
    let default_aggregation = Aggregation::default_for(kind.unwrap_or(MetricKind::Counter));
    let aggregation = aggregation(&level, problems).unwrap_or(default_aggregation);
    let notifier = notifier(&level, problems);
    let stale = duration(&level, "gauge_stale_after", PlainUnit::Seconds, problems)
        .unwrap_or(DEFAULT_GAUGE_STALE_AFTER);
    let slo_keys = slo::read(&level, problems);
    let (triggers, written_triggers, window) =
        triggers(&level, notifier, slo_keys.as_ref(), window, problems);
    let monitor = Monitor {
        id: raw::text(&level, "id", problems),
        metric: raw::text(&level, "metric", problems).unwrap_or_default(),
        kind: kind.unwrap_or(MetricKind::Counter),
        interval,
        window,
        aggregation,
        tags: TagFilter(raw::text_map(&level, "tags", problems)),
        group_by: level.get("group_by", problems).unwrap_or_default(),
        max_groups: level
            .get("max_groups", problems)
            .unwrap_or(DEFAULT_MAX_GROUPS),
        group_stale_after: duration(&level, "group_stale_after", PlainUnit::Seconds, problems)
            .unwrap_or(DEFAULT_GROUP_STALE_AFTER),
        ratio_of: raw::text(&level, "ratio_of", problems),
        percent: level.get("percent", problems).unwrap_or(false),
        notifier,
        subject: raw::text(&level, "subject", problems),
        // The store has nothing older than the retention.
        gauge_stale_after: stale.min(retention.per_second),
        inhibit_lower: level.get("inhibit_lower", problems).unwrap_or(true),
        runbook: raw::text(&level, "runbook", problems),
        annotations: raw::text_map(&level, "annotations", problems),
        maintenance: raw::list(&level, "maintenance", problems)
            .into_iter()
            .filter_map(|(w, at)| maintenance(w, &at, problems))
            .collect(),
        slo: slo_keys.and_then(|k| k.slo),
        triggers,
    };
    if level.has("metric") {
        // Checks that depend on the type are skipped when the type itself
        // is wrong, so one mistake gives one message.
        check::monitor(
            &monitor,
            at,
            kind.is_some(),
            written_triggers,
            retention,
            problems,
        );
    }
    (problems.len() == before).then_some(monitor)
}

/// The monitor's triggers (the workbook's for an SLO monitor written
/// without), how many the file lists (1 for defaults, so that none is not
/// reported), and the monitor's window (an SLO monitor's is its shortest
/// short window: what the check's outage guard looks at, docs/alerts.md).
fn triggers(
    level: &Level,
    notifier: Notifier,
    slo_keys: Option<&slo::SloKeys>,
    window: Duration,
    problems: &mut Problems,
) -> (Vec<Trigger>, usize, Duration) {
    // For the triggers: whether this is an SLO, and its period if valid.
    let slo_period = slo_keys.map(|k| k.slo.map(|s| s.period));
    let mut triggers: Vec<Trigger> = raw::list(level, "triggers", problems)
        .into_iter()
        .filter_map(|(t, at)| trigger(t, notifier, slo_period, &at, problems))
        .collect();
    let mut written = raw::list(level, "triggers", &mut Problems::default()).len();
    if level.value("triggers").is_none() {
        match slo_keys {
            None => problems.at(level.at.clone(), "a monitor needs `triggers`"),
            Some(keys) => {
                written = 1;
                triggers = default_slo_triggers(keys, notifier, &level.at, problems);
            }
        }
    }
    let Some(_) = slo_keys else {
        return (triggers, written, window);
    };
    if level.has("window") {
        problems.at(
            level.at.key("window"),
            "window does not apply to an SLO monitor: each trigger reads its `long_window` and `short_window`",
        );
    }
    let window = slo::shortest_window(&triggers).unwrap_or(window);
    (triggers, written, window)
}

/// The workbook's triggers for an SLO monitor written without `triggers`.
fn default_slo_triggers(
    keys: &slo::SloKeys,
    notifier: Notifier,
    at: &YamlPath,
    problems: &mut Problems,
) -> Vec<Trigger> {
    let at = at.key("slo");
    if let Some(why) = slo::defaults_missing_recipients(keys, notifier) {
        problems.at(at.clone(), why);
    }
    let Some(s) = &keys.slo else {
        return Vec::new();
    };
    slo::default_triggers(s, keys)
        .map_err(|e| problems.at(at.key("period"), e))
        .unwrap_or_default()
}

/// `slo`: `Some(period)` for a trigger of an SLO monitor (`None` inside
/// when the period is invalid).
fn trigger(
    value: &Value,
    notifier: Notifier,
    slo: Option<Option<Duration>>,
    at: &YamlPath,
    problems: &mut Problems,
) -> Option<Trigger> {
    let before = problems.len();
    let level = raw::level(value, at, &raw::TRIGGER, problems)?;
    let burn = slo::read_burn(&level, problems);
    if burn.is_none() && level.value("threshold").is_none() {
        problems.at(at.clone(), "a trigger needs `threshold`");
    }
    let addresses = |key: &str, problems: &mut Problems| {
        level
            .get::<Addresses>(key, problems)
            .map(|a| a.0)
            .unwrap_or_default()
    };
    let trigger = Trigger {
        id: raw::text(&level, "id", problems),
        // Missing: reported by `raw::level`; 0 keeps the checks below quiet.
        threshold: match burn {
            Some((rate, _)) => rate,
            None => level.get("threshold", problems).unwrap_or(0.0),
        },
        op: parsed::<Op>(&level, "op", problems).unwrap_or_default(),
        for_checks: level.get("for", problems).unwrap_or(1),
        run_every: duration(&level, "run_every", PlainUnit::Minutes, problems)
            .unwrap_or(DEFAULT_RUN_EVERY),
        keep_firing_for: duration(&level, "keep_firing_for", PlainUnit::Seconds, problems)
            .unwrap_or(Duration::ZERO),
        recovery_threshold: level.get("recovery_threshold", problems),
        text: raw::text(&level, "text", problems),
        subject: raw::text(&level, "subject", problems),
        to: addresses("to", problems),
        cc: addresses("cc", problems),
        bcc: addresses("bcc", problems),
        webhooks: addresses("webhook", problems),
        webhook_format: parsed(&level, "webhook_format", problems).unwrap_or_default(),
        send_resolved: level.get("send_resolved", problems).unwrap_or(false),
        missing: parsed(&level, "missing", problems),
        runbook: raw::text(&level, "runbook", problems),
        annotations: raw::text_map(&level, "annotations", problems),
        burn: burn.and_then(|(_, windows)| windows),
    };
    check::trigger(&trigger, notifier, at, problems);
    // A `burn_rate` without its windows was reported by `read_burn`.
    if !(level.has("burn_rate") && trigger.burn.is_none()) {
        slo::check_trigger(&trigger, slo, at, problems);
    }
    (problems.len() == before).then_some(trigger)
}

fn maintenance(value: &Value, at: &YamlPath, problems: &mut Problems) -> Option<MaintenanceWindow> {
    let before = problems.len();
    let level = raw::level(value, at, &raw::MAINTENANCE, problems)?;
    let days: Vec<Weekday> = match level.value("days") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => {
            parse_days(std::slice::from_ref(one), &at.key("days"), problems)
        }
        Some(_) => {
            let list: Vec<String> = level.get("days", problems).unwrap_or_default();
            parse_days(&list, &at.key("days"), problems)
        }
    };
    let from = parsed::<TimeOfDay>(&level, "from", problems);
    let to = parsed::<TimeOfDay>(&level, "to", problems);
    let zone = raw::text(&level, "time_zone", problems).unwrap_or_else(|| "UTC".to_string());
    // The zone is checked even when a time is wrong: every problem at once.
    let placeholder = TimeOfDay(0);
    let window = MaintenanceWindow::new(
        days,
        from.unwrap_or(placeholder),
        to.unwrap_or(placeholder),
        zone.trim(),
    )
    .map_err(|e| problems.at(at.key("time_zone"), e))
    .ok()?;
    (from.is_some() && to.is_some() && problems.len() == before).then_some(window)
}

fn parse_days(days: &[String], at: &YamlPath, problems: &mut Problems) -> Vec<Weekday> {
    days.iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.parse()
                .map_err(|e: String| problems.at(at.index(i), e))
                .ok()
        })
        .collect()
}
