//! What one series accumulates in one second. The server builds these in
//! memory from events; the stores persist and merge them. Every merge here is
//! commutative, so seconds, flushes and servers can be combined in any order
//! (a gauge's `last` is the one exception: the later write wins).

use std::collections::HashSet;

use hawkeye_protocol::MetricKind;

use crate::sketch::Sketch;

/// The large variants are boxed: the server keeps one aggregate per series
/// waiting for the next flush, and with 100 000 series their size is most of
/// its memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregate {
    /// Sum of increments, each divided by its sample rate.
    Counter(f64),
    Gauge(GaugeStats),
    Distribution(Box<DistributionStats>),
    Set(Box<HashSet<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GaugeStats {
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DistributionStats {
    /// Weighted count: an observation sampled at rate r weighs 1/r.
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Sketch,
}

impl GaugeStats {
    pub fn new(value: f64) -> GaugeStats {
        GaugeStats {
            last: value,
            min: value,
            max: value,
            sum: value,
            count: 1.0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        self.last = value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.count += 1.0;
    }

    /// Merges `later` (a later write of the same second) into `self`.
    pub fn merge(&mut self, later: &GaugeStats) {
        self.last = later.last;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
    }
}

impl DistributionStats {
    pub fn observe(&mut self, value: f64, weight: f64) {
        if self.count == 0.0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += weight;
        self.sum += value * weight;
        self.sketch.add(value, weight);
    }

    pub fn merge(&mut self, other: &DistributionStats) {
        if other.count == 0.0 {
            return;
        }
        if self.count == 0.0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        self.sketch.merge(&other.sketch);
    }

    /// The `q`-quantile, clamped to the observed range so that it is exact
    /// when all observations are equal.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q).map(|v| v.clamp(self.min, self.max))
    }
}

impl Aggregate {
    pub fn kind(&self) -> MetricKind {
        match self {
            Aggregate::Counter(_) => MetricKind::Counter,
            Aggregate::Gauge(_) => MetricKind::Gauge,
            Aggregate::Distribution(_) => MetricKind::Distribution,
            Aggregate::Set(_) => MetricKind::Set,
        }
    }

    /// Merges `later` into `self`. Both must be of the same kind; a mismatch
    /// (which the series key rules out) leaves `self` as it is.
    pub fn merge(&mut self, later: &Aggregate) {
        match (self, later) {
            (Aggregate::Counter(a), Aggregate::Counter(b)) => *a += b,
            (Aggregate::Gauge(a), Aggregate::Gauge(b)) => a.merge(b),
            (Aggregate::Distribution(a), Aggregate::Distribution(b)) => a.merge(b),
            (Aggregate::Set(a), Aggregate::Set(b)) => a.extend(b.iter().cloned()),
            _ => {}
        }
    }
}
