//! The in-memory store: the same behaviour as Redis inside the process, for
//! applications that embed hawkeye and for the demo. Per-second aggregates
//! are kept for the retention, per-minute rollups for the rollup retention
//! ([`crate::tiers`]); older data is dropped as new data arrives.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hawkeye_protocol::MetricKind;

use crate::aggregate::Aggregate;
use crate::alerts::{AlertCommit, AlertRead, AlertSnapshot, OutboxEntry, Settle};
use crate::batch::WriteBatch;
use crate::error::StoreError;
use crate::grouped::{group_of, GroupValue, GroupedOutcome, GroupedQuery};
use crate::memory_alerts::Alerts;
use crate::staleness;
use crate::store::{Store, Watermark};
use crate::tiers::{self, wall_secs, DEFAULT_ROLLUP_RETENTION};
use crate::window::QueryOutcome;
use crate::window::{self, QueryError, SeriesWindow, WindowQuery};

/// A series of a name: its kind and canonical tags.
type SeriesId = (MetricKind, String);
/// One series' aggregates by second (or by minute, for rollups).
type Seconds = BTreeMap<i64, Aggregate>;
/// Per name: per series: its two tiers.
type Series = HashMap<SeriesId, Tiers>;

/// One series' data: per second for the retention, per minute (unix
/// seconds / 60) for the rollup retention.
#[derive(Default)]
struct Tiers {
    seconds: Seconds,
    minutes: Seconds,
}

impl Tiers {
    fn add(into: &mut Seconds, at: i64, agg: &Aggregate) {
        match into.get_mut(&at) {
            Some(existing) => existing.merge(agg),
            None => {
                into.insert(at, agg.clone());
            }
        }
    }

    /// Whether the series has data in `[start, end]` in either tier.
    fn any_in(&self, start: i64, end: i64) -> bool {
        self.seconds.range(start..=end).next().is_some()
            || self
                .minutes
                .range(start.div_euclid(60)..=end.div_euclid(60))
                .next()
                .is_some()
    }

    /// The aggregates `split` reads, oldest first (whole minutes come
    /// before the end edge's seconds).
    fn read(&self, split: tiers::Split) -> impl Iterator<Item = &Aggregate> {
        let minutes = split.minutes.map(|(a, b)| self.minutes.range(a..=b));
        let seconds = split.seconds.map(|(a, b)| self.seconds.range(a..=b));
        minutes
            .into_iter()
            .flatten()
            .chain(seconds.into_iter().flatten())
            .map(|(_, agg)| agg)
    }
}

pub struct MemoryStore {
    retention_secs: i64,
    rollup_secs: i64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    names: HashMap<String, Series>,
    alerts: Alerts,
    /// Per server id, the last flush applied: a batch is applied whole under
    /// the lock, so this is all it takes to make a retried flush a no-op.
    applied: HashMap<u64, u64>,
    /// Per server id, its watermark and until when it counts.
    watermarks: HashMap<u64, (i64, Instant)>,
}

impl MemoryStore {
    /// A store keeping per-second aggregates for `retention` and per-minute
    /// rollups for the default rollup retention (35 days, or `retention`
    /// if longer).
    pub fn new(retention: Duration) -> MemoryStore {
        MemoryStore::with_rollup_retention(retention, DEFAULT_ROLLUP_RETENTION.max(retention))
    }

