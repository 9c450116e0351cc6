//! Wire formats shared by every hawkeye component, with no I/O:
//!
//! - [`line`](mod@line): the statsd / DogStatsD metric line (`name:1|c|@0.5|#k:v`),
//!   and DogStatsD's events and service checks read as metric lines.
//! - [`series`]: what identifies a series (kind, name, sorted tags).
//! - [`jsonrpc`]: JSON-RPC 2.0 and Go `net/rpc/jsonrpc` (1.0) messages.
//! - [`rpc_call`]: the caller's side of them: requests encoded, replies decoded.
//! - [`exposition`]: the Prometheus text format, for the `/metrics` pages.
//! - [`duration`]: durations written as plain numbers or with units (`500ms`, `5m`).

pub mod duration;
pub mod exposition;
pub mod jsonrpc;
pub mod line;
pub mod rpc_call;
pub mod series;

pub use duration::{format_duration, parse_duration, DurationError, PlainUnit};
pub use line::{
    parse_line, parse_line_with, parse_payload, parse_payload_with, GaugeMode, Limits, LineError,
    MetricLine, Origin, Value, Values,
};
pub use series::{MetricKind, SeriesKey, TagFilter};
