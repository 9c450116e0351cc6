//! The HTTP notifier against a real local HTTP server (axum on a loopback
//! port): what each answer means for a retry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hawkeye_notify::{HttpNotifier, Notifier, NotifyError, Webhook};

/// What the receiver got: (path, idempotency key, body).
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// A receiver answering `/ok` 200, `/busy` 503, `/bad` 400, `/slow` never.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let record = |status: StatusCode| {
        let got = got.clone();
        move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let got = got.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                got.lock()
                    .unwrap()
                    .push((uri.path().to_string(), key, body));
                (status, "told you so")
            }
        }
    };
    let app = Router::new()
        .route("/ok", post(record(StatusCode::OK)))
        .route("/busy", post(record(StatusCode::SERVICE_UNAVAILABLE)))
        .route("/bad", post(record(StatusCode::BAD_REQUEST)))
        .route("/slow", post(std::future::pending::<&'static str>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

fn hook(url: String) -> Webhook {
    Webhook {
        url,
        body: r#"{"status":"firing"}"#.to_string(),
        id: "e1.firing".to_string(),
    }
}

#[tokio::test]
async fn a_2xx_is_delivery_with_the_body_and_key_as_given() {
    let (base, got) = receiver().await;
    let notifier = HttpNotifier::new(Duration::from_secs(10)).unwrap();
    notifier.post(&hook(format!("{base}/ok"))).await.unwrap();
    let got = got.lock().unwrap();
    assert_eq!(
        *got,
        vec![(
            "/ok".to_string(),
            "e1.firing".to_string(),
            r#"{"status":"firing"}"#.to_string()
        )]
    );
}

#[tokio::test]
async fn busy_unreachable_and_slow_receivers_are_retried_a_refusal_is_not() {
    let (base, _got) = receiver().await;
    let notifier = HttpNotifier::new(Duration::from_millis(300)).unwrap();

    let busy = notifier
        .post(&hook(format!("{base}/busy")))
        .await
        .unwrap_err();
    assert!(busy.is_retryable(), "{busy}");
    assert!(busy.to_string().contains("503"), "{busy}");

    let bad = notifier
        .post(&hook(format!("{base}/bad")))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, NotifyError::Rejected { status: 400, body } if body == "told you so"),
        "{bad}"
    );
    assert!(!bad.is_retryable());

    // A port nobody listens on: bind one, then drop the listener.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = notifier
        .post(&hook(format!("http://127.0.0.1:{port}/x")))
        .await
        .unwrap_err();
    assert!(down.is_retryable(), "{down}");

    let slow = notifier
        .post(&hook(format!("{base}/slow")))
        .await
        .unwrap_err();
    assert!(slow.is_retryable(), "{slow}");
}

#[tokio::test]
async fn a_url_that_is_not_one_is_a_configuration_error() {
    let notifier = HttpNotifier::new(Duration::from_secs(1)).unwrap();
    let e = notifier.post(&hook("not a url".into())).await.unwrap_err();
    assert!(matches!(e, NotifyError::Config(_)), "{e}");
    assert!(!e.is_retryable());
}
