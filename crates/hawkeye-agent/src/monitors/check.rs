//! The rules between values of a monitors file, for parsed files and for
//! files built in code alike.

use std::collections::HashSet;
use std::time::Duration;

use hawkeye_protocol::MetricKind;
use hawkeye_store::Aggregation;

use super::model::{Monitor, MonitorsFile, Notifier, Retention, Trigger, MAX_MAX_GROUPS};
use super::problems::Problems;
use super::slo;
use crate::template;
use crate::yaml_location::YamlPath;

pub(crate) fn file(file: &MonitorsFile, retention: Retention, problems: &mut Problems) {
    let root = YamlPath::root().key("monitors");
    for (i, m) in file.monitors.iter().enumerate() {
        let at = root.index(i);
        monitor(m, &at, true, m.triggers.len(), retention, problems);
        for (j, t) in m.triggers.iter().enumerate() {
            let at = at.key("triggers").index(j);
            trigger(t, m.notifier, &at, problems);
            slo::check_trigger(t, m.slo.map(|s| Some(s.period)), &at, problems);
        }
    }
    ids_are_unique(file, problems);
}

/// Monitor ids name monitors in silences; trigger ids name states.
pub(crate) fn ids_are_unique(file: &MonitorsFile, problems: &mut Problems) {
    let root = YamlPath::root().key("monitors");
    let mut monitors = HashSet::new();
    for (i, m) in file.monitors.iter().enumerate() {
        if let Some(id) = &m.id {
            if !monitors.insert(id) {
                problems.at(
                    root.index(i).key("id"),
                    format!("monitor id {id:?} is used twice"),
                );
            }
        }
        let mut triggers = HashSet::new();
        for (j, t) in m.triggers.iter().enumerate() {
            if let Some(id) = &t.id {
                if !triggers.insert(id) {
                    problems.at(
                        root.index(i).key("triggers").index(j).key("id"),
                        format!("trigger id {id:?} is used twice in this monitor"),
                    );
                }
            }
        }
    }
}

fn check_id(id: &Option<String>, at: YamlPath, problems: &mut Problems) {
    if let Some(id) = id {
        if id.trim().is_empty() || id.chars().any(char::is_control) {
            problems.at(
                at,
                "an id must be non-empty text without control characters",
            );
        }
    }
}

/// Monitor-level checks; `kind_known` is false when `type` was invalid
/// (then nothing that depends on it is checked), `written_triggers` is how
/// many triggers the file lists.
pub(crate) fn monitor(
    m: &Monitor,
    at: &YamlPath,
    kind_known: bool,
    written_triggers: usize,
    retention: Retention,
    problems: &mut Problems,
) {
    check_id(&m.id, at.key("id"), problems);
    if let Err(e) = hawkeye_protocol::line::check_name(&m.metric) {
        problems.at(at.key("metric"), format!("invalid metric name: {e}"));
    }
    if m.interval < Duration::from_secs(1) || m.interval.subsec_nanos() != 0 {
        problems.at(
            at.key("interval"),
            "interval must be a whole number of seconds, at least 1s (data is kept per second)",
        );
    }
    if m.window < Duration::from_secs(1) {
        problems.at(at.key("window"), "window must be at least 1s");
    }
    within_retention(m, at, retention, problems);
    if kind_known && !m.aggregation.applies_to(m.kind) {
        problems.at(
            at.key("aggregate"),
            format!(
                "{} does not apply to a {} (use {})",
                m.aggregation,
                m.kind,
                Aggregation::names_for(m.kind)
            ),
        );
    }
    for (k, v) in &m.tags.0 {
        if k.is_empty() || k.contains([',', ':', '|', '#']) || v.contains([',', '|', '#']) {
            problems.at(at.key("tags").key(k), format!("invalid tag {k}:{v}"));
        }
    }
    groups(m, at, problems);
    ratio(m, at, kind_known, problems);
    slo::check_monitor(m, at, kind_known, retention, problems);
    if let Some(s) = &m.subject {
        check_template(s, at.key("subject"), problems);
    }
    runbook(&m.runbook, at.key("runbook"), problems);
    if written_triggers == 0 {
        problems.at(at.key("triggers"), "a monitor needs at least one trigger");
    }
}

/// `group_by` names distinct tags; `max_groups` is within its bounds.
fn groups(m: &Monitor, at: &YamlPath, problems: &mut Problems) {
    for (i, k) in m.group_by.iter().enumerate() {
        if k.is_empty() || k.contains([',', ':', '|', '#']) {
            problems.at(
                at.key("group_by").index(i),
                format!("invalid tag name {k:?}"),
            );
        } else if m.group_by[..i].contains(k) {
            problems.at(
                at.key("group_by").index(i),
                format!("tag {k:?} is named twice"),
            );
        }
    }
    if m.max_groups == 0 || m.max_groups > MAX_MAX_GROUPS {
        problems.at(
            at.key("max_groups"),
            format!(
                "max_groups must be from 1 to {MAX_MAX_GROUPS}, not {}",
                m.max_groups
            ),
        );
    }
}

