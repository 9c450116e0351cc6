//! Taking parsed metric lines into the aggregator, for both sockets.

use std::sync::atomic::Ordering::Relaxed;

use hawkeye_protocol::{LineError, MetricLine};

use crate::aggregator::Refusal;
use crate::shared::{now_secs, Shared};
use crate::stats::Stats;

/// Why one line was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    #[error(transparent)]
    Line(#[from] LineError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

#[derive(Debug, Default)]
pub(crate) struct Ingested {
    pub accepted: usize,
    /// (index of the line in the request, why).
    pub rejected: Vec<(usize, Rejection)>,
}

impl Shared {
    /// Applies lines under one lock. Parsing happens before, outside it.
    pub fn ingest<'a>(
        &self,
        lines: impl IntoIterator<Item = (usize, Result<MetricLine<'a>, LineError>)>,
    ) -> Ingested {
        let mut parsed = Vec::new();
        let mut result = Ingested::default();
        for (i, line) in lines {
            match line {
                Ok(l) => parsed.push((i, l)),
                Err(e) => result.rejected.push((i, e.into())),
            }
        }
        let now = now_secs();
        let mut dropped = 0u64;
        if !parsed.is_empty() {
            let mut aggregator = self.aggregator();
            for (i, line) in &parsed {
                match aggregator.apply(line, now) {
                    Ok(_) => result.accepted += 1,
                    Err(refusal) => {
                        if matches!(refusal, Refusal::BufferFull(_)) {
                            dropped += line.values.len() as u64;
                        }
                        result.rejected.push((*i, refusal.into()));
                    }
                }
            }
            self.stats
                .series
                .store(aggregator.series_count() as u64, Relaxed);
            self.stats
                .buffered
                .store(aggregator.buffered() as u64, Relaxed);
        }
        result.rejected.sort_by_key(|(i, _)| *i);
        Stats::add(&self.stats.lines_accepted, result.accepted as u64);
        Stats::add(&self.stats.lines_rejected, result.rejected.len() as u64);
        Stats::add(&self.stats.dropped, dropped);
        result
    }
}
