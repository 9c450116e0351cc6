//! The agent on a real redis-server: alert state shared through Redis makes
//! two agents send each mail once and a restarted agent not resend.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hawkeye_agent::state::Notice;
use hawkeye_agent::{parse_monitors, AgentConfig, MonitorsFile};
use hawkeye_mail::QueueConfig;
use hawkeye_testkit::RedisServer;

const S: u64 = 1000;
const DEADLINE: Duration = Duration::from_secs(30);

const MONITORS: &str = "\
version: 1
monitors:
  - metric: http.response.400
    interval: 10s
    triggers:
      - threshold: 3
        run_every: 30s
        send_resolved: true
        text: 'Threshold breached for first degree sla. {{ .count }}'
        to: [oncall@example.com]
";

fn file(yaml: &str) -> MonitorsFile {
    parse_monitors(yaml, "test.yaml", Duration::from_secs(3600)).unwrap()
}

fn notices(report: &hawkeye_agent::TickReport) -> Vec<Notice> {
    report.notices.iter().map(|(_, n)| *n).collect()
}

#[tokio::test]
async fn two_agents_on_one_redis_send_each_mail_once() {
    let redis = RedisServer::start();
    // Each agent has its own connection, as two processes would.
    let (store_a, store_b) = (redis_store(&redis).await, redis_store(&redis).await);
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let f = file(MONITORS);
    let mut a = engine(&f, store_a.clone(), &q, t0);
    let mut b = engine(&f, store_b.clone(), &q, t0);
    let mut per_check = Vec::new();
    for check in 0..4u64 {
        let now = t0 + check * 10 * S;
        count(&*store_a, "http.response.400", secs(now), 5.0).await;
        // Both check the same slot at the same time.
        let (ra, rb) = tokio::join!(a.tick(now), b.tick(now + 1));
        assert!(!ra.store_error && !rb.store_error);
        let mut n = notices(&ra);
        n.extend(notices(&rb));
        per_check.push(n);
    }
    let (ra, rb) = tokio::join!(a.tick(t0 + 40 * S), b.tick(t0 + 40 * S));
    let mut n = notices(&ra);
    n.extend(notices(&rb));
    per_check.push(n);
    assert_eq!(
        per_check,
        [
            vec![Notice::Firing],
            vec![],
            vec![],
            vec![Notice::Repeat],
            vec![Notice::Resolved]
        ]
    );
}

#[tokio::test]
async fn a_restarted_agent_does_not_resend_from_redis_state() {
    let redis = RedisServer::start();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let f = file(MONITORS);
    {
        let store = redis_store(&redis).await;
        let mut first = engine(&f, store.clone(), &q, t0);
        count(&*store, "http.response.400", secs(t0), 5.0).await;
        assert_eq!(notices(&first.tick(t0).await), [Notice::Firing]);
    }
    // A new process: new connection, new engine, same Redis.
    let store = redis_store(&redis).await;
    let mut second = engine(&f, store.clone(), &q, t0 + 10 * S);
    count(&*store, "http.response.400", secs(t0 + 10 * S), 5.0).await;
    assert_eq!(notices(&second.tick(t0 + 10 * S).await), []);
    count(&*store, "http.response.400", secs(t0 + 30 * S), 5.0).await;
    assert_eq!(notices(&second.tick(t0 + 30 * S).await), [Notice::Repeat]);
    let state = redis.cli(&["KEYS", "hawkeye:{alerts}:state:*"]);
    assert!(!state.is_empty(), "the state lives in redis");
}

#[tokio::test]
async fn a_redis_outage_raises_no_alert_and_recovers() {
    let mut redis = RedisServer::start();
    let store = redis_store(&redis).await;
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let yaml = MONITORS
        .replace("        to:", "        missing: breach\n        to:")
        .replace(
            "metric: http.response.400",
            "metric: redis.health\n    type: g",
        );
    let mut e = engine(&file(&yaml), store.clone(), &q, t0);
    gauge(&*store, "redis.health", secs(t0), 1.0).await;
    assert_eq!(notices(&e.tick(t0).await), []);
    redis.stop();
    let r = e.tick(t0 + 10 * S).await;
    assert!(r.store_error);
    assert_eq!(notices(&r), []);
    redis.restart();
    let deadline = Instant::now() + DEADLINE;
    let mut check = 2;
    let report = loop {
        let r = e.tick(t0 + check * 10 * S).await;
        if !r.store_error || Instant::now() > deadline {
            break r;
        }
        check += 1;
    };
    assert!(!report.store_error, "the agent reconnects");
    // The server may still be flushing what it held during the outage: a
    // window that overlaps it (until recovery + 5 s) is not evaluated.
    assert_eq!(notices(&report), []);
    assert_eq!(report.outage_skipped, 1);
    let mut skipped = 0;
    let report = loop {
        check += 1;
        let r = e.tick(t0 + check * 10 * S).await;
        if r.outage_skipped == 0 {
            break r;
        }
        skipped += 1;
    };
    assert_eq!(skipped, 1, "the window up to recovery + 5 s");
    // Redis came back empty: the window has no data, which breaches.
    assert_eq!(notices(&report), [Notice::Firing]);
}

