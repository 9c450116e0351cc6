//! A backtest's notifications: what one tick of the engine notified,
//! joined with what it recorded for each (the history entry: slot, value,
//! who was told; the outbox: the mail's `Message-ID`), by trigger key (a
//! key has at most one transition per tick).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::engine::Notified;
use crate::monitors::{Monitor, MonitorsFile};
use crate::outbox::Outboxed;
use crate::state::{Notice, UnixMillis};

use super::replay_store::Recorded;

/// A notification the live agent would have sent.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestNotification {
    /// The slot of the check that sent it (unix ms).
    pub slot_ms: UnixMillis,
    /// The monitor's `id`, or its metric.
    pub monitor: String,
    /// Its index in the file; `None` for a group that went away (its
    /// monitor is then named by the history).
    pub monitor_index: Option<usize>,
    /// The trigger's level (1 for the first) and its `id`.
    pub level: usize,
    pub trigger: Option<String>,
    /// The group of a `group_by` monitor; empty otherwise.
    pub group: Vec<(String, String)>,
    pub notice: Notice,
    /// The value checked; `None` without data.
    pub value: Option<f64>,
    pub subject: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub webhooks: Vec<String>,
    /// The `Message-ID` the mail would have had (the live agent's mail of
    /// the same notice has the same one); `None` when nobody is mailed.
    pub message_id: Option<String>,
    /// The trigger's state key.
    pub key: String,
}

impl BacktestNotification {
    /// `firing` for a firing or a repeat, `resolved` for a resolved.
    pub fn status(&self) -> &'static str {
        match self.notice {
            Notice::Resolved => "resolved",
            Notice::Firing | Notice::Repeat => "firing",
        }
    }

    /// One JSON object (a line of `hawkeye backtest --json`).
    pub fn to_json(&self) -> Value {
        let group: serde_json::Map<String, Value> = self
            .group
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({
            "type": "notification",
            "slot": crate::notification::rfc3339(self.slot_ms),
            "slot_ms": self.slot_ms,
            "monitor": self.monitor,
            "level": self.level,
            "trigger": self.trigger,
            "group": group,
            "notice": self.notice.name(),
            "status": self.status(),
            "value": self.value,
            "subject": self.subject,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "webhooks": self.webhooks,
            "message_id": self.message_id,
            "key": self.key,
        })
    }
}

/// A monitor's name in the output: its `id`, or its metric.
pub(crate) fn name(m: &Monitor) -> String {
    m.id.clone().unwrap_or_else(|| m.metric.clone())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The monitor of a notice the engine names none for: a group resolved
/// because it went stale (its state key is its monitor's trigger key and
/// the group's tags, docs/alerts.md, "Where states live"). `keys`: each
/// monitor's trigger keys.
fn monitor_of(n: &Notified, keys: &[Vec<String>]) -> Option<usize> {
    n.monitor.or_else(|| {
        keys.iter().position(|k| {
            k.get(n.level.wrapping_sub(1)).is_some_and(|k| {
                n.key
                    .strip_prefix(k.as_str())
                    .is_some_and(|g| g.starts_with("|g="))
            })
        })
    })
}

/// The notifications of one tick whose checks are for `slot`; `keys`: each
/// monitor's trigger keys ([`crate::Engine::keys`]).
pub(crate) fn collect(
    file: &MonitorsFile,
    keys: &[Vec<String>],
    notified: Vec<Notified>,
    recorded: Recorded,
    slot: UnixMillis,
) -> Vec<BacktestNotification> {
    let history: HashMap<String, Value> = recorded
        .history
        .iter()
        .filter_map(|h| serde_json::from_str::<Value>(h).ok())
        .filter_map(|h| Some((h["key"].as_str()?.to_string(), h)))
        .collect();
    let mut message_ids: HashMap<String, String> = HashMap::new();
    for entry in &recorded.outbox {
        if let Ok(Outboxed::Mail(m)) = Outboxed::from_json(&entry.body) {
            message_ids.insert(m.key, m.message_id);
        }
    }
    notified
        .into_iter()
        .map(|n| {
            let h = history.get(&n.key).cloned().unwrap_or(Value::Null);
            let index = monitor_of(&n, keys);
            let monitor = index.and_then(|i| file.monitors.get(i));
            BacktestNotification {
                slot_ms: h["slot"].as_u64().unwrap_or(slot),
                monitor: monitor
                    .map(name)
                    .or_else(|| h["monitor"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                monitor_index: index,
                level: n.level,
                trigger: monitor
                    .and_then(|m| m.triggers.get(n.level.wrapping_sub(1)))
                    .and_then(|t| t.id.clone()),
                group: n.group,
                notice: n.notice,
                value: h["value"].as_f64(),
                subject: n.subject,
                to: strings(&h["mail_to"]),
                cc: strings(&h["mail_cc"]),
                bcc: strings(&h["mail_bcc"]),
                webhooks: strings(&h["webhooks"]),
                message_id: message_ids.remove(&n.key),
                key: n.key,
            }
        })
        .collect()
}

/// In time order: slot, then monitor, level and group.
pub(crate) fn sort(notifications: &mut [BacktestNotification]) {
    notifications.sort_by(|a, b| {
        (a.slot_ms, a.monitor_index, a.level, &a.group).cmp(&(
            b.slot_ms,
            b.monitor_index,
            b.level,
            &b.group,
        ))
    });
}
