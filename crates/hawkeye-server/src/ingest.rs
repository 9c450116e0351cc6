//! Taking parsed metric lines into the aggregator, for both sockets: each
//! line on its own (`metric.send`, datagrams), or all lines of a call or
//! none (`Metric.Handle`). Parsing happens before, outside the lock.

use std::sync::atomic::Ordering::Relaxed;

use hawkeye_protocol::{MetricLine, Origin};

use crate::aggregator::{Aggregator, Journal, Refusal};
use crate::clock::now_secs;
use crate::shared::Shared;
use crate::stats::Stats;

/// Counts of one lock hold, added to the stats once.
#[derive(Default)]
struct Counts {
    accepted: u64,
    rejected: u64,
    out_of_range: u64,
    dropped: u64,
    dogstatsd_events: u64,
    service_checks: u64,
}

impl Counts {
    fn accepted(&mut self, line: &MetricLine<'_>) {
        self.accepted += 1;
        match line.origin {
            Origin::Metric => {}
            Origin::Event => self.dogstatsd_events += 1,
            Origin::ServiceCheck => self.service_checks += 1,
        }
    }

    fn refused(&mut self, line: &MetricLine<'_>, refusal: Refusal) {
        self.rejected += 1;
        match refusal {
            Refusal::BufferFull(_) => self.dropped += line.values.len() as u64,
            Refusal::OutOfRange => self.out_of_range += 1,
            Refusal::TooManySeries(_) | Refusal::KeyBytesFull | Refusal::TimestampOutOfRange => {}
        }
    }

    fn record(self, shared: &Shared, aggregator: &Aggregator) {
        let stats = &shared.stats;
        stats
            .series
            .store(aggregator.series_count() as u64, Relaxed);
        stats.buffered.store(aggregator.buffered() as u64, Relaxed);
        Stats::add(&stats.lines_accepted, self.accepted);
        Stats::add(&stats.lines_rejected, self.rejected);
        Stats::add(&stats.lines_rejected_range, self.out_of_range);
        Stats::add(&stats.dropped, self.dropped);
        Stats::add(&stats.dogstatsd_events, self.dogstatsd_events);
        Stats::add(&stats.service_checks, self.service_checks);
    }
}

/// Applies `lines` (each with a number of the caller's) under one lock; each
/// is taken or refused on its own, and `refused` hears of every refusal.
/// Returns how many were taken.
pub(crate) fn ingest_each(
    shared: &Shared,
    lines: &[(u32, MetricLine<'_>)],
    mut refused: impl FnMut(u32, Refusal),
) -> usize {
    if lines.is_empty() {
        return 0;
    }
    let mut counts = Counts::default();
    let mut aggregator = shared.aggregator();
    // Stamped under the lock, so no event is stamped before a flush's cut
    // and taken after it: the watermark depends on it (flusher.rs).
    let now = now_secs();
    for (n, line) in lines {
        match aggregator.apply(line, now) {
            Ok(_) => counts.accepted(line),
            Err(refusal) => {
                counts.refused(line, refusal);
                refused(*n, refusal);
            }
        }
    }
    let accepted = counts.accepted as usize;
    counts.record(shared, &aggregator);
    accepted
}

/// Applies all of `lines` or none: on the first refusal, what the lines
/// before it changed is undone and every line counts as refused.
pub(crate) fn ingest_all(shared: &Shared, lines: &[MetricLine<'_>]) -> Result<(), Refusal> {
    let mut counts = Counts::default();
    let mut aggregator = shared.aggregator();
    // Under the lock: see `ingest_each`.
    let now = now_secs();
    // One line is taken whole or not at all by itself: no journal needed.
    let mut journal = (lines.len() > 1).then(Journal::default);
    let mut outcome = Ok(());
    for line in lines {
        if let Err(refusal) = aggregator.apply_logged(line, now, journal.as_mut()) {
            counts.refused(line, refusal);
            outcome = Err(refusal);
            break;
        }
    }
    match outcome {
        Ok(()) => lines.iter().for_each(|line| counts.accepted(line)),
        Err(_) => {
            if let Some(journal) = journal {
                aggregator.undo(journal);
            }
            counts.rejected = lines.len() as u64;
        }
    }
    counts.record(shared, &aggregator);
    outcome
}
