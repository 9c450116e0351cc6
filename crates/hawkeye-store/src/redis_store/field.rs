//! The fields of a minute hash: which field holds what part of which second,
//! written and read by this one type so that the layout exists once.
//! The layout is described in docs/storage.md ("Minute hashes").

use std::fmt;

use hawkeye_protocol::MetricKind;

use crate::aggregate::{Aggregate, DistributionStats, GaugeStats};

/// What a field holds for its second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// A counter's sum: field `S`.
    Counter,
    /// A gauge's last value: `S:l`.
    Last,
    /// Gauge or distribution minimum: `S:lo`.
    Min,
    /// Gauge or distribution maximum: `S:hi`.
    Max,
    /// Gauge or distribution sum: `S:s`.
    Sum,
    /// Gauge or distribution (weighted) count: `S:n`.
    Count,
    /// Sketch: weight of the observations at zero, `S:z`.
    Zero,
    /// Sketch: weight of positive bucket `i`, `S:b<i>`.
    Positive(i32),
    /// Sketch: weight of negative bucket `i` (by magnitude), `S:m<i>`.
    Negative(i32),
}

/// How a write combines its value with what the field holds, so that writes
/// of several flushes and servers commute (a gauge's last value aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    Add,
    Set,
    KeepMin,
    KeepMax,
}

impl Merge {
    /// The one-character code the write script reads.
    pub(crate) fn code(self) -> char {
        match self {
            Merge::Add => '+',
            Merge::Set => '=',
            Merge::KeepMin => '<',
            Merge::KeepMax => '>',
        }
    }
}

/// One field of a minute hash: a second of the minute (0–59) and a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub second: i64,
    pub part: Part,
}

/// A field name this layout does not know, or a value that is not a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadField;

/// The parts every second of a counter or gauge has, in the order they are
/// written. Distributions have sketch buckets that are not known in advance.
const COUNTER_PARTS: &[Part] = &[Part::Counter];
const GAUGE_PARTS: &[Part] = &[Part::Last, Part::Min, Part::Max, Part::Sum, Part::Count];

impl Field {
    pub(crate) fn new(second: i64, part: Part) -> Field {
        Field { second, part }
    }

    pub(crate) fn merge(self) -> Merge {
        match self.part {
            Part::Last => Merge::Set,
            Part::Min => Merge::KeepMin,
            Part::Max => Merge::KeepMax,
            Part::Counter
            | Part::Sum
            | Part::Count
            | Part::Zero
            | Part::Positive(_)
            | Part::Negative(_) => Merge::Add,
        }
    }

    /// Reads a field name; `Ok(None)` for fields that hold no data (names
    /// starting with `_`, such as the flush markers older versions wrote).
    pub(crate) fn parse(name: &str) -> Result<Option<Field>, BadField> {
        if name.starts_with('_') {
            return Ok(None);
        }
        let (second, part) = name.split_once(':').unwrap_or((name, ""));
        let second: i64 = second.parse().map_err(|_| BadField)?;
        if !(0..60).contains(&second) {
            return Err(BadField);
        }
        let index = |digits: &str| digits.parse::<i32>().map_err(|_| BadField);
        let part = match part {
            "" => Part::Counter,
            "l" => Part::Last,
            "lo" => Part::Min,
            "hi" => Part::Max,
            "s" => Part::Sum,
            "n" => Part::Count,
            "z" => Part::Zero,
            b if b.starts_with('b') => Part::Positive(index(&b[1..])?),
            m if m.starts_with('m') => Part::Negative(index(&m[1..])?),
            _ => return Err(BadField),
        };
        Ok(Some(Field { second, part }))
    }

    /// Calls `emit` with every field and value that second `second` (of the
    /// minute) of `agg` writes. Sets write no fields (they are HyperLogLogs).
    pub(crate) fn each_of(second: i64, agg: &Aggregate, mut emit: impl FnMut(Field, f64)) {
        let mut put = |part, value| emit(Field::new(second, part), value);
        match agg {
            Aggregate::Counter(v) => put(Part::Counter, *v),
            Aggregate::Gauge(g) => {
                put(Part::Last, g.last);
                put(Part::Min, g.min);
                put(Part::Max, g.max);
                put(Part::Sum, g.sum);
                put(Part::Count, g.count);
            }
            Aggregate::Distribution(d) => {
                put(Part::Count, d.count);
                put(Part::Sum, d.sum);
                put(Part::Min, d.min);
                put(Part::Max, d.max);
                if d.sketch.zero > 0.0 {
                    put(Part::Zero, d.sketch.zero);
                }
                for (i, c) in &d.sketch.positive {
                    put(Part::Positive(*i), *c);
                }
                for (i, c) in &d.sketch.negative {
                    put(Part::Negative(*i), *c);
                }
            }
            Aggregate::Set(_) => {}
        }
    }

    /// The empty aggregate of `kind` that [`Field::apply`] fills.
    pub(crate) fn empty(kind: MetricKind) -> Option<Aggregate> {
        match kind {
            MetricKind::Counter => Some(Aggregate::Counter(0.0)),
            MetricKind::Gauge => Some(Aggregate::Gauge(GaugeStats::new(f64::NAN))),
            MetricKind::Distribution => Some(Aggregate::Distribution(Box::default())),
            MetricKind::Set => None,
        }
    }

