//! Every alert state in the store as one row each (ok, pending, firing,
//! silenced), with its monitor, threshold, value, since and last mail:
//! what `/api/alerts`, the status page and `hawkeye alerts` show
//! (docs/status-page.md, docs/alerts.md "What fires and what fired").

use std::collections::BTreeMap;

use serde::Serialize;

use crate::monitors::{Monitor, MonitorsFile};
use crate::notification::rfc3339;
use crate::silence::Silence;
use crate::state::{AlertState, Status};
use crate::state_key::KeyIndex;

/// One stored alert state, as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    /// `ok`, `pending`, `firing`, `silenced` (pending or firing while a
    /// silence or maintenance window covers the monitor), or `unreadable`.
    pub status: &'static str,
    /// The monitor's `id`, or its metric; `None` for a state of a monitor
    /// no longer in the file.
    pub monitor: Option<String>,
    pub metric: Option<String>,
    /// The trigger's level, from 1.
    pub level: Option<usize>,
    /// The group's tags, for a monitor with `group_by`.
    pub group: BTreeMap<String, String>,
    /// The value of the check that last wrote the state.
    pub value: Option<serde_json::Number>,
    pub op: Option<&'static str>,
    pub threshold: Option<f64>,
    /// When the alert started firing (RFC 3339).
    pub since: Option<String>,
    /// When the last mail of this alert went out (RFC 3339).
    pub last_notified: Option<String>,
    /// The state's key in the store.
    pub key: String,
    /// The monitor's and trigger's indexes in the file.
    #[serde(skip)]
    pub located: Option<(usize, usize)>,
}

/// The rows of `states` (`(key, state)` as [`hawkeye_store::Store::alert_states`]
/// reads them), located in `file`. A pending or firing state is `silenced`
/// while one of `silences` or a maintenance window covers it at `now_ms`.
pub fn alert_rows(
    file: &MonitorsFile,
    index: &KeyIndex,
    states: &[(String, String)],
    silences: &[Silence],
    now_ms: u64,
) -> Vec<AlertRow> {
    let muted = |m: &Monitor| {
        silences.iter().any(|s| s.matches(m, now_ms))
            || m.maintenance.iter().any(|w| w.contains(now_ms))
    };
    states
        .iter()
        .map(|(key, state)| row(file, index, key, state, muted))
        .collect()
}

fn row(
    file: &MonitorsFile,
    index: &KeyIndex,
    key: &str,
    state: &str,
    muted: impl Fn(&Monitor) -> bool,
) -> AlertRow {
    let state = AlertState::from_json(state).ok();
    let located = index.locate(key);
    let (monitor, trigger, group) = match &located {
        Some((i, j, group)) => {
            let mut m = file.monitors[*i].clone();
            m.tags.0.extend(group.iter().cloned());
            (Some(m), Some(*j), group.clone())
        }
        None => (None, None, Vec::new()),
    };
    let status = match state.as_ref().map(|s| s.status) {
        None => "unreadable",
        Some(Status::Ok) => "ok",
        Some(Status::Pending | Status::Firing) if monitor.as_ref().is_some_and(&muted) => {
            "silenced"
        }
        Some(Status::Pending) => "pending",
        Some(Status::Firing) => "firing",
    };
    let t = monitor.as_ref().zip(trigger).map(|(m, j)| &m.triggers[j]);
    AlertRow {
        status,
        monitor: monitor
            .as_ref()
            .map(|m| m.id.clone().unwrap_or_else(|| m.metric.clone())),
        metric: monitor.as_ref().map(|m| m.metric.clone()),
        level: trigger.map(|j| j + 1),
        group: group.into_iter().collect(),
        value: state.as_ref().and_then(|s| s.value.clone()),
        op: t.map(|t| t.op.symbol()),
        threshold: t.map(|t| t.threshold),
        since: state.as_ref().and_then(|s| s.since).map(rfc3339),
        last_notified: state.as_ref().and_then(|s| s.last_sent).map(rfc3339),
        key: key.to_string(),
        located: located.map(|(i, j, _)| (i, j)),
    }
}
