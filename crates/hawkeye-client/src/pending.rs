//! What the background task holds between two writes: events merged per
//! series (counters summed, the last gauge and the adjustments after it,
//! every observation, distinct set members), and their rendering as metric
//! lines. Bounded by `max_pending` entries; increments of a series already
//! held are always kept.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::sample::{Observation, Sample};
use crate::series::SeriesText;

#[derive(Debug, Default)]
struct GaugeState {
    /// The last absolute value set, if any in this batch.
    base: Option<f64>,
    /// Adjustments after it.
    delta: f64,
    /// Events merged into this entry.
    events: u64,
}

/// Events merged since the last write.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Total and the number of events merged into it.
    counters: HashMap<SeriesText, (f64, u64)>,
    gauges: HashMap<SeriesText, GaugeState>,
    observations: HashMap<(SeriesText, Observation), Vec<f64>>,
    /// Members and how many events recorded each.
    sets: HashMap<SeriesText, HashMap<Box<str>, u64>>,
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
            Sample::Count(s, v) => self.count(s, v, room, 1),
            Sample::GaugeSet(s, v) => self.gauge(s, room, |g| {
                g.base = Some(v);
                g.delta = 0.0;
            }),
            Sample::GaugeAdd(s, v) => self.gauge(s, room, |g| g.delta += v),
            Sample::Observe(s, kind, v) => self.observe(s, kind, v, room),
            Sample::SetMember(s, m) => {
                let known = self.sets.get(&s).is_some_and(|set| set.contains_key(&m));
                if known || room {
                    let set = self.sets.entry(s).or_default();
                    let n = set.entry(m).or_insert_with(|| {
                        self.entries += 1;
                        0
                    });
                    *n += 1;
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
                // The latency is always a new entry: without room nothing of
                // the event is merged (it is dropped whole, never half).
                if !room {
                    false
                } else {
                    // The event is accounted to its latency value (one
                    // event per observation), the counters carry none.
                    self.count(series.requests.clone(), 1.0, true, 0);
                    match status {
                        Some(code) => {
                            self.count(series.status(code), 1.0, true, 0);
                            self.count(series.class(code), 1.0, true, 0);
                        }
                        None => {
                            self.count(series.errors.clone(), 1.0, true, 0);
                        }
                    }
                    self.observe(
                        series.latency.clone(),
                        Observation::Timing,
                        latency_ms,
                        true,
                    )
                }
            }
        };
        if kept {
            self.events += 1;
            0
        } else {
            1
        }
    }

    fn count(&mut self, s: SeriesText, v: f64, room: bool, events: u64) -> bool {
        if let Some((total, n)) = self.counters.get_mut(&s) {
            *total += v;
            *n += events;
            return true;
        }
        if !room {
            return false;
        }
        self.entries += 1;
        self.counters.insert(s, (v, events));
        true
    }

    fn gauge(&mut self, s: SeriesText, room: bool, apply: impl FnOnce(&mut GaugeState)) -> bool {
        if let Some(g) = self.gauges.get_mut(&s) {
            apply(g);
            g.events += 1;
            return true;
        }
        if !room {
            return false;
        }
        self.entries += 1;
        let g = self.gauges.entry(s).or_default();
        apply(g);
        g.events += 1;
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

    /// Writes every held entry as metric lines (each passed to `emit` with
    /// the number of events it carries; the numbers add up to
    /// [`events`](Pending::events)) and empties the batch.
    pub(crate) fn drain_lines(&mut self, mut emit: impl FnMut(&str, u64)) {
        let mut line = String::with_capacity(256);
        for (s, (total, events)) in self.counters.drain() {
            line.clear();
            let _ = write!(line, "{}:{}|c{}", s.name(), total, s.tag_suffix());
            emit(&line, events);
        }
        for (s, g) in self.gauges.drain() {
            // The gauge's events go with its first line.
            let mut events = g.events;
            let mut emit = |l: &str| emit(l, std::mem::take(&mut events));
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
                emit(&line, chunk.len() as u64);
            }
        }
        for (s, members) in self.sets.drain() {
            for (m, events) in members {
                line.clear();
                let _ = write!(line, "{}:{m}|s{}", s.name(), s.tag_suffix());
                emit(&line, events);
            }
        }
        self.entries = 0;
        self.events = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_series::HttpSeries;
    use crate::series::SeriesBuilder;
    use hawkeye_protocol::{parse_line, Value};
    use std::sync::Arc;

    fn series(name: &str) -> SeriesText {
        SeriesBuilder::default().build(name, &[("k", "v")]).unwrap()
    }

    fn lines(p: &mut Pending) -> Vec<String> {
        let mut out = Vec::new();
        let events = p.events();
        let mut total = 0;
        p.drain_lines(|l, n| {
            out.push(l.to_string());
            total += n;
        });
        assert_eq!(total, events, "events per line add up");
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
    fn an_http_event_without_room_is_dropped_whole() {
        let http = Arc::new(HttpSeries::new(&SeriesBuilder::default(), "web").unwrap());
        let sample = || Sample::Http {
            series: Arc::clone(&http),
            status: Some(200),
            latency_ms: 1.0,
        };
        let mut p = Pending::default();
        // Room for one event (4 entries), not for a second.
        assert_eq!(p.add(sample(), 1), 0);
        assert_eq!(p.add(sample(), 1), 1);
        assert_eq!(p.events(), 1);
        // The counters of the dropped event were not merged either.
        let out = lines(&mut p);
        assert!(out.contains(&"web.requests:1|c".to_string()), "{out:?}");
        assert!(out.contains(&"web.response.200:1|c".to_string()), "{out:?}");
        assert!(out.contains(&"web.response.2xx:1|c".to_string()), "{out:?}");
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
