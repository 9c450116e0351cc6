//! `hawkeye backtest`: replays the data in the store the agents read
//! through a monitors file and prints the notifications the agent would
//! have sent (docs/backtest.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use clap::Args;
use hawkeye_agent::backtest::{
    backtest, not_whole_minutes, BacktestNotification, BacktestOptions, BacktestReport,
    DEFAULT_MAX_CHECKS,
};
use hawkeye_agent::notification::{describe_group, rfc3339};
use hawkeye_agent::scheduler::wall_clock_ms;
use hawkeye_agent::{AgentConfig, MonitorsFile};
use hawkeye_env::Env;
use hawkeye_protocol::{parse_duration, PlainUnit};
use serde_json::json;

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The monitors file.
    #[arg(env = "MONITOR_CONFIG_FILE", default_value = "monitors.yaml")]
    pub file: PathBuf,
    /// Where to start: a time ago (`2d`, `6h`, `30m`; a plain number is
    /// seconds) or an RFC 3339 time (`2026-11-30T08:00:00Z`). At most
    /// HAWKEYE_ROLLUP_RETENTION (default 35d) ago.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Where to end, in the same forms; default: now (less what the
    /// servers have not flushed yet).
    #[arg(long)]
    pub until: Option<String>,
    /// Check every monitor at this step instead of its own interval
    /// (`1m`): faster over long periods, but an approximation.
    #[arg(long)]
    pub step: Option<String>,
    /// The most checks (monitors × slots) to run.
    #[arg(long, default_value_t = DEFAULT_MAX_CHECKS)]
    pub max_checks: u64,
    /// One JSON object per line: each notification, then the summary.
    #[arg(long)]
    pub json: bool,
}

/// A time given as a duration ago or an RFC 3339 time, in unix ms.
fn parse_time(flag: &str, text: &str, now: u64) -> anyhow::Result<u64> {
    if let Ok(ago) = parse_duration(text, PlainUnit::Seconds) {
        let ago = ago.as_millis().min(u128::from(now)) as u64;
        return Ok(now - ago);
    }
    let at = humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
        anyhow::anyhow!(
            "{flag}: {text:?} is neither a time ago (2d, 6h, 30m) nor a time (2026-11-30T08:00:00Z)"
        )
    })?;
    let ms = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| anyhow::anyhow!("{flag}: {text:?} is before 1970"))?
        .as_millis();
    Ok(ms.min(u128::from(u64::MAX)) as u64)
}

/// The options from the arguments and the agent's environment.
fn options(args: &BacktestArgs, config: &AgentConfig) -> anyhow::Result<BacktestOptions> {
    let now = wall_clock_ms();
    let since = parse_time("--since", &args.since, now)?;
    let until = match &args.until {
        Some(t) => parse_time("--until", t, now)?,
        None => now,
    };
    let step = match &args.step {
        Some(s) => Some(
            parse_duration(s, PlainUnit::Seconds).map_err(|e| anyhow::anyhow!("--step: {e}"))?,
        ),
        None => None,
    };
    let mut options = BacktestOptions::new(since, until, config.engine_settings());
    options.step = step;
    options.max_checks = args.max_checks;
    options.max_lookback = config.rollup_retention;
    Ok(options)
}

pub async fn run(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let env = Env::process();
    let config = AgentConfig::from_reader(&env)?;
    let file = match hawkeye_agent::load_monitors(&args.file, config.retention_limits()) {
        Ok(file) => file,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let options = options(&args, &config)?;
    if config.redis_url.trim() == hawkeye_store::MEMORY_URL {
        anyhow::bail!("REDIS_URL: the backtest reads the data the servers stored; the in-memory store lives inside each server's process");
    }
    let store = crate::silence::store().await?;
    let report = backtest(&file, store, &options).await.context("backtest")?;
    if args.until.is_some() && report.until_ms < options.until_ms {
        eprintln!(
            "note: replayed up to {}, the last slot the servers have flushed",
            rfc3339(report.until_ms)
        );
    }
    if !report.partial_windows.is_empty() {
        eprintln!(
            "note: with --step {}, the windows of {} are shorter than the step: their checks read only part of the data",
            args.step.as_deref().unwrap_or_default(),
            report.partial_windows.join(", ")
        );
    }
    rollup_note(&file, &options, &config);
    if args.json {
        print_json(&report);
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Says when checks older than the per-second retention read windows the
/// per-minute rollups cannot answer exactly.
fn rollup_note(file: &MonitorsFile, options: &BacktestOptions, config: &AgentConfig) {
    let held_from = wall_clock_ms().saturating_sub(config.retention.as_millis() as u64);
    if options.since_ms >= held_from {
        return;
    }
    let monitors = not_whole_minutes(file, options.step);
    if !monitors.is_empty() {
        eprintln!(
            "note: checks before {} read per-minute rollups (older than HAWKEYE_RETENTION); the checks of {} are not whole minutes, so their figures there are approximate (docs/backtest.md)",
            rfc3339(held_from),
            monitors.join(", ")
        );
    }
}

fn print_json(report: &BacktestReport) {
    for n in &report.notifications {
        println!("{}", n.to_json());
    }
    let monitors: Vec<serde_json::Value> = report
        .per_monitor()
        .into_iter()
        .map(|(monitor, c)| {
            json!({"monitor": monitor, "firing": c.firing, "repeat": c.repeat, "resolved": c.resolved})
        })
        .collect();
    let summary = json!({
        "type": "summary",
        "since": rfc3339(report.since_ms),
        "until": rfc3339(report.until_ms),
        "checks": report.checks,
        "notifications": report.notifications.len(),
        "monitors": monitors,
    });
    println!("{summary}");
}

/// Who a notification goes to, for the text output.
fn recipients(n: &BacktestNotification) -> String {
    let all: Vec<String> = [&n.to, &n.cc, &n.bcc, &n.webhooks]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if all.is_empty() {
        "- (notifier: log)".into()
    } else {
        all.join(", ")
    }
}

fn row(n: &BacktestNotification) -> Vec<String> {
    let level = match &n.trigger {
        Some(id) => format!("{} ({id})", n.level),
        None => n.level.to_string(),
    };
    let group = if n.group.is_empty() {
        "-".to_string()
    } else {
        describe_group(&n.group)
    };
    let value = n.value.map_or("-".to_string(), |v| v.to_string());
    vec![
        rfc3339(n.slot_ms),
        n.monitor.clone(),
        level,
        group,
        n.notice.name().to_string(),
        value,
        recipients(n),
    ]
}

fn print_text(report: &BacktestReport) {
    if report.notifications.is_empty() {
        println!("no notifications");
    } else {
        let columns = ["SLOT", "MONITOR", "LEVEL", "GROUP", "NOTICE", "VALUE", "TO"];
        crate::table::print(&columns, report.notifications.iter().map(row).collect());
    }
    println!();
    println!(
        "{} to {}: {} checks, {} notifications (silences off, nothing sent)",
        rfc3339(report.since_ms),
        rfc3339(report.until_ms),
        report.checks,
        report.notifications.len()
    );
    let rows = report
        .per_monitor()
        .into_iter()
        .map(|(m, c)| {
            vec![
                m,
                c.firing.to_string(),
                c.repeat.to_string(),
                c.resolved.to_string(),
            ]
        })
        .collect();
    crate::table::print(&["MONITOR", "FIRING", "REPEAT", "RESOLVED"], rows);
}
