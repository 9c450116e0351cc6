//! `/metrics`: the agent's own counters in the Prometheus text format
//! (version 0.0.4), written by hand: a few dozen lines of fixed names need
//! no encoder. Names and meanings: docs/status-page.md ("/metrics").

use std::fmt::Write;

use hawkeye_mail::QueueStats;

use super::alerts::AlertRow;
use super::source::StatusSource;
use crate::engine::EngineStats;
use crate::monitors::MonitorsFile;

pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The states a trigger can be in, as `hawkeye_agent_alerts{state=...}`.
const STATES: [&str; 5] = ["ok", "pending", "firing", "silenced", "unreadable"];

type Counters = (EngineStats, QueueStats);
/// A counter: its name (without `hawkeye_agent_` and `_total`), its help,
/// and where its value is.
type Counter = (&'static str, &'static str, fn(&Counters) -> u64);

const COUNTERS: [Counter; 16] = [
    ("ticks", "Evaluation ticks run.", |c| c.0.ticks),
    (
        "checks",
        "Monitor checks (evaluations), one per monitor due per tick.",
        |c| c.0.checks,
    ),
    (
        "store_calls",
        "Calls to the store (one round trip or pipelined batch each).",
        |c| c.0.store_calls,
    ),
    ("store_errors", "Calls to the store that failed.", |c| {
        c.0.store_errors
    }),
    ("transitions", "Alert state changes written.", |c| {
        c.0.transitions
    }),
    (
        "swaps_lost",
        "State changes another agent sharing the store wrote first.",
        |c| c.0.swaps_lost,
    ),
    ("notices", "Alerts recorded in the outbox or logged.", |c| {
        c.0.notices
    }),
    (
        "muted",
        "Notices held back by a silence, a maintenance window or inhibition.",
        |c| c.0.muted,
    ),
    (
        "data_losses",
        "Times the store was found to have lost its data.",
        |c| c.0.data_losses,
    ),
    (
        "groups_dropped",
        "Groups left out of a check at max_groups.",
        |c| c.0.groups_dropped,
    ),
    (
        "mail_claimed",
        "Outbox entries this agent took to send (retries included).",
        |c| c.1.queued,
    ),
    (
        "mail_sent",
        "Mails the mailer accepted and webhook posts their receiver accepted.",
        |c| c.1.sent,
    ),
    (
        "mail_retries",
        "Failed mail attempts that will be retried.",
        |c| c.1.retries,
    ),
    (
        "mail_dropped",
        "Mails given up (max age reached, or refused).",
        |c| c.1.dropped,
    ),
    (
        "mail_expired",
        "Of mail_dropped: given up after MAIL_MAX_AGE of retrying.",
        |c| c.1.expired,
    ),
    (
        "mail_failed",
        "Mails given up because the error was permanent.",
        |c| c.1.failed,
    ),
];

pub(super) fn render(
    source: &StatusSource,
    file: &MonitorsFile,
    rows: Option<&[AlertRow]>,
) -> String {
    let counters: Counters = (
        *source.engine.lock().unwrap_or_else(|e| e.into_inner()),
        *source.mail.lock().unwrap_or_else(|e| e.into_inner()),
    );
    let mut out = String::new();
    for (name, help, value) in COUNTERS {
        let value = value(&counters);
        let name = format!("hawkeye_agent_{name}_total");
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let triggers: usize = file.monitors.iter().map(|m| m.triggers.len()).sum();
    for (name, help, value) in [
        ("monitors", "Monitors the agent runs.", file.monitors.len()),
        ("triggers", "Triggers of those monitors.", triggers),
    ] {
        let name = format!("hawkeye_agent_{name}");
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    if let Some(rows) = rows {
        let name = "hawkeye_agent_alerts";
        let _ = writeln!(
            out,
            "# HELP {name} Stored alert states (one per trigger and group) by state.\n# TYPE {name} gauge"
        );
        for state in STATES {
            let n = rows.iter().filter(|r| r.status == state).count();
            let _ = writeln!(out, "{name}{{state=\"{state}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP hawkeye_agent_store_up Whether the store answered this scrape's read.\n# TYPE hawkeye_agent_store_up gauge\nhawkeye_agent_store_up {}",
        u8::from(rows.is_some())
    );
    out
}
