//! The alert history (`hawkeye alerts --history`, docs/alerts.md): every
//! change of a trigger's status, and every notice, recorded after its
//! commit in a capped stream per environment, with who was told.
//! Best effort: a failed append is logged, the alert itself stands.

use serde_json::json;

use super::{Engine, Prepared, TickReport, HISTORY_MAX};
use crate::state::{AlertState, Status, UnixMillis};

fn status_of(state: Option<&str>) -> &'static str {
    let status = state
        .and_then(|s| AlertState::from_json(s).ok())
        .map(|s| s.status);
    match status {
        None | Some(Status::Ok) => "ok",
        Some(Status::Pending) => "pending",
        Some(Status::Firing) => "firing",
    }
}

impl Engine {
    /// The history entry of a committed transition, when its status changed
    /// or it notified someone.
    pub(super) fn history_entry(&self, p: &Prepared, now: UnixMillis) -> Option<String> {
        let from = status_of(p.commit.expected.as_deref());
        let to = status_of(p.commit.new.as_deref());
        let notice = p.transition.notice;
        if from == to && notice.is_none() {
            return None;
        }
        let monitor = match p.at {
            Some((i, _)) => {
                let s = &self.monitors[i];
                s.monitor
                    .id
                    .clone()
                    .unwrap_or_else(|| s.monitor.metric.clone())
            }
            None => String::new(),
        };
        let group: serde_json::Map<String, serde_json::Value> =
            p.group.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let told = notice.is_some() && p.log_body.is_none();
        let r = &p.transition.recipients;
        Some(
            json!({
                "at": now,
                "slot": p.at.map(|(_, slot)| slot),
                "service": self.settings.service,
                "environment": self.settings.environment,
                "key": p.commit.key,
                "monitor": monitor,
                "level": p.transition.trigger + 1,
                "group": group,
                "from": from,
                "to": to,
                "value": p.transition.value,
                "notice": notice.map(|n| n.name()),
                "subject": (!p.subject.is_empty()).then_some(&p.subject),
                "mail_to": if told { r.to.clone() } else { Vec::new() },
                "mail_cc": if told { r.cc.clone() } else { Vec::new() },
                "mail_bcc": if told { r.bcc.clone() } else { Vec::new() },
                "webhooks": if notice.is_some() { r.hooks.clone() } else { Vec::new() },
            })
            .to_string(),
        )
    }

    pub(super) async fn record_history(&mut self, entries: Vec<String>, report: &mut TickReport) {
        if entries.is_empty() {
            return;
        }
        report.store_calls += 1;
        self.stats.store_calls += 1;
        let stream = &self.settings.environment;
        if let Err(e) = self
            .store
            .append_history(stream, &entries, HISTORY_MAX)
            .await
        {
            tracing::warn!(error = %e, entries = entries.len(), "alert history not recorded");
        }
    }
}
