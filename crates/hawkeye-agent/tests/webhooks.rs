//! Webhooks (`docs/alerts.md`, "Webhooks"): the engine on the in-memory
//! store records posts in the outbox beside mail, and the delivery posts
//! them through the real HTTP notifier to a real local HTTP server (axum on
//! a loopback port): one episode id from firing to resolved, retries in
//! order while a receiver is down, and a receiver that is down holds back
//! neither the mail nor the other receivers.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::*;
use hawkeye_agent::{parse_monitors, Delivery, HttpNotifier, MonitorsFile};
use hawkeye_mail::QueueConfig;
use serde_json::Value;

const S: u64 = 1000;
const HOUR_MS: u64 = 3_600_000;

/// One post as received: the path, its `Idempotency-Key` and JSON body.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    key: String,
    body: Value,
}

#[derive(Default)]
struct Receiver {
    posts: Mutex<Vec<Post>>,
    /// `/flaky` answers 503 while this is false.
    flaky_up: AtomicBool,
}

impl Receiver {
    fn posts_to(&self, path: &str) -> Vec<Post> {
        let posts = self.posts.lock().unwrap();
        posts.iter().filter(|p| p.path == path).cloned().collect()
    }
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    if name == "flaky" && !r.flaky_up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    r.posts.lock().unwrap().push(Post {
        path: format!("/{name}"),
        key,
        body,
    });
    StatusCode::OK
}

/// A receiver on a free loopback port; its base URL.
async fn receiver() -> (String, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/{name}", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), r)
}

fn file(base: &str, hooks: &[&str], extra: &str) -> MonitorsFile {
    let hooks: Vec<String> = hooks.iter().map(|h| format!("{base}{h}")).collect();
    let yaml = format!(
        "version: 1\nmonitors:\n  - id: errors\n    metric: http.errors\n    interval: 10s\n    triggers:\n      - threshold: 3\n        send_resolved: true\n        webhook: [{}]\n{extra}",
        hooks.join(", ")
    );
    parse_monitors(&yaml, "test.yaml", Duration::from_secs(3600)).unwrap()
}

fn delivery(store: Arc<dyn hawkeye_store::Store>, mailer: Arc<RecordingMailer>) -> Delivery {
    let notifier = HttpNotifier::new(Duration::from_secs(10)).unwrap();
    Delivery::new(
        store,
        mailer,
        Arc::new(notifier),
        QueueConfig::default(),
        Duration::from_secs(60),
    )
}

/// An engine over the in-memory store with `monitors`, its delivery, and
/// what they talk to; the counter is over the threshold at `t0`.
struct Setup {
    r: Arc<Receiver>,
    mailer: Arc<RecordingMailer>,
    t0: u64,
    engine: hawkeye_agent::Engine,
    delivery: Delivery,
    _queue: Queue,
}

/// `monitors` gets the receiver's base URL.
async fn setup(monitors: impl FnOnce(&str) -> MonitorsFile) -> Setup {
    let (base, r) = receiver().await;
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let engine = engine(&monitors(&base), store.clone(), &q, t0);
    let delivery = delivery(store.clone(), mailer.clone());
    count(&*store, "http.errors", secs(t0), 5.0).await;
    Setup {
        r,
        mailer,
        t0,
        engine,
        delivery,
        _queue: q,
    }
}

