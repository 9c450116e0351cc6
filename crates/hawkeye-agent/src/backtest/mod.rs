//! `hawkeye backtest`: replays the data of a store through the agent's own
//! evaluation ([`Engine`]: the state machine, `for`, `keep_firing_for`,
//! recovery thresholds, groups, inhibition, maintenance windows) check by
//! check on a simulated clock, and reports every notification it would
//! have sent. Silences are off, nothing is written to the store and
//! nothing is sent (see `replay_store`). What it replays and how exact
//! it is: docs/backtest.md.
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn hawkeye_store::Store>, file: hawkeye_agent::MonitorsFile, settings: hawkeye_agent::EngineSettings) -> Result<(), hawkeye_agent::backtest::BacktestError> {
//! use hawkeye_agent::backtest::{backtest, BacktestOptions};
//! let now = hawkeye_agent::scheduler::wall_clock_ms();
//! let options = BacktestOptions::new(now - 2 * 86_400_000, now, settings);
//! let report = backtest(&file, store, &options).await?;
//! for n in &report.notifications {
//!     println!("{} {} level {} {}", n.slot_ms, n.monitor, n.level, n.notice.name());
//! }
//! # Ok(()) }
//! ```

mod notifications;
pub(crate) mod replay_store;

use std::sync::Arc;
use std::time::Duration;

use hawkeye_protocol::duration::format_duration_short;
use hawkeye_store::Store;

use crate::engine::{Engine, EngineSettings};
use crate::monitors::MonitorsFile;
use crate::scheduler::wall_clock_ms;
use crate::state::UnixMillis;
pub use notifications::BacktestNotification;
use replay_store::ReplayStore;

/// The default [`BacktestOptions::max_checks`].
pub const DEFAULT_MAX_CHECKS: u64 = 1_000_000;

/// The default [`BacktestOptions::max_lookback`]: `HAWKEYE_ROLLUP_RETENTION`'s
/// default, how long the store keeps data.
pub const DEFAULT_MAX_LOOKBACK: Duration = crate::agent_config::DEFAULT_ROLLUP_RETENTION;

/// What to replay.
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Unix ms: each monitor's first check is its slot that holds it.
    pub since_ms: UnixMillis,
    /// Unix ms: the last checks are those of the slots starting at or
    /// before it (and never a slot whose window the servers have not
    /// flushed yet, see [`BacktestReport::until_ms`]).
    pub until_ms: UnixMillis,
    /// Every monitor checks at this step instead of its interval (an
    /// approximation: docs/backtest.md); `None`: each at its own interval,
    /// at the slots the live agent checks.
    pub step: Option<Duration>,
    /// The most checks (monitors × slots) the replay may run.
    pub max_checks: u64,
    /// How far back `since_ms` may be (the store keeps nothing older).
    pub max_lookback: Duration,
    /// The agent's settings: its service, environment and evaluation delay
    /// give the same state keys, subjects and check times.
    pub settings: EngineSettings,
}

impl BacktestOptions {
    /// Each monitor at its own interval, with the default bounds.
    pub fn new(since_ms: UnixMillis, until_ms: UnixMillis, settings: EngineSettings) -> Self {
        BacktestOptions {
            since_ms,
            until_ms,
            step: None,
            max_checks: DEFAULT_MAX_CHECKS,
            max_lookback: DEFAULT_MAX_LOOKBACK,
            settings,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("the end ({until}) is not after the start ({since})")]
    EmptyRange { since: String, until: String },
    #[error(
        "the start ({since}) is {back} ago, more than the store keeps ({max}, HAWKEYE_ROLLUP_RETENTION)"
    )]
    TooFarBack {
        since: String,
        back: String,
        max: String,
    },
    #[error("the step ({0}) must be a whole number of seconds, at least 1s")]
    BadStep(String),
    #[error(
        "the backtest would run {checks} checks, more than the limit of {max}: replay a shorter time, check at a coarser step, or raise the limit"
    )]
    TooManyChecks { checks: u64, max: u64 },
    #[error(
        "the groups of group_by monitors took the backtest past the limit of {max} checks at {at}: replay a shorter time, check at a coarser step, or raise the limit"
    )]
    TooManyGroupChecks { max: u64, at: String },
    #[error("cannot read the store for the check of {at}: {error}")]
    Store { at: String, error: String },
}

