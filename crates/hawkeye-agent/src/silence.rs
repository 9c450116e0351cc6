//! Silences: made with `hawkeye silence add`, kept in the store so that
//! every agent honours them (`docs/alerts.md`, "Silences"). A silence
//! matches a monitor by metric name, by tags (each tag of the silence must
//! be in the monitor's tag filter with the same value) and, when given, by
//! the monitor's `id`. A silenced trigger keeps its state but mails nobody.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::monitors::Monitor;
use crate::state::{UnixMillis, MAX_TIME};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub metric: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    pub reason: String,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
}

/// A silence that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// It would end after the last time a date can show (`hawkeye silence
    /// list` could not print it).
    #[error("the silence would end after the year 9999; give a shorter duration")]
    EndsTooLate,
}

impl Silence {
    /// A new silence from `now` for `duration_ms`, with a random id.
    pub fn new(
        metric: &str,
        tags: BTreeMap<String, String>,
        monitor: Option<String>,
        reason: &str,
        now: UnixMillis,
        duration_ms: u64,
    ) -> Result<Silence, SilenceError> {
        let ends_at = now
            .checked_add(duration_ms)
            .filter(|end| *end <= MAX_TIME)
            .ok_or(SilenceError::EndsTooLate)?;
        Ok(Silence {
            id: format!("{:016x}", rand::random::<u64>()),
            metric: metric.to_string(),
            tags,
            monitor,
            reason: reason.to_string(),
            starts_at: now,
            ends_at,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Silence, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// Whether it silences `monitor` at `now`.
    pub fn matches(&self, monitor: &Monitor, now: UnixMillis) -> bool {
        now >= self.starts_at
            && now < self.ends_at
            && self.metric == monitor.metric
            && self
                .monitor
                .as_ref()
                .is_none_or(|id| monitor.id.as_ref() == Some(id))
            && self
                .tags
                .iter()
                .all(|(k, v)| monitor.tags.0.get(k) == Some(v))
    }
}

/// Parses the silences read from the store, skipping (and returning the
/// text of) any that cannot be read.
pub fn parse_all(raw: &[String]) -> (Vec<Silence>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for s in raw {
        match Silence::from_json(s) {
            Ok(silence) => good.push(silence),
            Err(_) => bad.push(s.clone()),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use hawkeye_protocol::{MetricKind, TagFilter};

    use super::*;
    use crate::monitors::Trigger;

    fn monitor(tags: &[(&str, &str)], id: Option<&str>) -> Monitor {
        let mut m = Monitor::new(
            "http.latency",
            MetricKind::Distribution,
            vec![Trigger::new(1.0, &["a@b.c"])],
        );
        m.tags = TagFilter(
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        m.id = id.map(str::to_string);
        m
    }

    #[test]
    fn matches_by_metric_tags_and_monitor_id_while_it_runs() {
        let tags = BTreeMap::from([("route".to_string(), "/a".to_string())]);
        let s = Silence::new("http.latency", tags, None, "deploy", 1000, 60_000).unwrap();
        assert!(s.matches(&monitor(&[("route", "/a"), ("az", "b")], None), 1000));
        assert!(!s.matches(&monitor(&[("route", "/b")], None), 1000));
        assert!(
            !s.matches(&monitor(&[], None), 1000),
            "a monitor of every route"
        );
        assert!(
            !s.matches(&monitor(&[("route", "/a")], None), 61_000),
            "ended"
        );
        assert!(
            !s.matches(&monitor(&[("route", "/a")], None), 999),
            "not started"
        );
        let by_id = Silence::new(
            "http.latency",
            BTreeMap::new(),
            Some("lat".into()),
            "x",
            0,
            10,
        )
        .unwrap();
        assert!(by_id.matches(&monitor(&[], Some("lat")), 5));
        assert!(!by_id.matches(&monitor(&[], Some("other")), 5));
        assert!(!by_id.matches(&monitor(&[], None), 5));
        let round = Silence::from_json(&s.to_json()).unwrap();
        assert_eq!(round, s);
    }

    #[test]
    fn a_silence_may_not_end_after_the_year_9999() {
        let new = |now, d| Silence::new("x", BTreeMap::new(), None, "r", now, d);
        assert_eq!(new(1000, u64::MAX), Err(SilenceError::EndsTooLate));
        assert_eq!(new(1000, MAX_TIME), Err(SilenceError::EndsTooLate));
        assert_eq!(new(0, MAX_TIME).unwrap().ends_at, MAX_TIME);
    }
}
