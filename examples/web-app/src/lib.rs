//! The example web app: the original Go example's routes (`/ping`, `/400`,
//! `/500`) on axum, counted by hawkeye-client's HTTP layer, with hawkeye's
//! server and agent embedded (or standalone ones at a socket).
//!
//! With the root `monitors.yaml`, `ab -n 10 -c 1 http://127.0.0.1:8080/400`
//! makes the agent send an alert email (to the log by default).

pub mod ab;
pub mod app;
pub mod routes;

pub use app::{App, AppConfig, AppError, Hawkeye};
pub use routes::{router, METRIC_PREFIX};