    /// Puts the value this field holds into `agg`; an error when the part
    /// does not belong to the aggregate's kind.
    pub(crate) fn apply(self, value: f64, agg: &mut Aggregate) -> Result<(), BadField> {
        match agg {
            Aggregate::Counter(c) if self.part == Part::Counter => *c = value,
            Aggregate::Gauge(g) => apply_gauge(self.part, value, g)?,
            Aggregate::Distribution(d) => apply_distribution(self.part, value, d)?,
            _ => return Err(BadField),
        }
        Ok(())
    }

    /// The parts each second of `kind` has when they are fixed (counters and
    /// gauges), so a few seconds can be read by naming their fields.
    pub(crate) fn fixed_parts(kind: MetricKind) -> Option<&'static [Part]> {
        match kind {
            MetricKind::Counter => Some(COUNTER_PARTS),
            MetricKind::Gauge => Some(GAUGE_PARTS),
            MetricKind::Distribution | MetricKind::Set => None,
        }
    }
}

fn apply_gauge(part: Part, value: f64, g: &mut GaugeStats) -> Result<(), BadField> {
    match part {
        Part::Last => g.last = value,
        Part::Min => g.min = value,
        Part::Max => g.max = value,
        Part::Sum => g.sum = value,
        Part::Count => g.count = value,
        _ => return Err(BadField),
    }
    Ok(())
}

fn apply_distribution(part: Part, value: f64, d: &mut DistributionStats) -> Result<(), BadField> {
    match part {
        Part::Count => d.count = value,
        Part::Sum => d.sum = value,
        Part::Min => d.min = value,
        Part::Max => d.max = value,
        Part::Zero => d.sketch.zero = value,
        Part::Positive(i) => {
            d.sketch.positive.insert(i, value);
        }
        Part::Negative(i) => {
            d.sketch.negative.insert(i, value);
        }
        Part::Counter | Part::Last => return Err(BadField),
    }
    Ok(())
}

impl Field {
    /// Appends the field's name to `out` (reads name a field per second
    /// and part: no formatting machinery).
    pub(super) fn push_into(&self, out: &mut String) {
        out.push_str(itoa::Buffer::new().format(self.second));
        let (suffix, bucket) = match self.part {
            Part::Counter => return,
            Part::Last => (":l", None),
            Part::Min => (":lo", None),
            Part::Max => (":hi", None),
            Part::Sum => (":s", None),
            Part::Count => (":n", None),
            Part::Zero => (":z", None),
            Part::Positive(i) => (":b", Some(i)),
            Part::Negative(i) => (":m", Some(i)),
        };
        out.push_str(suffix);
        if let Some(i) = bucket {
            out.push_str(itoa::Buffer::new().format(i));
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(12);
        self.push_into(&mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::Sketch;

    fn roundtrip(kind: MetricKind, agg: &Aggregate) -> Aggregate {
        let mut back = Field::empty(kind).unwrap();
        Field::each_of(7, agg, |field, value| {
            let name = field.to_string();
            let parsed = Field::parse(&name).unwrap().unwrap();
            assert_eq!(parsed, field, "{name}");
            assert_eq!(parsed.second, 7);
            parsed.apply(value, &mut back).unwrap();
        });
        back
    }

    #[test]
    fn every_kind_reads_back_what_it_writes() {
        let counter = Aggregate::Counter(2.5);
        assert_eq!(roundtrip(MetricKind::Counter, &counter), counter);
        let mut g = GaugeStats::new(3.0);
        g.observe(-1.0);
        let gauge = Aggregate::Gauge(g);
        assert_eq!(roundtrip(MetricKind::Gauge, &gauge), gauge);
        let mut d = DistributionStats {
            sketch: Sketch::default(),
            ..Default::default()
        };
        for v in [-20.0, 0.0, 0.5, 3.0, 1e6] {
            d.observe(v, 2.0);
        }
        let dist = Aggregate::Distribution(Box::new(d));
        assert_eq!(roundtrip(MetricKind::Distribution, &dist), dist);
    }

    #[test]
    fn names_are_the_documented_ones() {
        let names = |agg: &Aggregate| {
            let mut v = Vec::new();
            Field::each_of(59, agg, |f, _| v.push(format!("{}{f}", f.merge().code())));
            v
        };
        assert_eq!(names(&Aggregate::Counter(1.0)), ["+59"]);
        assert_eq!(
            names(&Aggregate::Gauge(GaugeStats::new(1.0))),
            ["=59:l", "<59:lo", ">59:hi", "+59:s", "+59:n"]
        );
        let mut d = DistributionStats::default();
        d.observe(-2.0, 1.0);
        d.observe(0.0, 1.0);
        d.observe(2.0, 1.0);
        let got = names(&Aggregate::Distribution(Box::new(d)));
        assert_eq!(got[..5], ["+59:n", "+59:s", "<59:lo", ">59:hi", "+59:z"]);
        assert!(got[5].starts_with("+59:b") && got[6].starts_with("+59:m"));
    }

    #[test]
    fn markers_are_skipped_and_strangers_refused() {
        assert_eq!(Field::parse("_f:12345"), Ok(None));
        for bad in ["x", "60", "-1", "3:q", "3:bx", "", "3:m"] {
            assert_eq!(Field::parse(bad), Err(BadField), "{bad}");
        }
        let mut counter = Aggregate::Counter(0.0);
        let last = Field::new(1, Part::Last);
        assert_eq!(last.apply(1.0, &mut counter), Err(BadField));
        assert_eq!(Field::fixed_parts(MetricKind::Gauge).unwrap().len(), 5);
        assert!(Field::fixed_parts(MetricKind::Distribution).is_none());
    }
}
