//! One recorded event as it travels from a [`Client`](crate::Client) handle
//! through the bounded queue to the background task.

use std::sync::Arc;

use crate::http_series::HttpSeries;
use crate::series::SeriesText;

/// The statsd type of an observation; `ms`, `h` and `d` are one kind on the
/// server, kept apart here only to write back what the caller recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Observation {
    Timing,
    Histogram,
    Distribution,
}

impl Observation {
    /// The type field of a metric line.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Observation::Timing => "ms",
            Observation::Histogram => "h",
            Observation::Distribution => "d",
        }
    }
}

/// One queued event.
#[derive(Debug)]
pub(crate) enum Sample {
    Count(SeriesText, f64),
    GaugeSet(SeriesText, f64),
    GaugeAdd(SeriesText, f64),
    Observe(SeriesText, Observation, f64),
    SetMember(SeriesText, Box<str>),
    /// One HTTP response, from [`HttpMetricsLayer`](crate::HttpMetricsLayer):
    /// the request, status and class counters and the latency in one event.
    Http {
        series: Arc<HttpSeries>,
        status: Option<u16>,
        latency_ms: f64,
    },
}
