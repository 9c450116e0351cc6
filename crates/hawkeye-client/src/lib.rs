//! The crate an application links to send metrics to a hawkeye server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = hawkeye_client::Client::new(hawkeye_client::ClientConfig::from_env())?;
//! client.incr("jobs.done", &[("queue", "mail")]);
//! client.timing("jobs.duration", std::time::Duration::from_millis(42), &[]);
//! client.gauge("jobs.backlog", 17.0, &[]);
//! client.flush().await?; // everything above has been read by the server
//! # Ok(()) }
//! ```
//!
//! Recording never blocks and never panics: an event goes into a bounded
//! queue (or is dropped and counted when the queue is full). A background
//! task ([`sender`]) merges the queue (counters are summed per series,
//! the last gauge wins, timings are packed several to a line, set members are
//! de-duplicated), and writes JSON-RPC 2.0 `metric.send` requests to the
//! server's Unix socket, each confirmed by its own answer; after a server
//! restart it sends again only what was not answered. What it promises,
//! every bound and every counter: `docs/client.md` in the repository.
//!
//! - [`Client`]: the handle (cheap to clone) with `incr`, `count`, `gauge`,
//!   `timing`, `histogram`, `set`, [`Client::flush`] and [`Client::shutdown`].
//! - [`HttpMetricsLayer`]: a tower layer counting HTTP responses.
//! - `HawkeyeRecorder` (feature `metrics`): a `metrics`-crate recorder.
//! - [`spy`]: a server in memory for tests ([`Client::with_spy`]), played by
//!   the test: no server process.
//! - [`rpc`]: request/response calls (`metric.query`, `server.stats`), for
//!   tools and tests.

mod client;
mod config;
mod counters;
mod endpoint;
mod error;
mod http_layer;
mod http_series;
mod pending;
#[cfg(feature = "metrics")]
mod recorder;
pub mod rpc;
mod sample;
pub mod sender;
mod series;
pub mod spy;

pub use client::Client;
pub use config::ClientConfig;
pub use counters::ClientStats;
pub use error::{ClientError, FlushError};
pub use http_layer::{HttpMetrics, HttpMetricsLayer, ResponseFuture};
#[cfg(feature = "metrics")]
pub use recorder::HawkeyeRecorder;
pub use series::MAX_TAG_BYTES;
