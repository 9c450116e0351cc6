//! `hawkeye alerts`: every trigger's state as the agents left it in the
//! store (ok, pending, firing, silenced) with its value, threshold, group,
//! since and last mail; `--history`: the transitions recorded by the agents
//! (docs/alerts.md, "What fires and what fired").

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use hawkeye_agent::http::alert_rows;
use hawkeye_agent::notification::{describe_group, rfc3339};
use hawkeye_agent::state_key::{self, KeyIndex};
use hawkeye_env::Env;
use hawkeye_protocol::{parse_duration, PlainUnit};
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Print JSON (one array).
    #[arg(long)]
    pub json: bool,
    /// The transitions instead of the states.
    #[arg(long)]
    pub history: bool,
    /// With --history: how far back (`24h`, `30m`; a plain number is seconds).
    #[arg(long, default_value = "24h", requires = "history")]
    pub since: String,
    /// The monitors file the agents run (to name monitors and thresholds).
    #[arg(long, env = "MONITOR_CONFIG_FILE", default_value = "monitors.yaml")]
    pub file: std::path::PathBuf,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub async fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let env = Env::process();
    let service = env.string_or("SERVICE_NAME", "hawkeye");
    let environment = env.string_or("ENVIRONMENT", "dev");
    let store = crate::silence::store().await?;
    if args.history {
        let since = parse_duration(&args.since, PlainUnit::Seconds)
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
        let from = now_ms().saturating_sub(since.as_millis() as u64);
        let entries = store
            .history(&environment, from)
            .await
            .context("cannot read the alert history")?;
        print_history(&entries, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let retention = hawkeye_agent::retention_from_env(&env)?;
    let file =
        hawkeye_agent::load_monitors(&args.file, retention).map_err(|e| anyhow::anyhow!("{e}"))?;
    let states = store
        .alert_states(&state_key::prefix(&service, &environment))
        .await
        .context("cannot read the alert states")?;
    let now = now_ms();
    let (silences, _) = hawkeye_agent::silence::parse_all(&store.silences(now).await?);
    let index = KeyIndex::new(&file, &service, &environment);
    let rows: Vec<Value> = alert_rows(&file, &index, &states, &silences, now)
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_states(&rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Object(map) if map.is_empty() => "-".into(),
        Value::Object(map) => {
            let pairs: Vec<(String, String)> =
                map.iter().map(|(k, v)| (k.clone(), text(v))).collect();
            describe_group(&pairs)
        }
        other => other.to_string(),
    }
}

fn print_states(rows: &[Value]) {
    if rows.is_empty() {
        println!("no alert states");
        return;
    }
    let columns = [
        "status",
        "monitor",
        "level",
        "group",
        "value",
        "op",
        "threshold",
        "since",
        "last_notified",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| text(&r[*c])).collect())
        .collect();
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    crate::table::print(&header, cells);
}

fn print_history(entries: &[(u64, String)], as_json: bool) -> anyhow::Result<()> {
    let parsed: Vec<Value> = entries
        .iter()
        .map(|(at, e)| {
            let mut v: Value = serde_json::from_str(e).unwrap_or_else(|_| json!({"raw": e}));
            if let Value::Object(map) = &mut v {
                map.insert("recorded_at".into(), json!(rfc3339(*at)));
            }
            v
        })
        .collect();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&parsed)?);
        return Ok(());
    }
    if parsed.is_empty() {
        println!("no transitions");
    }
    for v in &parsed {
        let group = match text(&v["group"]).as_str() {
            "-" => String::new(),
            g => format!("{{{g}}}"),
        };
        let mut line = format!(
            "{}  {}{group} level {}  {} -> {}",
            text(&v["recorded_at"]),
            text(&v["monitor"]),
            text(&v["level"]),
            text(&v["from"]),
            text(&v["to"]),
        );
        if let Some(notice) = v["notice"].as_str() {
            line.push_str(&format!("  {notice}: {}", text(&v["subject"])));
            let to: Vec<String> = ["mail_to", "mail_cc", "mail_bcc", "webhooks"]
                .iter()
                .flat_map(|k| v[*k].as_array().cloned().unwrap_or_default())
                .map(|a| text(&a))
                .collect();
            if !to.is_empty() {
                line.push_str(&format!("  to {}", to.join(", ")));
            }
        }
        println!("{line}");
    }
    Ok(())
}
