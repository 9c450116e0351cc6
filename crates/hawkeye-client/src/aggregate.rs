//! What the background task holds between two writes: events merged per
//! series, and their rendering as metric lines.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::http_layer::HttpSeries;
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
    fn code(self) -> &'static str {
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

#[derive(Debug, Default)]
struct GaugeState {
    /// The last absolute value set, if any in this batch.
    base: Option<f64>,
    /// Adjustments after it.
    delta: f64,
}

/// Events merged since the last write.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    counters: HashMap<SeriesText, f64>,
    gauges: HashMap<SeriesText, GaugeState>,
    observations: HashMap<(SeriesText, Observation), Vec<f64>>,
    sets: HashMap<SeriesText, HashSet<Box<str>>>,
    /// Entries held (series, observations, set members): what memory grows with.
    entries: usize,
    /// Events merged in.
    events: u64,
}

/// Values packed into one timing line (DogStatsD 1.1 `name:1:2:3|ms`).
const VALUES_PER_LINE: usize = 64;

impl Pending {
    pub(crate) fn is_empty(&self) -> bool {
        self.events == 0
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Merges `sample`; returns how many events had to be dropped because
    /// holding them would pass `max_entries`.
    pub(crate) fn add(&mut self, sample: Sample, max_entries: usize) -> u64 {
        let room = self.entries < max_entries;
        let kept = match sample {
            Sample::Count(s, v) => self.count(s, v, room),
            Sample::GaugeSet(s, v) => self.gauge(s, room, |g| {
                g.base = Some(v);
                g.delta = 0.0;
            }),
            Sample::GaugeAdd(s, v) => self.gauge(s, room, |g| g.delta += v),
            Sample::Observe(s, kind, v) => self.observe(s, kind, v, room),
            Sample::SetMember(s, m) => {
                let known = self.sets.get(&s).is_some_and(|set| set.contains(&m));
                if known || room {
                    let set = self.sets.entry(s).or_default();
                    if set.insert(m) {
                        self.entries += 1;
                    }
                    true
                } else {
                    false
                }
            }
            Sample::Http {
                series,
                status,
                latency_ms,
            } => {
                let mut kept = self.count(series.requests.clone(), 1.0, room);
                match status {
                    Some(code) => {
                        kept &= self.count(series.status(code), 1.0, room);
                        kept &= self.count(series.class(code), 1.0, room);
                    }
                    None => kept &= self.count(series.errors.clone(), 1.0, room),
                }
                kept &= self.observe(
                    series.latency.clone(),
                    Observation::Timing,
                    latency_ms,
                    room,
                );
                kept
            }
        };
        if kept {
            self.events += 1;
            0
        } else {
            1
        }
    }

    fn count(&mut self, s: SeriesText, v: f64, room: bool) -> bool {
        if let Some(total) = self.counters.get_mut(&s) {
            *total += v;
            return true;
        }
        if !room {
            return false;
        }
        self.entries += 1;
        self.counters.insert(s, v);
        true
    }

    fn gauge(&mut self, s: SeriesText, room: bool, apply: impl FnOnce(&mut GaugeState)) -> bool {
        if let Some(g) = self.gauges.get_mut(&s) {
            apply(g);
            return true;
        }
        if !room {
            return false;
        }
        self.entries += 1;
        apply(self.gauges.entry(s).or_default());
        true
    }

    fn observe(&mut self, s: SeriesText, kind: Observation, v: f64, room: bool) -> bool {
        if !room {
            return false;
        }
        self.entries += 1;
        self.observations.entry((s, kind)).or_default().push(v);
        true
    }

    /// Writes every held entry as metric lines (each passed to `emit`) and
    /// empties the batch.
    pub(crate) fn drain_lines(&mut self, mut emit: impl FnMut(&str)) {
        let mut line = String::with_capacity(256);
        for (s, total) in self.counters.drain() {
            line.clear();
            let _ = write!(line, "{}:{}|c{}", s.name(), total, s.tag_suffix());
            emit(&line);
        }
        for (s, g) in self.gauges.drain() {
            if let Some(base) = g.base {
                if base < 0.0 || (base == 0.0 && base.is_sign_negative()) {
                    // A leading '-' means "adjust": set 0 first, then subtract.
                    line.clear();
                    let _ = write!(line, "{}:0|g{}", s.name(), s.tag_suffix());
                    emit(&line);
                }
                line.clear();
                let _ = write!(line, "{}:{}|g{}", s.name(), base, s.tag_suffix());
                emit(&line);
            }
            if g.delta != 0.0 {
                line.clear();
                let sign = if g.delta > 0.0 { "+" } else { "" };
                let _ = write!(line, "{}:{sign}{}|g{}", s.name(), g.delta, s.tag_suffix());
                emit(&line);
            }
        }
        for ((s, kind), values) in self.observations.drain() {
            for chunk in values.chunks(VALUES_PER_LINE) {
                line.clear();
                line.push_str(s.name());
                for v in chunk {
                    let _ = write!(line, ":{v}");
                }
                line.push('|');
                line.push_str(kind.code());
                line.push_str(s.tag_suffix());
                emit(&line);
            }
        }
        for (s, members) in self.sets.drain() {
            for m in members {
                line.clear();
                let _ = write!(line, "{}:{m}|s{}", s.name(), s.tag_suffix());
                emit(&line);
            }
        }
        self.entries = 0;
        self.events = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesBuilder;
    use hawkeye_protocol::{parse_line, Value};

    fn series(name: &str) -> SeriesText {
        SeriesBuilder::default().build(name, &[("k", "v")]).unwrap()
    }

    fn lines(p: &mut Pending) -> Vec<String> {
        let mut out = Vec::new();
        p.drain_lines(|l| out.push(l.to_string()));
        out.sort();
        for l in &out {
            parse_line(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
        out
    }

    #[test]
    fn counters_are_summed_exactly() {
        let mut p = Pending::default();
        for _ in 0..1000 {
            assert_eq!(p.add(Sample::Count(series("a"), 1.0), 10), 0);
        }
        p.add(Sample::Count(series("a"), 5.0), 10);
        assert_eq!(p.events(), 1001);
        assert_eq!(lines(&mut p), vec!["a:1005|c|#k:v"]);
        assert!(p.is_empty());
    }

    #[test]
    fn gauges_keep_the_last_value_and_the_adjustments_after_it() {
        let mut p = Pending::default();
        p.add(Sample::GaugeAdd(series("g"), 3.0), 10);
        p.add(Sample::GaugeSet(series("g"), -4.5), 10);
        p.add(Sample::GaugeAdd(series("g"), 2.0), 10);
        p.add(Sample::GaugeAdd(series("h"), -2.0), 10);
        let out = lines(&mut p);
        assert_eq!(
            out,
            vec!["g:+2|g|#k:v", "g:-4.5|g|#k:v", "g:0|g|#k:v", "h:-2|g|#k:v"]
        );
    }

    #[test]
    fn observations_are_packed_and_all_kept() {
        let mut p = Pending::default();
        for i in 0..100 {
            p.add(
                Sample::Observe(series("t"), Observation::Timing, f64::from(i)),
                1000,
            );
        }
        let out = lines(&mut p);
        assert_eq!(out.len(), 2);
        let total: usize = out
            .iter()
            .map(|l| parse_line(l).unwrap().values.len())
            .sum();
        assert_eq!(total, 100);
        assert!(out.iter().all(|l| l.ends_with("|ms|#k:v")));
        let first = parse_line(&out[0]).unwrap();
        assert!(matches!(first.values[0], Value::Number(_)));
    }

    #[test]
    fn set_members_are_deduplicated() {
        let mut p = Pending::default();
        for m in ["x", "y", "x"] {
            p.add(Sample::SetMember(series("s"), m.into()), 10);
        }
        assert_eq!(lines(&mut p), vec!["s:x|s|#k:v", "s:y|s|#k:v"]);
    }

    #[test]
    fn the_bound_drops_new_entries_but_keeps_increments() {
        let mut p = Pending::default();
        assert_eq!(p.add(Sample::Count(series("a"), 1.0), 1), 0);
        assert_eq!(p.add(Sample::Count(series("b"), 1.0), 1), 1);
        assert_eq!(p.add(Sample::Count(series("a"), 1.0), 1), 0);
        assert_eq!(lines(&mut p), vec!["a:2|c|#k:v"]);
    }
}
