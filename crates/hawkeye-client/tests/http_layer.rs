//! The tower layer in an axum router, against a real server.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use common::{query, query_value, TestServer};
use hawkeye_client::{Client, ClientConfig};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_counted_by_status_and_class() {
    let server = TestServer::start().await;
    let client = Client::new(
        ClientConfig::new(server.socket_path()).flush_interval(Duration::from_millis(10)),
    )
    .unwrap();
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/400", get(|| async { StatusCode::BAD_REQUEST }))
        .route("/500", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .layer(client.http_layer("web"));

    for (path, times) in [("/ok", 2), ("/400", 3), ("/500", 1), ("/missing", 1)] {
        for _ in 0..times {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(!response.status().is_informational());
        }
    }
    client.flush().await.expect("flush");

    let socket = server.socket_path();
    for (metric, agg, expected) in [
        ("web.requests", "sum", 7.0),
        ("web.response.200", "sum", 2.0),
        ("web.response.2xx", "sum", 2.0),
        ("web.response.400", "sum", 3.0),
        ("web.response.404", "sum", 1.0),
        ("web.response.4xx", "sum", 4.0),
        ("web.response.500", "sum", 1.0),
        ("web.response.5xx", "sum", 1.0),
        ("web.latency", "count", 7.0),
    ] {
        assert_eq!(
            query_value(&socket, &query(metric, agg)).await,
            Some(expected),
            "{metric} {agg}"
        );
    }
}
