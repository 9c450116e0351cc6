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
        date: None,
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
        std::sync::Arc::new(hawkeye_agent::HttpNotifier::new(Duration::from_secs(10)).unwrap()),
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

const FLAPPING: &str = "\
version: 1
monitors:
  - metric: errors
    interval: 10s
    triggers:
      - {threshold: 3, send_resolved: true, to: [oncall@example.com]}
";

/// While the relay is down a trigger fires, resolves and fires again: when
/// the relay answers, the mails go out in the order they were recorded,
/// each dated when it was recorded (mail clients sort by Date).
async fn mail_recorded_during_a_relay_outage_goes_out_in_order(store: Arc<dyn Store>) {
    let mailer = Arc::new(common::RecordingMailer::default());
    let q = common::queue(mailer.clone());
    let t0 = common::base_ms();
    let file = hawkeye_agent::parse_monitors(FLAPPING, "t", Duration::from_secs(3600)).unwrap();
    let mut e = common::engine(&file, store.clone(), &q, t0);
    let mut expected = Vec::new();
    for check in 0..12u64 {
        let now = t0 + check * 10_000;
        if check % 2 == 0 {
            common::count(&*store, "errors", common::secs(now), 5.0).await;
        }
        let r = e.tick(now).await;
        assert_eq!(r.notices.len(), 1, "check {check}: {:?}", r.notices);
        expected.push(r.notices[0].0.clone());
    }
    q.shutdown(Duration::from_secs(5)).await;
    let mails = mailer.mails.lock().unwrap().clone();
    let subjects: Vec<String> = mails.iter().map(|m| m.subject.clone()).collect();
    assert_eq!(subjects, expected);
    let dates: Vec<_> = mails.iter().map(|m| m.date).collect();
    assert!(
        dates.iter().all(Option::is_some) && dates.windows(2).all(|d| d[0] <= d[1]),
        "{dates:?}"
    );
}

#[tokio::test]
async fn mail_goes_out_in_recorded_order_from_memory() {
    let store: Arc<dyn Store> = common::memory();
    mail_recorded_during_a_relay_outage_goes_out_in_order(store).await;
}

#[tokio::test]
async fn mail_goes_out_in_recorded_order_from_redis() {
    let redis = hawkeye_testkit::RedisServer::start();
    let store = common::redis_store(&redis).await;
    mail_recorded_during_a_relay_outage_goes_out_in_order(store).await;
}

/// Two mails of one trigger and a relay that is down: the first is tried
/// and fails; the second waits for it (it is not tried, so it cannot
/// overtake it), and both stay in the outbox.
#[tokio::test]
async fn a_mail_waits_for_the_earlier_mail_of_its_trigger() {
    let store: Arc<dyn Store> = common::memory();
    let q = common::queue(Arc::new(common::RecordingMailer::default()));
    let t0 = common::base_ms();
    let file = hawkeye_agent::parse_monitors(FLAPPING, "t", Duration::from_secs(3600)).unwrap();
    let mut e = common::engine(&file, store.clone(), &q, t0);
    common::count(&*store, "errors", common::secs(t0), 5.0).await;
    assert_eq!(e.tick(t0).await.notices.len(), 1);
    assert_eq!(e.tick(t0 + 10_000).await.notices.len(), 1);
    let port = hawkeye_testkit::smtp_server::SmtpServer::unused_port();
    let mailer =
        Arc::new(SmtpMailer::new(SmtpSettings::new("127.0.0.1", port, SmtpTls::None)).unwrap());
    let mut delivery = Delivery::new(
        store.clone(),
        mailer,
        std::sync::Arc::new(hawkeye_agent::HttpNotifier::new(Duration::from_secs(10)).unwrap()),
        QueueConfig::default(),
        Duration::from_secs(60),
    );
    assert_eq!(delivery.deliver_due(wall_ms()).await.unwrap(), 2);
    assert_eq!(delivery.stats().retries, 1, "only the first was tried");
    let later = store
        .claim_outbox(wall_ms() + 60_000, Duration::from_secs(1), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert!(later[0].id < later[1].id, "still in order");
}