/// What a backtest found.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestReport {
    pub since_ms: UnixMillis,
    /// The end replayed: the one asked for, or earlier when the servers
    /// had not flushed the windows after it yet.
    pub until_ms: UnixMillis,
    /// Checks run (a `group_by` monitor's groups each count).
    pub checks: u64,
    /// In time order (slot, then monitor, level and group).
    pub notifications: Vec<BacktestNotification>,
    /// The monitors (by name) whose window is shorter than `--step`: their
    /// checks read only part of the data.
    pub partial_windows: Vec<String>,
    /// Each monitor's name (its `id`, or its metric), in file order.
    pub monitors: Vec<String>,
}

/// Notifications of one monitor, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeCounts {
    pub firing: usize,
    pub repeat: usize,
    pub resolved: usize,
}

impl BacktestReport {
    /// Per monitor of the file, in file order: its name and its counts.
    pub fn per_monitor(&self) -> Vec<(String, NoticeCounts)> {
        let mut out: Vec<(String, NoticeCounts)> = self
            .monitors
            .iter()
            .map(|m| (m.clone(), NoticeCounts::default()))
            .collect();
        for n in &self.notifications {
            let Some((_, counts)) = n.monitor_index.and_then(|i| out.get_mut(i)) else {
                continue;
            };
            match n.notice {
                crate::state::Notice::Firing => counts.firing += 1,
                crate::state::Notice::Repeat => counts.repeat += 1,
                crate::state::Notice::Resolved => counts.resolved += 1,
            }
        }
        out
    }
}

fn when(ms: UnixMillis) -> String {
    crate::notification::rfc3339(ms)
}

/// Replays `data`'s metrics through `file`'s monitors, as `options` says.
pub async fn backtest(
    file: &MonitorsFile,
    data: Arc<dyn Store>,
    options: &BacktestOptions,
) -> Result<BacktestReport, BacktestError> {
    let since = options.since_ms;
    check_lookback(since, options.max_lookback)?;
    let delay = options.settings.evaluation_delay_ms;
    let until = flushed_until(&*data, options.until_ms, delay).await?;
    if until < since || options.until_ms <= since {
        return Err(BacktestError::EmptyRange {
            since: when(since),
            until: when(options.until_ms.min(until)),
        });
    }
    let file = match options.step {
        Some(step) => at_step(file, step)?,
        None => file.clone(),
    };
    let checks = count_checks(&file, since, until);
    if checks > options.max_checks {
        return Err(BacktestError::TooManyChecks {
            checks,
            max: options.max_checks,
        });
    }
    let store = Arc::new(ReplayStore::new(data));
    let engine = Engine::new(
        &file,
        store.clone(),
        options.settings.clone(),
        since + delay,
    );
    let (mut notifications, checks) = replay(&file, engine, &store, until, options).await?;
    notifications::sort(&mut notifications);
    Ok(BacktestReport {
        since_ms: since,
        until_ms: until,
        checks,
        notifications,
        partial_windows: partial_windows(&file, options.step),
        monitors: file.monitors.iter().map(notifications::name).collect(),
    })
}

/// Ticks `engine` at every check due up to the slot `until`: the
/// notifications, and the checks run.
async fn replay(
    file: &MonitorsFile,
    mut engine: Engine,
    store: &ReplayStore,
    until: UnixMillis,
    options: &BacktestOptions,
) -> Result<(Vec<BacktestNotification>, u64), BacktestError> {
    let delay = options.settings.evaluation_delay_ms;
    let mut out = Vec::new();
    while let Some(due) = engine
        .next_due()
        .filter(|d| d.saturating_sub(delay) <= until)
    {
        let report = engine.tick(due).await;
        let recorded = store.take();
        let slot = due.saturating_sub(delay);
        if report.store_error {
            return Err(BacktestError::Store {
                at: when(slot),
                error: recorded
                    .data_error
                    .unwrap_or_else(|| "the store failed".into()),
            });
        }
        if engine.stats().checks > options.max_checks {
            // Counted before the run, groups were not known yet.
            return Err(BacktestError::TooManyGroupChecks {
                max: options.max_checks,
                at: when(slot),
            });
        }
        // Only a stale group's notice names no monitor.
        let keys = if report.notified.iter().any(|n| n.monitor.is_none()) {
            engine.keys()
        } else {
            Vec::new()
        };
        out.extend(notifications::collect(
            file,
            &keys,
            report.notified,
            recorded,
            slot,
        ));
    }
    Ok((out, engine.stats().checks))
}