/// The store keeps `retention` of data: a longer window would silently read
/// less than it says. Checks run on whole seconds (per-second data) and
/// windows may read the per-minute rollups.
fn within_retention(m: &Monitor, at: &YamlPath, retention: Retention, problems: &mut Problems) {
    let fmt = hawkeye_protocol::format_duration;
    let longest = retention.longest_window();
    if m.interval > retention.per_second {
        problems.at(
            at.key("interval"),
            format!(
                "monitor {}: interval {} is longer than the data retention {} (HAWKEYE_RETENTION); shorten it or raise HAWKEYE_RETENTION",
                m.metric,
                fmt(m.interval),
                fmt(retention.per_second)
            ),
        );
    } else if m.window > longest {
        let name = if longest > retention.per_second {
            "HAWKEYE_ROLLUP_RETENTION"
        } else {
            "HAWKEYE_RETENTION"
        };
        problems.at(
            at.key("window"),
            format!(
                "monitor {}: window {} is longer than the data retention {} ({name}), so it would only see {}; shorten it or raise {name}",
                m.metric,
                fmt(m.window),
                fmt(longest),
                fmt(longest)
            ),
        );
    }
}

fn ratio(m: &Monitor, at: &YamlPath, kind_known: bool, problems: &mut Problems) {
    match &m.ratio_of {
        Some(other) => {
            if let Err(e) = hawkeye_protocol::line::check_name(other) {
                problems.at(at.key("ratio_of"), format!("invalid metric name: {e}"));
            }
            if kind_known && m.kind != MetricKind::Counter {
                problems.at(
                    at.key("ratio_of"),
                    format!("ratio_of needs counters, but the type of this monitor is {} (write `type: c`)", m.kind),
                );
            }
        }
        None if m.percent => {
            problems.at(at.key("percent"), "percent only applies with ratio_of");
        }
        None => {}
    }
}

fn runbook(runbook: &Option<String>, at: YamlPath, problems: &mut Problems) {
    if let Some(url) = runbook {
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            problems.at(at, format!("runbook must be an http(s) URL, not {url:?}"));
        }
    }
}

pub(crate) fn trigger(t: &Trigger, notifier: Notifier, at: &YamlPath, problems: &mut Problems) {
    check_id(&t.id, at.key("id"), problems);
    if !t.threshold.is_finite() {
        problems.at(at.key("threshold"), "threshold must be a finite number");
    }
    if t.for_checks < 1 {
        problems.at(
            at.key("for"),
            "for must be at least 1 (the number of breaching checks before firing)",
        );
    }
    recovery(t, at, problems);
    for (name, template) in [("text", &t.text), ("subject", &t.subject)] {
        if let Some(src) = template {
            check_template(src, at.key(name), problems);
        }
    }
    runbook(&t.runbook, at.key("runbook"), problems);
    if notifier == Notifier::Email && t.to.is_empty() && t.webhooks.is_empty() {
        problems.at_key(
            at.key("to"),
            "`to` needs at least one address (or give a `webhook`, or use `notifier: log`)",
        );
    }
    for (k, url) in t.webhooks.iter().enumerate() {
        if let Err(e) = webhook_url(url) {
            let path = match t.webhooks.len() {
                1 => at.key("webhook"),
                _ => at.key("webhook").index(k),
            };
            problems.at(path, format!("invalid webhook {url:?}: {e}"));
        }
    }
    for (name, list) in [("to", &t.to), ("cc", &t.cc), ("bcc", &t.bcc)] {
        for (k, address) in list.iter().enumerate() {
            addresses(name, list.len(), k, address, at, problems);
        }
    }
}

/// A webhook is an absolute `http` or `https` URL.
fn webhook_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(()),
        "http" | "https" => Err("no host".to_string()),
        other => Err(format!("scheme {other:?} (expected http or https)")),
    }
}

fn addresses(
    name: &str,
    count: usize,
    k: usize,
    address: &str,
    at: &YamlPath,
    problems: &mut Problems,
) {
    let at = at.key(name).index(k);
    if address.contains([',', ';']) {
        let parts: Vec<&str> = address
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let hint = if count == 1 {
            format!("{name}: [{}]", parts.join(", "))
        } else {
            format!("one address per list item: {}", parts.join(", "))
        };
        problems.at(
            at,
            format!(
                "{address:?} holds several addresses in one string; write them as a list ({hint})"
            ),
        );
        return;
    }
    if let Err(e) = hawkeye_mail::parse_mailbox(address) {
        problems.at(at, e.to_string());
    }
}

/// Hysteresis only makes sense on the clear side of the threshold.
fn recovery(t: &Trigger, at: &YamlPath, problems: &mut Problems) {
    let Some(r) = t.recovery_threshold else {
        return;
    };
    let at = at.key("recovery_threshold");
    if !r.is_finite() {
        problems.at(at, "recovery_threshold must be a finite number");
    } else if t.op.is_upward() && r > t.threshold {
        problems.at(
            at,
            format!("recovery_threshold {r} must not be above the threshold {} (op {}): the alert resolves when the value falls back below it", t.threshold, t.op),
        );
    } else if !t.op.is_upward() && r < t.threshold {
        problems.at(
            at,
            format!("recovery_threshold {r} must not be below the threshold {} (op {}): the alert resolves when the value rises back above it", t.threshold, t.op),
        );
    }
}

fn check_template(src: &str, at: YamlPath, problems: &mut Problems) {
    if let Err(e) = template::check(src) {
        problems.at(at, e.to_string());
    }
}