    /// A store keeping per-second aggregates for `retention` and per-minute
    /// rollups for `rollup` (taken as `retention` when shorter: see
    /// [`crate::check_rollup_retention`] for the error a configuration gets).
    pub fn with_rollup_retention(retention: Duration, rollup: Duration) -> MemoryStore {
        let retention_secs = retention.as_secs().clamp(1, i64::MAX as u64 / 4) as i64;
        MemoryStore {
            retention_secs,
            rollup_secs: (rollup.as_secs().min(i64::MAX as u64 / 4) as i64).max(retention_secs),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The oldest second the per-second tier holds now.
    fn held_from(&self) -> i64 {
        tiers::seconds_held_from(wall_secs(), self.retention_secs as u64)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than losing the process; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryStore {
    /// Stores a state under a pre-versioning key, as an agent before
    /// versioned state keys did, so that an embedder can test migration.
    pub fn put_legacy_alert_state(&self, key: &str, state: &str) {
        self.lock().alerts.put_legacy(key, state);
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(Duration::from_secs(3600))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let now = wall_secs();
        let cutoff = now - self.retention_secs;
        let rollup_cutoff = (now - self.rollup_secs).div_euclid(60);
        let mut inner = self.lock();
        let last = inner.applied.entry(batch.server_id).or_default();
        if batch.seq != 0 && *last >= batch.seq {
            return Ok(());
        }
        *last = batch.seq;
        for write in &batch.series {
            let tiers = inner
                .names
                .entry(write.key.name.clone())
                .or_default()
                .entry((write.key.kind, write.key.tags.clone()))
                .or_default();
            for (second, agg) in &write.points {
                let minute = second.div_euclid(60);
                if minute < rollup_cutoff {
                    continue;
                }
                Tiers::add(&mut tiers.minutes, minute, agg);
                if *second >= cutoff {
                    Tiers::add(&mut tiers.seconds, *second, agg);
                }
            }
            for (tier, cutoff) in [
                (&mut tiers.seconds, cutoff),
                (&mut tiers.minutes, rollup_cutoff),
            ] {
                while tier.first_key_value().is_some_and(|(s, _)| *s < cutoff) {
                    tier.pop_first();
                }
            }
        }
        Ok(())
    }

    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        let held_from = self.held_from();
        let inner = self.lock();
        Ok(queries
            .iter()
            .map(|q| query_one(&inner, q, held_from))
            .collect())
    }

    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        Ok(self.lock().alerts.read(read))
    }

    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        Ok(self.lock().alerts.commit(commit))
    }

    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.lock().alerts.claim(now_ms, lease, max))
    }

    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        self.lock().alerts.settle(id, settle);
        Ok(())
    }

    async fn put_silence(
        &self,
        id: &str,
        silence: &str,
        ends_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.lock().alerts.put_silence(id, silence, ends_at_ms);
        Ok(())
    }

    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().alerts.expire_silence(id))
    }

    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().alerts.silences(now_ms))
    }

    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        Ok(self.lock().alerts.legacy(keys))
    }

    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        self.lock().alerts.delete_legacy(keys);
        Ok(())
    }

    async fn put_watermark(
        &self,
        server_id: u64,
        second: i64,
        live_for: Duration,
    ) -> Result<(), StoreError> {
        let until = Instant::now() + live_for;
        self.lock().watermarks.insert(server_id, (second, until));
        Ok(())
    }

    async fn remove_watermark(&self, server_id: u64) -> Result<(), StoreError> {
        self.lock().watermarks.remove(&server_id);
        Ok(())
    }

    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.watermarks.retain(|_, (_, until)| *until >= now);
        let servers = inner.watermarks.len();
        Ok(inner
            .watermarks
            .values()
            .map(|(second, _)| *second)
            .min()
            .map(|second| Watermark { second, servers }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        let held_from = self.held_from();
        let inner = self.lock();
        Ok(queries
            .iter()
            .map(|q| query_grouped(&inner, q, held_from))
            .collect())
    }

    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.lock().alerts.list(prefix))
    }

    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        self.lock().alerts.append_history(stream, entries, max_len);
        Ok(())
    }

    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        Ok(self.lock().alerts.history(stream, since_ms))
    }
}

/// The series a query reads: those of its kind (resolved as
/// [`window::resolve_kind`] does) whose tags match, with data in its range.
struct Selected<'a> {
    aggregation: window::Aggregation,
    /// What each tier answers.
    split: tiers::Split,
    series: Vec<(&'a str, &'a Tiers)>,
}

fn select<'a>(
    inner: &'a Inner,
    query: &WindowQuery,
    held_from: i64,
) -> Result<Option<Selected<'a>>, QueryError> {
    let Some(series) = inner.names.get(&query.name) else {
        return Ok(None);
    };
    let candidates = staleness::candidates_start(query);
    let matching: Vec<(&SeriesId, &Tiers)> = series
        .iter()
        .filter(|((kind, tags), tiers)| {
            query.kind.is_none_or(|k| k == *kind)
                && query.tags.matches(tags)
                && tiers.any_in(candidates, query.end)
        })
        .collect();
    let Some(kind) = window::resolve_kind(query, matching.iter().map(|((k, _), _)| *k))? else {
        return Ok(None);
    };
    let aggregation = window::aggregation_for(query, kind)?;
    let start = staleness::read_start(query, kind, aggregation);
    Ok(Some(Selected {
        aggregation,
        split: tiers::split(start, query.end, held_from),
        series: matching
            .into_iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, tags), seconds)| (tags.as_str(), seconds))
            .collect(),
    }))
}

impl Selected<'_> {
    fn value<'s>(
        &self,
        query: &WindowQuery,
        series: impl Iterator<Item = &'s Tiers>,
    ) -> Option<f64> {
        let windows = series.filter_map(|tiers| SeriesWindow::from_seconds(tiers.read(self.split)));
        window::evaluate(self.aggregation, query.window_secs, windows)
    }
}

fn query_one(inner: &Inner, query: &WindowQuery, held_from: i64) -> QueryOutcome {
    let Some(selected) = select(inner, query, held_from)? else {
        return Ok(None);
    };
    Ok(selected.value(query, selected.series.iter().map(|(_, s)| *s)))
}

fn query_grouped(inner: &Inner, grouped: &GroupedQuery, held_from: i64) -> GroupedOutcome {
    let query = &grouped.query;
    let Some(selected) = select(inner, query, held_from)? else {
        return Ok(Vec::new());
    };
    let mut groups: BTreeMap<Vec<String>, Vec<&Tiers>> = BTreeMap::new();
    for (tags, seconds) in &selected.series {
        groups
            .entry(group_of(tags, &grouped.group_by))
            .or_default()
            .push(*seconds);
    }
    Ok(groups
        .into_iter()
        .filter_map(|(values, series)| {
            let value = selected.value(query, series.into_iter())?;
            Some(GroupValue { values, value })
        })
        .collect())
}
