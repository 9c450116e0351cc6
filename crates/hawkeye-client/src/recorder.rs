//! A [`metrics`] crate recorder (feature `metrics`): code instrumented with
//! `metrics::counter!`, `gauge!` and `histogram!` reports to hawkeye.
//! Labels become tags. Counters are sent as `c`, gauges as `g` (increments
//! and decrements as `+N`/`-N`), histograms as `h`.
//!
//! ```no_run
//! # fn demo(client: hawkeye_client::Client) {
//! hawkeye_client::HawkeyeRecorder::new(client).install().expect("no other recorder");
//! metrics::counter!("jobs.done", "queue" => "mail").increment(1);
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SetRecorderError, SharedString, Unit,
};

use crate::aggregate::{Observation, Sample};
use crate::client::Client;
use crate::series::SeriesText;

/// Reports `metrics` macros to a hawkeye [`Client`].
#[derive(Debug, Clone)]
pub struct HawkeyeRecorder {
    client: Client,
}

impl HawkeyeRecorder {
    pub fn new(client: Client) -> HawkeyeRecorder {
        HawkeyeRecorder { client }
    }

    /// Makes this the process-wide recorder (there can be only one).
    pub fn install(self) -> Result<(), SetRecorderError<HawkeyeRecorder>> {
        metrics::set_global_recorder(self)
    }

    fn handle(&self, key: &Key) -> Arc<Handle> {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        Arc::new(Handle {
            series: self.client.series(key.name(), &labels),
            client: self.client.clone(),
            last_absolute: AtomicU64::new(0),
        })
    }
}

/// One registered metric.
struct Handle {
    /// `None` when nothing usable was left of the name.
    series: Option<SeriesText>,
    client: Client,
    /// The last value given to `Counter::absolute`, to send the difference.
    last_absolute: AtomicU64,
}

impl Handle {
    fn send(&self, sample: impl FnOnce(SeriesText) -> Sample) {
        if let Some(series) = &self.series {
            self.client.enqueue(sample(series.clone()));
        }
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.send(|s| Sample::Count(s, value as f64));
    }

    fn absolute(&self, value: u64) {
        let previous = self.last_absolute.swap(value, Ordering::Relaxed);
        if value > previous {
            self.send(|s| Sample::Count(s, (value - previous) as f64));
        }
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        if value.is_finite() {
            self.send(|s| Sample::GaugeAdd(s, value));
        }
    }

    fn decrement(&self, value: f64) {
        if value.is_finite() {
            self.send(|s| Sample::GaugeAdd(s, -value));
        }
    }

    fn set(&self, value: f64) {
        if value.is_finite() {
            self.send(|s| Sample::GaugeSet(s, value));
        }
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        if value.is_finite() {
            self.send(|s| Sample::Observe(s, Observation::Histogram, value));
        }
    }
}

impl Recorder for HawkeyeRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}
