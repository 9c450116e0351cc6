//! Moving states stored under the keys of agents before versioned keys
//! (see [`crate::state_key::legacy_keys`]) to the current keys, once, at
//! the first tick after a start or reload. A state already under the new
//! key wins; the old key is deleted either way.

use serde::Deserialize;

use super::{Engine, TickReport};
use crate::state::{AlertState, Status};

/// The state as agents before versioned keys wrote it: times in wall ms,
/// `check` a slot number (multiples of the interval).
#[derive(Deserialize)]
struct LegacyState {
    status: Status,
    #[serde(default)]
    breaches: u32,
    #[serde(default)]
    check: u64,
    #[serde(default)]
    since: Option<u64>,
}

/// The current form of a legacy state; `None` if it cannot be read.
pub(crate) fn convert(text: &str, interval_ms: u64) -> Option<AlertState> {
    let old: LegacyState = serde_json::from_str(text).ok()?;
    let check = old.check.checked_mul(interval_ms)?;
    let firing = old.status == Status::Firing;
    Some(AlertState {
        status: old.status,
        breaches: old.breaches,
        check,
        // The slot the old episode began in, so that the resolved mail
        // says how long it really fired.
        since: old
            .since
            .filter(|_| firing)
            .map(|since| (since / interval_ms.max(1) * interval_ms).min(check)),
        // While FIRING the old state changed only when a mail was sent.
        last_sent: firing.then_some(check),
        notified: firing,
        ..AlertState::default()
    })
}

impl Engine {
    pub(super) async fn migrate_legacy(&mut self, report: &mut TickReport) {
        let legacy: Vec<String> = self.migrate.iter().map(|(old, _, _)| old.clone()).collect();
        self.store_call(report);
        let found = match self.store.legacy_alert_states(&legacy).await {
            Ok(found) => found,
            // Tried again at the next tick.
            Err(e) => return tracing::debug!(error = %e, "legacy alert states not read yet"),
        };
        let mut moved = 0;
        let mut present = Vec::new();
        for ((old, new, interval_ms), text) in self.migrate.iter().zip(&found) {
            let Some(text) = text else { continue };
            present.push(old.clone());
            let Some(state) = convert(text, *interval_ms) else {
                tracing::warn!(key = %old, "unreadable legacy alert state dropped");
                continue;
            };
            let commit = self.first_write(new, state.to_json());
            match self.store.commit_alert(&commit).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => return tracing::debug!(error = %e, "legacy alert states not moved yet"),
            }
        }
        if !present.is_empty() {
            if let Err(e) = self.store.delete_legacy_alert_states(&present).await {
                return tracing::debug!(error = %e, "legacy alert states not deleted yet");
            }
            tracing::info!(
                moved,
                found = present.len(),
                "alert states moved from the old key format"
            );
        }
        self.migrate.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_firing_state_keeps_its_episode() {
        let s = convert(
            r#"{"status":"firing","breaches":1,"check":100,"since":1000123,"last_sent":1000123}"#,
            10_000,
        )
        .unwrap();
        assert_eq!(s.status, Status::Firing);
        assert_eq!(
            (s.check, s.since, s.last_sent),
            (1_000_000, Some(1_000_000), Some(1_000_000))
        );
        // An episode that began long before its last mail keeps its start.
        let s = convert(
            r#"{"status":"firing","breaches":1,"check":100,"since":400123,"last_sent":1000123}"#,
            10_000,
        )
        .unwrap();
        assert_eq!(s.since, Some(400_000), "the slot it began in");
        assert!(s.notified);
        let ok = convert(r#"{"status":"ok","check":7}"#, 1000).unwrap();
        assert_eq!((ok.status, ok.check, ok.since), (Status::Ok, 7000, None));
        assert!(convert("nonsense", 1000).is_none());
    }
}
