//! The one task that runs every monitor: it sleeps until the next monitor
//! falls due, waits for the servers to have flushed what it reads (their
//! watermark, bounded: `flush_wait`), runs a tick of the [`Engine`] for all
//! monitors due then, and
//! listens for reloads and shutdown in between. One task whatever the number
//! of monitors or triggers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::engine::{Engine, EngineStats};
use crate::flush_wait::FlushWait;
use crate::monitors::MonitorsFile;
use crate::state::UnixMillis;

/// Longest sleep when no monitor is configured (a reload wakes it anyway).
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

pub(crate) enum Control {
    Reload(Box<MonitorsFile>),
    Shutdown,
}

pub fn wall_clock_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) async fn run(
    mut engine: Engine,
    mut flush_wait: FlushWait,
    mut control: mpsc::UnboundedReceiver<Control>,
    stats: Arc<Mutex<EngineStats>>,
) {
    let mut lagging = false;
    loop {
        let now = wall_clock_ms();
        if engine.next_due().is_some_and(|due| due <= now) {
            // The checks due read windows the servers may still be
            // flushing: wait for their watermark (bounded). The tick then
            // plans with `now`, so it checks the slots waited for.
            tokio::select! {
                _ = flush_wait.wait(now) => {}
                msg = control.recv() => {
                    if !apply(&mut engine, msg) {
                        break;
                    }
                    continue;
                }
            }
        }
        let report = engine.tick(now).await;
        if let Ok(mut s) = stats.lock() {
            *s = engine.stats();
        }
        if report.monitors > 0 {
            tracing::debug!(
                monitors = report.monitors,
                queries = report.queries,
                store_calls = report.store_calls,
                transitions = report.transitions,
                "tick"
            );
        }
        let after = wall_clock_ms();
        let sleep = match engine.next_due() {
            Some(due) => {
                // A tick that ends after the next slot began means the agent
                // cannot keep up; it skips to the current slot rather than
                // queueing up checks, and says so once.
                let behind = after > due && after - due > 1000;
                if behind && !lagging {
                    tracing::warn!(
                        tick_ms = after.saturating_sub(now),
                        "evaluation takes longer than the interval; checks are being skipped"
                    );
                }
                lagging = behind;
                Duration::from_millis(due.saturating_sub(after))
            }
            None => IDLE_SLEEP,
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            msg = control.recv() => {
                if !apply(&mut engine, msg) {
                    break;
                }
            }
        }
    }
}

/// Applies a control message; false when the task must stop.
fn apply(engine: &mut Engine, msg: Option<Control>) -> bool {
    match msg {
        Some(Control::Reload(file)) => {
            engine.reload(&file, wall_clock_ms());
            tracing::info!(monitors = file.monitors.len(), "monitors reloaded");
            true
        }
        Some(Control::Shutdown) | None => false,
    }
}