fn check_lookback(since: UnixMillis, max: Duration) -> Result<(), BacktestError> {
    let back = wall_clock_ms().saturating_sub(since);
    if u128::from(back) > max.as_millis() {
        return Err(BacktestError::TooFarBack {
            since: when(since),
            back: format_duration_short(Duration::from_millis(back)),
            max: format_duration_short(max),
        });
    }
    Ok(())
}

/// `until`, or the latest slot whose window is complete in the store if
/// earlier: the live agent checks a slot `s` at `s + delay` once every
/// server's watermark has reached the second before `s`.
async fn flushed_until(
    data: &dyn Store,
    until: UnixMillis,
    delay_ms: u64,
) -> Result<UnixMillis, BacktestError> {
    let now = wall_clock_ms();
    let mut last = until.min(now.saturating_sub(delay_ms));
    let watermark = data.watermark().await.map_err(|e| BacktestError::Store {
        at: when(until),
        error: e.to_string(),
    })?;
    if let Some(w) = watermark {
        let flushed = u64::try_from(w.second.saturating_add(1)).unwrap_or(0) * 1000;
        last = last.min(flushed);
    }
    Ok(last)
}

/// `file` with every monitor checking at `step`; `for` keeps its duration
/// (rounded up to whole checks).
fn at_step(file: &MonitorsFile, step: Duration) -> Result<MonitorsFile, BacktestError> {
    let step_ms = step.as_millis() as u64;
    if step_ms == 0 || !step_ms.is_multiple_of(1000) {
        return Err(BacktestError::BadStep(
            humantime::format_duration(step).to_string(),
        ));
    }
    let mut file = file.clone();
    for m in &mut file.monitors {
        let interval_ms = (m.interval.as_millis() as u64).max(1);
        for t in &mut m.triggers {
            let lasts = u64::from(t.for_checks) * interval_ms;
            t.for_checks = lasts.div_ceil(step_ms).clamp(1, u64::from(u32::MAX)) as u32;
        }
        m.interval = step;
    }
    Ok(file)
}

/// Checks from the slot holding `since` to the last slot at or before
/// `until`, over every monitor (groups not counted: unknown before reading).
pub fn count_checks(file: &MonitorsFile, since: UnixMillis, until: UnixMillis) -> u64 {
    file.monitors
        .iter()
        .map(|m| {
            let i = (m.interval.as_millis() as u64).max(1);
            (until / i + 1).saturating_sub(since / i)
        })
        .fold(0u64, u64::saturating_add)
}

/// The monitors (by name) whose checks are not whole minutes on minute
/// boundaries (their interval, or `step`, or their window is not a
/// multiple of 60 s): older than `HAWKEYE_RETENTION`, where the store
/// answers from per-minute rollups, their figures are approximate
/// (docs/backtest.md, "Older than HAWKEYE_RETENTION").
pub fn not_whole_minutes(file: &MonitorsFile, step: Option<Duration>) -> Vec<String> {
    file.monitors
        .iter()
        .filter(|m| {
            let every = step.unwrap_or(m.interval).as_millis();
            !every.is_multiple_of(60_000) || !m.window_secs().is_multiple_of(60)
        })
        .map(notifications::name)
        .collect()
}

fn partial_windows(file: &MonitorsFile, step: Option<Duration>) -> Vec<String> {
    let Some(step) = step else {
        return Vec::new();
    };
    file.monitors
        .iter()
        .filter(|m| m.window_secs() < step.as_secs())
        .map(notifications::name)
        .collect()
}
