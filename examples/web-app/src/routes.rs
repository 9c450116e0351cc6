//! The routes of the original Go example: `/ping` answers 200, `/400` and
//! `/500` answer those statuses. They are instrumented with hawkeye's HTTP
//! layer (`http.requests`, `http.response.<status>`, `http.response.<class>`,
//! `http.latency`). `/raw/ping` is the same handler without the layer, to
//! measure what the instrumentation costs.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use hawkeye_client::Client;

/// The prefix of every metric the app records.
pub const METRIC_PREFIX: &str = "http";

async fn ping() -> &'static str {
    "pong"
}

async fn bad_request() -> (StatusCode, &'static str) {
    (StatusCode::BAD_REQUEST, "bad request")
}

async fn server_error() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
}

/// The app's router; `client` instruments every route but `/raw/ping`.
pub fn router(client: &Client) -> Router {
    let instrumented = Router::new()
        .route("/ping", get(ping))
        .route("/400", get(bad_request))
        .route("/500", get(server_error))
        .layer(client.http_layer(METRIC_PREFIX));
    let raw = Router::new().route("/raw/ping", get(ping));
    instrumented.merge(raw)
}
