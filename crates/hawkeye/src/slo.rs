//! `hawkeye slo`: each SLO of the monitors file, read from the store the
//! agents use: objective, period, SLI and error budget over the period, and
//! every burn-rate trigger's current burn over its two windows
//! (docs/alerts.md, "SLO burn-rate alerts").

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use hawkeye_agent::engine::slo::window_pair;
use hawkeye_agent::error_budget::{BurnCheck, Counts, Exhaustion};
use hawkeye_agent::{Monitor, Slo};
use hawkeye_env::Env;
use hawkeye_protocol::format_duration;
use hawkeye_store::{QueryOutcome, WindowQuery};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct SloArgs {
    /// The monitors file the agents run.
    #[arg(long, env = "MONITOR_CONFIG_FILE", default_value = "monitors.yaml")]
    pub file: std::path::PathBuf,
    /// Print JSON (one array, an object per SLO).
    #[arg(long)]
    pub json: bool,
}

/// One burn-rate trigger's windows, now.
#[derive(Serialize)]
struct TriggerRow {
    level: usize,
    burn_rate: f64,
    long_window: String,
    short_window: String,
    long_burn: f64,
    short_burn: f64,
    /// Both windows at or over the burn rate.
    breaching: bool,
}

/// One SLO, now.
#[derive(Serialize)]
struct SloRow {
    /// The monitor's `id`, else its metric.
    monitor: String,
    metric: String,
    ratio_of: String,
    objective: f64,
    period: String,
    /// Good events over the period, percent; `null` without events.
    sli: Option<f64>,
    bad: f64,
    all: f64,
    budget_consumed: f64,
    budget_remaining: f64,
    /// At the burn rate of the shortest long window.
    budget_exhausted_in: String,
    triggers: Vec<TriggerRow>,
}

/// The monitors with an SLO, and their queries: per monitor, the period
/// pair then each trigger's long and short pairs, ending with `end`.
fn queries(monitors: &[(&Monitor, Slo)], end: i64) -> Vec<WindowQuery> {
    let mut out = Vec::new();
    for (m, slo) in monitors {
        out.extend(window_pair(m, slo.period.as_secs(), end));
        for b in m.triggers.iter().filter_map(|t| t.burn) {
            out.extend(window_pair(m, b.long.as_secs(), end));
            out.extend(window_pair(m, b.short.as_secs(), end));
        }
    }
    out
}

/// The counts of the pair at `at` (advanced past it).
fn next_counts(outcomes: &[QueryOutcome], at: &mut usize) -> anyhow::Result<Counts> {
    let (bad, all) = (&outcomes[*at], &outcomes[*at + 1]);
    *at += 2;
    match (bad, all) {
        (Ok(bad), Ok(all)) => Ok(Counts::read(*bad, *all)),
        (Err(e), _) | (_, Err(e)) => Err(anyhow::anyhow!("cannot read a window: {e}")),
    }
}

fn row(m: &Monitor, slo: Slo, outcomes: &[QueryOutcome], at: &mut usize) -> anyhow::Result<SloRow> {
    let period = next_counts(outcomes, at)?;
    let mut checks = Vec::new();
    let mut triggers = Vec::new();
    for (j, t) in m.triggers.iter().enumerate() {
        let Some(b) = t.burn else { continue };
        let long = next_counts(outcomes, at)?;
        let short = next_counts(outcomes, at)?;
        let check = BurnCheck {
            slo,
            long_window: b.long,
            short_window: b.short,
            long,
            short,
            period,
        };
        triggers.push(TriggerRow {
            level: j + 1,
            burn_rate: t.threshold,
            long_window: format_duration(b.long),
            short_window: format_duration(b.short),
            long_burn: check.long_burn(),
            short_burn: check.short_burn(),
            breaching: check.breaches(t.threshold),
        });
        checks.push(check);
    }
    let budget = hawkeye_agent::error_budget::Budget::of(period, &slo);
    // The most current rate: the shortest long window's.
    let exhaustion = match checks.iter().min_by_key(|c| c.long_window) {
        Some(c) => match c.exhaustion() {
            Exhaustion::In(_) => format!(
                "{} at the {} burn rate",
                c.exhaustion(),
                format_duration(c.long_window)
            ),
            other => other.to_string(),
        },
        None => budget.exhaustion(0.0, slo.period).to_string(),
    };
    Ok(SloRow {
        monitor: m.id.clone().unwrap_or_else(|| m.metric.clone()),
        metric: m.metric.clone(),
        ratio_of: m.ratio_of.clone().unwrap_or_default(),
        objective: slo.objective,
        period: format_duration(slo.period),
        sli: budget.sli,
        bad: period.bad,
        all: period.all,
        budget_consumed: budget.consumed,
        budget_remaining: budget.remaining,
        budget_exhausted_in: exhaustion,
        triggers,
    })
}

/// A number as the mail shows it (`30`, `54.455`).
fn n(v: f64) -> String {
    hawkeye_agent::template::number(Some(v)).to_string()
}

fn print(rows: &[SloRow]) {
    if rows.is_empty() {
        println!("no SLO monitors");
    }
    for r in rows {
        let sli = r
            .sli
            .map(|s| format!("{}%", n(s)))
            .unwrap_or_else(|| "no events".to_string());
        println!(
            "{}: objective {}% over {}, SLI {sli} ({} bad of {}), budget {}% consumed, {}% remaining, {}",
            r.monitor,
            n(r.objective),
            r.period,
            n(r.bad),
            n(r.all),
            n(r.budget_consumed),
            n(r.budget_remaining),
            r.budget_exhausted_in
        );
        for t in &r.triggers {
            println!(
                "  level {}  >= {}x  {}x over {}, {}x over {}{}",
                t.level,
                n(t.burn_rate),
                n(t.long_burn),
                t.long_window,
                n(t.short_burn),
                t.short_window,
                if t.breaching { "  BURNING" } else { "" }
            );
        }
    }
}

pub async fn run(args: SloArgs) -> anyhow::Result<ExitCode> {
    let env = Env::process();
    let retention = hawkeye_agent::retention_from_env(&env)?;
    let file =
        hawkeye_agent::load_monitors(&args.file, retention).map_err(|e| anyhow::anyhow!("{e}"))?;
    let monitors: Vec<(&Monitor, Slo)> = file
        .monitors
        .iter()
        .filter_map(|m| Some((m, m.slo?)))
        .collect();
    if env.string_or("REDIS_URL", "").trim() == hawkeye_store::MEMORY_URL {
        anyhow::bail!("hawkeye slo reads the store the agents and servers share (REDIS_URL); the in-memory store is inside their processes");
    }
    let store = crate::silence::store().await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    // The last whole second, as the agent's checks end.
    let end = now.as_secs() as i64 - 1;
    let outcomes = store
        .query_many(&queries(&monitors, end))
        .await
        .context("cannot read the store")?;
    let mut at = 0;
    let rows = monitors
        .iter()
        .map(|(m, slo)| row(m, *slo, &outcomes, &mut at))
        .collect::<anyhow::Result<Vec<SloRow>>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print(&rows);
    }
    Ok(ExitCode::SUCCESS)
}
