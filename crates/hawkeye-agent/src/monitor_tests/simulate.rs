//! Runs one test case through the real evaluation: the [`Engine`] on a
//! fresh in-memory store, ticked check by check on a simulated clock (no
//! sleeping, no wall clock), recording after every tick which alerts fire,
//! which the tick resolved and the subjects of the mail it sent.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::{
    Aggregate, AlertRead, DistributionStats, GaugeStats, MemoryStore, SeriesWrite, Store,
    StoreError, WriteBatch,
};

use super::alert_line::AlertLine;
use crate::engine::{Engine, EngineSettings};
use crate::monitors::MonitorsFile;
use crate::state::{AlertState, Status, UnixMillis};

/// Where the simulated clock starts: Monday 2024-01-01 00:00:00 UTC, so
/// that maintenance windows and templates showing dates give the same
/// result at every run.
pub const ORIGIN_MS: UnixMillis = 1_704_067_200_000;

/// The memory store drops data older than its retention by the wall
/// clock; the simulated times are in the past, so it keeps a century.
const KEEP_EVERYTHING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One input series, expanded: a value per step.
pub struct Input {
    pub key: SeriesKey,
    pub values: Vec<Option<f64>>,
}

/// What one tick left behind, at `at_ms` after the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moment {
    pub at_ms: u64,
    /// Alerts FIRING after the tick.
    pub firing: BTreeSet<AlertLine>,
    /// Alerts FIRING before the tick and not after it.
    pub resolved: BTreeSet<AlertLine>,
    /// Subjects of the notices the tick recorded.
    pub mails: Vec<String>,
}

/// Runs the checks from the start up to `until_ms` after it, with `step_ms`
/// between two values of each input. `labels` names each monitor.
pub async fn simulate(
    file: &MonitorsFile,
    labels: &[String],
    settings: EngineSettings,
    inputs: &[Input],
    step_ms: u64,
    until_ms: u64,
) -> Result<Vec<Moment>, StoreError> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(KEEP_EVERYTHING));
    write_inputs(&*store, inputs, step_ms).await?;
    let ttl = settings.state_ttl;
    let mut engine = Engine::new(file, store.clone(), settings, ORIGIN_MS);
    let mut moments = Vec::new();
    let mut firing = BTreeSet::new();
    while let Some(due) = engine.next_due().filter(|d| *d <= ORIGIN_MS + until_ms) {
        let report = engine.tick(due).await;
        if report.store_error {
            return Err(StoreError::Unavailable("the in-memory store failed".into()));
        }
        // Groups come and go: the keys of this tick.
        let keys: Vec<(String, AlertLine)> = engine
            .alert_keys()
            .into_iter()
            .map(|k| {
                let group = k.group.into_iter().collect();
                (k.key, AlertLine::firing(&labels[k.monitor], group, k.level))
            })
            .collect();
        let read = AlertRead {
            keys: keys.iter().map(|(k, _)| k.clone()).collect(),
            marker: "hawkeye-test".into(),
            marker_ttl: ttl,
            now_ms: due,
        };
        let snapshot = store.read_alerts(&read).await?;
        let now: BTreeSet<AlertLine> = keys
            .iter()
            .zip(&snapshot.states)
            .filter(|(_, state)| is_firing(state.as_deref()))
            .map(|((_, line), _)| line.clone())
            .collect();
        let resolved = firing.difference(&now).map(AlertLine::resolved).collect();
        moments.push(Moment {
            at_ms: due - ORIGIN_MS,
            firing: now.clone(),
            resolved,
            mails: report.notified.into_iter().map(|n| n.subject).collect(),
        });
        firing = now;
    }
    Ok(moments)
}

fn is_firing(state: Option<&str>) -> bool {
    state
        .and_then(|s| AlertState::from_json(s).ok())
        .is_some_and(|s| s.status == Status::Firing)
}

/// Writes every value of every input, step `i` at the second `i · step`
/// after the start, as the server would have flushed it.
async fn write_inputs(store: &dyn Store, inputs: &[Input], step_ms: u64) -> Result<(), StoreError> {
    let start = (ORIGIN_MS / 1000) as i64;
    let step = (step_ms / 1000) as i64;
    let series = inputs
        .iter()
        .map(|input| SeriesWrite {
            key: Arc::new(input.key.clone()),
            points: input
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    Some((start + i as i64 * step, aggregate(input.key.kind, (*v)?)))
                })
                .collect(),
        })
        .collect();
    let batch = WriteBatch {
        server_id: 1,
        seq: 1,
        series,
    };
    store.write(&batch).await
}

/// One step's value as the server would aggregate it: a counter's
/// increments, a gauge's value, one timing, or a set of that many members
/// (the same members every step, so a window's unique count is its largest
/// value).
fn aggregate(kind: MetricKind, v: f64) -> Aggregate {
    match kind {
        MetricKind::Counter => Aggregate::Counter(v),
        MetricKind::Gauge => Aggregate::Gauge(GaugeStats::new(v)),
        MetricKind::Distribution => {
            let mut d = DistributionStats::default();
            d.observe(v, 1.0);
            Aggregate::Distribution(Box::new(d))
        }
        MetricKind::Set => {
            let members = (0..v.max(0.0) as u64).map(|m| m.to_string()).collect();
            Aggregate::Set(Box::new(members))
        }
    }
}
