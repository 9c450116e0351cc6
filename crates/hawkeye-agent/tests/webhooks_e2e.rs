//! Issue 11's end-to-end check, all real processes: redis-server, the
//! `hawkeye-server` and `hawkeye-agent` binaries, an SMTP server (aiosmtpd),
//! a local HTTP receiver (axum on a loopback port, on its own thread) and
//! the `hawkeye` CLI. A grouped monitor over three routes, two of them over
//! the threshold: exactly two firing notices, each naming its group, by
//! webhook and by mail; `hawkeye alerts --json` shows the two, `--history`
//! their transitions.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use axum::routing::post;
use axum::Router;
use common::stack::{subjects, ticks, Stack, DEADLINE};
use serde_json::Value;

/// Posts received, and a signal for each.
#[derive(Default)]
struct Posts {
    bodies: Mutex<Vec<Value>>,
    arrived: Condvar,
}

impl Posts {
    /// Waits for at least `n` posts (or the deadline); returns them all.
    fn wait_for(&self, n: usize) -> Vec<Value> {
        let until = Instant::now() + DEADLINE;
        let mut bodies = self.bodies.lock().unwrap();
        while bodies.len() < n && Instant::now() < until {
            bodies = self
                .arrived
                .wait_timeout(bodies, until - Instant::now())
                .unwrap()
                .0;
        }
        bodies.clone()
    }
}

/// An HTTP receiver on its own thread and runtime; its URL.
fn receiver() -> (String, Arc<Posts>) {
    let posts = Arc::new(Posts::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let record = posts.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new().route(
                "/hook",
                post(move |body: String| async move {
                    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    record.bodies.lock().unwrap().push(v);
                    record.arrived.notify_all();
                    "ok"
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, posts)
}

fn json(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_grouped_monitor_fires_two_of_three_routes_by_webhook_and_mail() {
    let (url, posts) = receiver();
    let monitors = format!(
        "version: 1\nmonitors:\n  - id: route-errors\n    metric: http.errors\n    interval: 1s\n    window: 1h\n    group_by: [route]\n    triggers:\n      - threshold: 5\n        to: [oncall@example.com]\n        webhook: {url}\n"
    );
    let stack = Stack::start(&monitors);
    std::fs::write(
        stack.dir.path().join(".env"),
        "SERVICE_NAME=shop\nENVIRONMENT=e2e\n",
    )
    .unwrap();
    let agent = stack.agent("agent");
    stack.send(&[
        "http.errors:9|c|#route:/a",
        "http.errors:7|c|#route:/b",
        "http.errors:1|c|#route:/c",
    ]);

    let mails = stack.mails(2);
    let got = posts.wait_for(2);
    // A few more checks: nothing else is sent (the window keeps the counts).
    ticks(&agent, 3);
    let mut mail_subjects = subjects(&stack.smtp.messages());
    mail_subjects.sort();
    assert_eq!(mails.len(), 2);
    assert_eq!(mail_subjects.len(), 2, "{mail_subjects:?}");
    assert!(mail_subjects[0].contains("route=/a"), "{mail_subjects:?}");
    assert!(mail_subjects[1].contains("route=/b"), "{mail_subjects:?}");
    let got_now = posts.bodies.lock().unwrap().clone();
    assert_eq!(got_now.len(), 2, "{got_now:?}");
    let mut groups: Vec<(String, String, Value)> = got
        .iter()
        .map(|p| {
            (
                p["group"]["route"].as_str().unwrap_or_default().to_string(),
                p["status"].as_str().unwrap_or_default().to_string(),
                p["value"].clone(),
            )
        })
        .collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        groups,
        [
            ("/a".to_string(), "firing".to_string(), Value::from(9.0)),
            ("/b".to_string(), "firing".to_string(), Value::from(7.0)),
        ]
    );
    assert!(got.iter().all(|p| p["monitor"] == "route-errors"
        && p["environment"] == "e2e"
        && p["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("route=/")));

    let states = json(&stack.cli(&["alerts", "--json"]));
    let mut firing: Vec<(String, String)> = states
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap_or_default().to_string(),
                s["group"]["route"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    firing.sort();
    assert_eq!(
        firing,
        [
            ("firing".to_string(), "/a".to_string()),
            ("firing".to_string(), "/b".to_string())
        ],
        "{states:?}"
    );

    let history = json(&stack.cli(&["alerts", "--history", "--since", "1h", "--json"]));
    let mut told: Vec<(String, String, String)> = history
        .iter()
        .filter(|h| h["notice"] == "firing")
        .map(|h| {
            (
                h["group"]["route"].as_str().unwrap_or_default().to_string(),
                h["mail_to"][0].as_str().unwrap_or_default().to_string(),
                h["webhooks"][0].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            (
                "/a".to_string(),
                "oncall@example.com".to_string(),
                url.clone()
            ),
            (
                "/b".to_string(),
                "oncall@example.com".to_string(),
                url.clone()
            ),
        ],
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .all(|h| h["from"] == "ok" && h["to"] == "firing"),
        "{history:?}"
    );
}
