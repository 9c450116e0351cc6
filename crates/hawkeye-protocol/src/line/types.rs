//! What a parsed line is: its values, the line itself, what it was read
//! from, and what a signed gauge means.

use smallvec::SmallVec;

use crate::series::MetricKind;

/// A line's values: nearly always one, held inline (no allocation).
pub type Values<'a> = SmallVec<[Value<'a>; 1]>;

/// What a gauge value written with a sign (`-3`, `+3`) means. statsd reads
/// it as an adjustment of the current value; DogStatsD clients send it
/// meaning "set to -3" (a DogStatsD gauge has no adjustments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GaugeMode {
    /// `x:-3|g` lowers the gauge by 3 (statsd, Etsy's daemon).
    #[default]
    Statsd,
    /// `x:-3|g` sets the gauge to -3 (DogStatsD).
    DogStatsd,
}

impl std::str::FromStr for GaugeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<GaugeMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "statsd" => Ok(GaugeMode::Statsd),
            "dogstatsd" => Ok(GaugeMode::DogStatsd),
            other => Err(format!(
                "{other:?} is not a gauge mode (expected statsd or dogstatsd)"
            )),
        }
    }
}

/// One value of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A counter increment, a gauge's new value or an observation.
    Number(f64),
    /// A gauge adjustment written `+N` or `-N` ([`GaugeMode::Statsd`]).
    Delta(f64),
    /// A set member.
    Member(&'a str),
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine<'a> {
    pub name: &'a str,
    pub kind: MetricKind,
    pub values: Values<'a>,
    /// `1.0` when the line has no `@rate`.
    pub sample_rate: f64,
    /// In the order written, without the spaces around them; a key may
    /// repeat (`#team:a,team:b`).
    pub tags: Vec<(&'a str, &'a str)>,
    /// `|T<unix-seconds>`: the second the event belongs to.
    pub timestamp: Option<i64>,
    /// What the client sent: a metric, or a DogStatsD event or service
    /// check read as one.
    pub origin: Origin,
}

/// What a [`MetricLine`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Metric,
    /// `_e{...}`: one in the counter [`EVENTS_METRIC`](super::EVENTS_METRIC).
    Event,
    /// `_sc|...`: the check's status as a gauge.
    ServiceCheck,
}