/// Two agents started with the embedding API, with their own schedulers
/// and real time, on one Redis: one mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_running_agents_send_one_mail() {
    let redis = RedisServer::start();
    let yaml = "\
version: 1
monitors:
  - metric: http.response.400
    interval: 1s
    window: 30s
    triggers:
      - threshold: 3
        run_every: 1h
        to: [oncall@example.com]
";
    let monitors = file(yaml);
    let writer = redis_store(&redis).await;
    // Breaching data in every second of the next few windows.
    let now_s = (base_ms() / 1000) as i64;
    for s in now_s..now_s + 120 {
        count(&*writer, "http.response.400", s, 5.0).await;
    }
    let mailers = [
        Arc::new(RecordingMailer::default()),
        Arc::new(RecordingMailer::default()),
    ];
    let mut agents = Vec::new();
    for m in &mailers {
        let config = AgentConfig::default()
            .with_monitors(monitors.clone())
            .with_mail_queue(QueueConfig::default());
        let config = AgentConfig {
            evaluation_delay: Duration::from_millis(100),
            ..config
        };
        agents.push(
            hawkeye_agent::start(config, redis_store(&redis).await, m.clone())
                .await
                .unwrap(),
        );
    }
    // Wait for the first mail, then for both agents to have checked a few
    // more times: no second mail may come.
    let first = tokio::time::timeout(DEADLINE, async {
        loop {
            let n: usize = mailers.iter().map(|m| m.mails.lock().unwrap().len()).sum();
            if n > 0 {
                break;
            }
            tokio::select! {
                _ = mailers[0].arrived.notified() => {}
                _ = mailers[1].arrived.notified() => {}
            }
        }
    })
    .await;
    assert!(first.is_ok(), "no alert within {DEADLINE:?}");
    let checks_then: Vec<u64> = agents.iter().map(|a| a.stats().engine.checks).collect();
    let deadline = Instant::now() + DEADLINE;
    while agents
        .iter()
        .zip(&checks_then)
        .any(|(a, then)| a.stats().engine.checks < then + 3)
    {
        assert!(Instant::now() < deadline, "agents stopped checking");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stats = Vec::new();
    for a in agents {
        stats.push(a.shutdown().await);
    }
    let total: usize = mailers.iter().map(|m| m.mails.lock().unwrap().len()).sum();
    assert_eq!(total, 1, "one mail between two agents");
    assert!(stats.iter().all(|s| s.engine.checks >= 3));
}

/// Redis loses its data (FLUSHALL, as a restart without persistence does)
/// while two monitors with different intervals fire. The loss is found at
/// a tick where only the 10 s monitor is due: the 30 s monitor's state must
/// be written back too, or its next check starts a second episode.
#[tokio::test]
async fn a_store_that_lost_its_data_gets_back_the_states_of_monitors_not_due() {
    let redis = RedisServer::start();
    let store = redis_store(&redis).await;
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let yaml = format!(
        "{MONITORS}  - metric: queue.errors\n    interval: 30s\n    triggers:\n      - {{threshold: 3, to: [oncall@example.com]}}\n"
    );
    let mut e = engine(&file(&yaml), store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    count(&*store, "queue.errors", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing, Notice::Firing]);
    redis.cli(&["FLUSHALL"]);
    count(&*store, "http.response.400", secs(t0 + 10 * S), 5.0).await;
    let r = e.tick(t0 + 10 * S).await;
    assert!(r.data_loss, "the loss is seen");
    assert_eq!(notices(&r), []);
    count(&*store, "http.response.400", secs(t0 + 20 * S), 5.0).await;
    assert_eq!(notices(&e.tick(t0 + 20 * S).await), []);
    count(&*store, "http.response.400", secs(t0 + 30 * S), 5.0).await;
    count(&*store, "queue.errors", secs(t0 + 30 * S), 5.0).await;
    let r = e.tick(t0 + 30 * S).await;
    assert_eq!(
        notices(&r),
        [Notice::Repeat],
        "the 10 s monitor repeats (run_every 30s); the 30 s monitor is still in its first episode: {:?}",
        r.notices
    );
    assert!(
        r.notices[0].0.contains("http.response.400"),
        "{:?}",
        r.notices
    );
}
