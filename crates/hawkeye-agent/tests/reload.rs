//! Reloads mid-episode, driven check by check with an explicit clock
//! against the in-memory store: removed triggers (with and without a
//! state), a monitor given an `id`, and reordered triggers.

mod common;

use std::sync::Arc;

use common::*;
use hawkeye_agent::state::Notice;
use hawkeye_agent::{parse_monitors, MonitorsFile};
use hawkeye_store::Store;

const S: u64 = 1000;

fn file(yaml: &str) -> MonitorsFile {
    parse_monitors(yaml, "test.yaml", std::time::Duration::from_secs(3600)).unwrap()
}

fn notices(report: &hawkeye_agent::TickReport) -> Vec<Notice> {
    report.notices.iter().map(|(_, n)| *n).collect()
}

fn monitor(metric: &str, to: &str) -> String {
    format!(
        "  - metric: {metric}
    interval: 10s
    triggers:
      - threshold: 3
        send_resolved: true
        to: [{to}]
"
    )
}

/// Two triggers removed at once, the first never written (it never
/// breached), the second firing: the firing one is resolved with its own
/// monitor's mail, and the engine goes on.
#[tokio::test]
async fn removing_a_trigger_without_state_and_a_firing_one_resolves_the_firing_one() {
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let before = format!(
        "version: 1\nmonitors:\n{}{}{}",
        monitor("quiet", "quiet@example.com"),
        monitor("loud", "loud@example.com"),
        monitor("kept", "kept@example.com")
    );
    let mut e = engine(&file(&before), store.clone(), &q, t0);
    count(&*store, "loud", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);

    let after = format!(
        "version: 1\nmonitors:\n{}",
        monitor("kept", "kept@example.com")
    );
    e.reload(&file(&after), t0 + 10 * S);
    let r = e.tick(t0 + 10 * S).await;
    assert_eq!(notices(&r), [Notice::Resolved]);
    assert!(!r.store_error);
    q.shutdown(std::time::Duration::from_secs(5)).await;
    let mails = mailer.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[1].to, ["loud@example.com"], "{:?}", mails[1]);
    assert!(mails[1].body.contains("loud"), "{}", mails[1].body);
    // The engine still evaluates.
    count(&*store, "kept", secs(t0 + 20 * S), 5.0).await;
    assert_eq!(notices(&e.tick(t0 + 20 * S).await), [Notice::Firing]);
}

const FIRING: &str = "\
version: 1
monitors:
  - metric: errors
    interval: 10s
    triggers:
      - threshold: 3
        send_resolved: true
        to: [oncall@example.com]
      - threshold: 100
        send_resolved: true
        to: [oncall@example.com]
";

/// Giving a firing monitor an `id` (to name it in a silence), then a
/// trigger an `id`, then renaming the monitor's `id`, then removing it
/// again changes every state key; each time the state follows the trigger:
/// no resolved mail, no second firing.
#[tokio::test]
async fn giving_changing_or_removing_ids_keeps_the_alert() {
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(FIRING), store.clone(), &q, t0);
    count(&*store, "errors", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    let edits = [
        FIRING.replace("  - metric: errors", "  - id: errs\n    metric: errors"),
        FIRING
            .replace("  - metric: errors", "  - id: errs\n    metric: errors")
            .replace(
                "      - threshold: 3",
                "      - id: warn\n        threshold: 3",
            ),
        FIRING
            .replace(
                "  - metric: errors",
                "  - id: errors-5xx\n    metric: errors",
            )
            .replace(
                "      - threshold: 3",
                "      - id: warn\n        threshold: 3",
            ),
        FIRING.to_string(),
    ];
    for (n, yaml) in edits.iter().enumerate() {
        let at = t0 + (n as u64 + 1) * 10 * S;
        let before = e.keys();
        e.reload(&file(yaml), at);
        count(&*store, "errors", secs(at), 5.0).await;
        let r = e.tick(at).await;
        assert_eq!(notices(&r), [], "edit {n}: {yaml}");
        assert_ne!(before, e.keys(), "edit {n} changes the keys");
        let read = hawkeye_store::AlertRead {
            keys: before.concat(),
            marker: "m".into(),
            marker_ttl: std::time::Duration::from_secs(60),
            now_ms: at,
        };
        let left = store.read_alerts(&read).await.unwrap().states;
        let now_keys = e.keys().concat();
        for (key, state) in read.keys.iter().zip(left) {
            assert!(
                state.is_none() || now_keys.contains(key),
                "edit {n}: the old key {key} was moved, not left behind"
            );
        }
    }
    // Still the same episode: it resolves once.
    let at = t0 + 6 * 10 * S;
    assert_eq!(notices(&e.tick(at).await), [Notice::Resolved]);
}

/// A trigger removed while its monitor is silenced (or in maintenance)
/// resolves without mail, as any resolve during a silence.
#[tokio::test]
async fn a_trigger_removed_during_a_silence_resolves_without_mail() {
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(FIRING), store.clone(), &q, t0);
    count(&*store, "errors", secs(t0), 150.0).await;
    // Level 2 mails; level 1 (the same recipient) is inhibited.
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    let s =
        hawkeye_agent::Silence::new("errors", Default::default(), None, "deploy", t0, 3_600_000)
            .unwrap();
    store
        .put_silence(&s.id, &s.to_json(), s.ends_at)
        .await
        .unwrap();
    let level_1 = FIRING.replace(
        "      - threshold: 100\n        send_resolved: true\n        to: [oncall@example.com]\n",
        "",
    );
    assert_ne!(level_1, FIRING);
    e.reload(&file(&level_1), t0 + 10 * S);
    count(&*store, "errors", secs(t0 + 10 * S), 150.0).await;
    let r = e.tick(t0 + 10 * S).await;
    assert_eq!(
        notices(&r),
        [],
        "silenced: neither the resolve of level 2 nor level 1"
    );
    assert_eq!(r.muted, 2);
}
