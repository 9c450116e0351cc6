//! Sending the outbox against real relays: the lease bounds an attempt
//! (another agent may take the mail once it runs out).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::wall_ms;
use hawkeye_agent::outbox::OutboxMail;
use hawkeye_agent::Delivery;
use hawkeye_mail::{Mail, QueueConfig, SmtpMailer, SmtpSettings, SmtpTls};
use hawkeye_store::{AlertCommit, MemoryStore, OutboxEntry, Store};
use hawkeye_testkit::smtp_server::StallingRelay;

const DEADLINE: Duration = Duration::from_secs(30);

async fn outbox_with_one_mail() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Duration::from_secs(3600)));
    let mail = Mail {
        subject: "errors 5".into(),
        body: "b".into(),
        from: "hawkeye@example.com".into(),
        to: vec!["oncall@example.com".into()],
        cc: vec![],
        bcc: vec![],
        message_id: Some("e.firing@hawkeye".into()),
    };
    let commit = AlertCommit {
        key: "k".into(),
        expected: None,
        new: Some("{}".into()),
        ttl: Duration::from_secs(3600),
        outbox: vec![OutboxEntry {
            id: "e.firing@hawkeye".into(),
            body: OutboxMail::new("k", wall_ms(), mail).to_json(),
        }],
    };
    assert!(store.commit_alert(&commit).await.unwrap());
    store
}

/// SMTP_TIMEOUT is longer than the lease here: the attempt is abandoned
/// when the lease runs out (as another agent may then take the mail), and
/// the mail stays in the outbox for a retry.
#[tokio::test]
async fn an_attempt_ends_when_its_lease_runs_out() {
    let relay = StallingRelay::start();
    let mut settings = SmtpSettings::new(relay.host(), relay.port(), SmtpTls::None);
    settings.timeout = Duration::from_secs(600);
    let mailer = Arc::new(SmtpMailer::new(settings).unwrap());
    let store = outbox_with_one_mail().await;
    let mut delivery = Delivery::new(
        store.clone(),
        mailer,
        QueueConfig::default(),
        Duration::from_secs(1),
    );
    let claimed = tokio::time::timeout(DEADLINE, delivery.deliver_due(wall_ms()))
        .await
        .expect("the lease ends the attempt")
        .unwrap();
    assert_eq!(claimed, 1);
    assert_eq!(delivery.stats().retries, 1);
    assert_eq!(delivery.stats().sent, 0);
    let again = store
        .claim_outbox(wall_ms() + 60_000, Duration::from_secs(1), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the mail is still in the outbox");
}
