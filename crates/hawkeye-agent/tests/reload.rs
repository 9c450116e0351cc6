//! Reloads mid-episode, driven check by check with an explicit clock
//! against the in-memory store: removed triggers (with and without a
//! state), a monitor given an `id`, and reordered triggers.

mod common;

use std::sync::Arc;

use common::*;
use hawkeye_agent::state::Notice;
use hawkeye_agent::{parse_monitors, MonitorsFile};

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
