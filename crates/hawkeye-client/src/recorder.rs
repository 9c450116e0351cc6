//! The `metrics`-crate recorder (feature `metrics`): [`HawkeyeRecorder`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SetRecorderError, SharedString, Unit,
};

use crate::client::Client;
use crate::sample::{Observation, Sample};
use crate::series::SeriesText;

/// A [`metrics`] crate recorder (feature `metrics`): code instrumented with
/// `metrics::counter!`, `gauge!` and `histogram!` reports to hawkeye.
/// Labels become tags. Counters are sent as `c`, gauges as `g` (increments
/// and decrements as `+N`/`-N`), histograms as `h`.
///
/// ```no_run
/// # fn demo(client: hawkeye_client::Client) {
/// hawkeye_client::HawkeyeRecorder::new(client).install().expect("no other recorder");
/// metrics::counter!("jobs.done", "queue" => "mail").increment(1);
/// # }
/// ```
///
/// Handles are kept per key (every `counter!` call for one key shares one
/// handle), so `Counter::absolute` sends the difference to the last value
/// of that key however often the macro runs. Clones share the handles.
#[derive(Clone)]
pub struct HawkeyeRecorder {
    client: Client,
    handles: Arc<Mutex<HashMap<Key, Arc<Handle>>>>,
}

impl std::fmt::Debug for HawkeyeRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HawkeyeRecorder")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl HawkeyeRecorder {
    pub fn new(client: Client) -> HawkeyeRecorder {
        HawkeyeRecorder {
            client,
            handles: Arc::default(),
        }
    }

    /// Makes this the process-wide recorder (there can be only one).
    pub fn install(self) -> Result<(), SetRecorderError<HawkeyeRecorder>> {
        metrics::set_global_recorder(self)
    }

    fn handle(&self, key: &Key) -> Arc<Handle> {
        let mut handles = self
            .handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = handles.get(key) {
            return Arc::clone(h);
        }
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let handle = Arc::new(Handle {
            series: self.client.series(key.name(), &labels),
            client: self.client.clone(),
            last_absolute: AtomicU64::new(0),
        });
        handles.insert(key.clone(), Arc::clone(&handle));
        handle
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
