//! `hawkeye silence add|list|expire`: silences kept in the store, so every
//! agent on it honours them (`docs/alerts.md`, "Silences").

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hawkeye_agent::Silence;
use hawkeye_env::Env;
use hawkeye_protocol::{parse_duration, PlainUnit};
use hawkeye_store::Store;

#[derive(Debug, Args)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub command: SilenceCommand,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the monitors of a metric (optionally only those filtering on
    /// these tags, or one monitor by its id); prints the silence's id.
    Add(AddArgs),
    /// Show the silences running now.
    List(ListArgs),
    /// End a silence now.
    Expire(ExpireArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The metric whose monitors are silenced.
    #[arg(long)]
    pub metric: String,
    /// Only monitors whose tag filter has this tag (`key=value`, repeatable).
    #[arg(long = "tag", short = 't', value_parser = crate::query_args::parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Only the monitor with this `id`.
    #[arg(long)]
    pub monitor: Option<String>,
    /// How long: `30m`, `2h`, `1d` (a plain number is seconds).
    #[arg(long = "for", value_parser = parse_positive_duration)]
    pub duration: Duration,
    /// Why (shown by `list`).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The id `add` printed.
    pub id: String,
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s, PlainUnit::Seconds).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The store the agents use: `REDIS_URL`, `HAWKEYE_KEY_PREFIX`.
/// The store the agents share (`REDIS_URL`), for silences and alert states.
pub(crate) async fn store() -> anyhow::Result<Arc<dyn Store>> {
    let env = Env::process();
    let url = env.string_or("REDIS_URL", "redis://127.0.0.1:6379");
    if url.trim() == hawkeye_store::MEMORY_URL {
        bail!("silences and alert states live in the store the agents share (REDIS_URL); the in-memory store is inside each agent's process");
    }
    let prefix = env.string_or("HAWKEYE_KEY_PREFIX", "hawkeye");
    let retention = env.duration("HAWKEYE_RETENTION", Duration::from_secs(3600))?;
    Ok(hawkeye_store::open_with_env(&url, &prefix, retention).await?)
}

pub async fn run(args: SilenceArgs) -> anyhow::Result<ExitCode> {
    let store = store().await?;
    match args.command {
        SilenceCommand::Add(a) => {
            hawkeye_protocol::line::check_name(&a.metric)
                .map_err(|e| anyhow::anyhow!("--metric: {e}"))?;
            if a.reason.trim().is_empty() {
                bail!("--reason: say why (it is shown to whoever lists the silences)");
            }
            let tags: BTreeMap<String, String> = a.tags.into_iter().collect();
            let duration_ms = a.duration.as_millis().min(u64::MAX as u128) as u64;
            let s = Silence::new(
                &a.metric,
                tags,
                a.monitor,
                a.reason.trim(),
                now_ms(),
                duration_ms,
            )
            .map_err(|e| anyhow::anyhow!("--for: {e}"))?;
            store
                .put_silence(&s.id, &s.to_json(), s.ends_at)
                .await
                .context("cannot store the silence")?;
            println!("{}", s.id);
        }
        SilenceCommand::List(l) => list(&*store, l.json).await?,
        SilenceCommand::Expire(e) => {
            if !store
                .expire_silence(&e.id)
                .await
                .context("cannot expire the silence")?
            {
                eprintln!("no running silence {}", e.id);
                return Ok(ExitCode::FAILURE);
            }
            println!("expired {}", e.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let raw = store
        .silences(now_ms())
        .await
        .context("cannot read the silences")?;
    let (silences, bad) = hawkeye_agent::silence::parse_all(&raw);
    for b in bad {
        eprintln!("unreadable silence: {b}");
    }
    if json {
        for s in silences {
            println!("{}", s.to_json());
        }
        return Ok(());
    }
    if silences.is_empty() {
        println!("no silences");
        return Ok(());
    }
    println!(
        "{:<16}  {:<20}  {:<24}  {:<20}  reason",
        "id", "ends", "metric", "tags / monitor"
    );
    for s in silences {
        // Clamped: a silence stored by hand may end after the year 9999.
        let ends = hawkeye_agent::notification::rfc3339(s.ends_at);
        let mut matchers: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(m) = &s.monitor {
            matchers.push(format!("monitor={m}"));
        }
        println!(
            "{:<16}  {:<20}  {:<24}  {:<20}  {}",
            s.id,
            ends,
            s.metric,
            matchers.join(","),
            s.reason
        );
    }
    Ok(())
}