#[tokio::test]
async fn a_firing_and_its_resolve_reach_every_webhook_under_one_episode_id() {
    let Setup {
        r,
        mailer,
        t0,
        engine: mut e,
        delivery: mut d,
        ..
    } = setup(|base| file(base, &["/a", "/b"], "        to: [oncall@example.com]\n")).await;
    e.tick(t0).await;
    d.drain(wall_ms).await;
    // No data at the next check: a counter's empty window is 0, resolved.
    e.tick(t0 + 10 * S).await;
    d.drain(wall_ms).await;

    for path in ["/a", "/b"] {
        let posts = r.posts_to(path);
        let statuses: Vec<&Value> = posts.iter().map(|p| &p.body["status"]).collect();
        assert_eq!(statuses, ["firing", "resolved"], "{path}: {posts:?}");
        let firing = &posts[0].body;
        assert_eq!(firing["monitor"], "errors");
        assert_eq!(firing["metric"], "http.errors");
        assert_eq!(firing["value"], 5.0);
        assert_eq!(firing["threshold"], 3.0);
        assert_eq!(firing["op"], ">=");
        assert_eq!(firing["level"], 1);
        assert_eq!(firing["environment"], "test");
        assert_eq!(posts[1].body["id"], firing["id"], "one episode");
        assert_ne!(posts[0].key, posts[1].key, "two posts, two keys");
    }
    assert_eq!(
        r.posts_to("/a")[0].body,
        r.posts_to("/b")[0].body,
        "one body for every receiver"
    );
    assert_ne!(r.posts_to("/a")[0].key, r.posts_to("/b")[0].key);
    assert_eq!(mailer.subjects().len(), 2, "mail beside the posts");
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_in_order_and_holds_back_nothing_else() {
    let Setup {
        r,
        mailer,
        t0,
        engine: mut e,
        delivery: mut d,
        ..
    } = setup(|base| {
        file(
            base,
            &["/flaky", "/ok"],
            "        to: [oncall@example.com]\n",
        )
    })
    .await;
    e.tick(t0).await;
    e.tick(t0 + 10 * S).await;
    d.drain(wall_ms).await;
    assert!(r.posts_to("/flaky").is_empty());
    let ok: Vec<Value> = r
        .posts_to("/ok")
        .into_iter()
        .map(|p| p.body["status"].clone())
        .collect();
    assert_eq!(
        ok,
        ["firing", "resolved"],
        "the other receiver is not held back"
    );
    assert_eq!(mailer.subjects().len(), 2, "nor is the mail");
    assert!(d.stats().retries >= 1, "{:?}", d.stats());

    // The receiver is back; an hour later every backoff has run out.
    r.flaky_up.store(true, Ordering::SeqCst);
    let later = wall_ms() + HOUR_MS;
    while d.deliver_due(later).await.unwrap() > 0 {}
    let flaky: Vec<Value> = r
        .posts_to("/flaky")
        .into_iter()
        .map(|p| p.body["status"].clone())
        .collect();
    assert_eq!(
        flaky,
        ["firing", "resolved"],
        "in the order recorded, once each"
    );
    assert_eq!(r.posts_to("/ok").len(), 2, "nothing posted twice");
}

#[tokio::test]
async fn a_webhook_only_trigger_posts_slacks_body() {
    let Setup {
        r,
        mailer,
        t0,
        engine: mut e,
        delivery: mut d,
        ..
    } = setup(|base| file(base, &["/slack"], "        webhook_format: slack\n")).await;
    e.tick(t0).await;
    d.drain(wall_ms).await;
    let posts = r.posts_to("/slack");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let body = posts[0].body.as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["text"]);
    assert!(
        body["text"].as_str().unwrap().contains("http.errors"),
        "{body:?}"
    );
    assert!(mailer.subjects().is_empty(), "no `to`: no mail");
}

#[test]
fn a_webhook_must_be_an_http_url_and_a_trigger_needs_someone_to_tell() {
    let load = |trigger: &str| {
        parse_monitors(
            &format!("version: 1\nmonitors:\n  - metric: a\n    triggers:\n      - threshold: 1\n{trigger}"),
            "m.yaml",
            Duration::from_secs(3600),
        )
    };
    let e = load("        webhook: ftp://example.com/x\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.yaml:6:18: invalid webhook \"ftp://example.com/x\": scheme \"ftp\""),
        "{e}"
    );
    let e = load("        webhook: [http://ok.example/a, 'not a url']\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid webhook \"not a url\""), "{e}");
    let e = load("        webhook_format: teams\n        webhook: http://x.example/\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown webhook_format \"teams\""), "{e}");
    let e = load("        send_resolved: true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("or give a `webhook`"), "{e}");
    assert!(load("        webhook: https://hooks.example.com/T/B\n").is_ok());
}
