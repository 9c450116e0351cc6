//! `hawkeye demo`: the quick start. Server and agent run in this process on
//! the in-memory store; traffic that breaches `monitors.yaml` is sent through
//! hawkeye-client; the alert email is printed; then it exits 0 (or keeps
//! running with `--follow`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use hawkeye_agent::{AgentConfig, MonitorsFile, Op};
use hawkeye_client::rpc::RpcConnection;
use hawkeye_client::{Client, ClientConfig};
use hawkeye_mail::{Mail, MailError, Mailer};
use hawkeye_protocol::jsonrpc::QueryParams;
use hawkeye_protocol::MetricKind;
use tokio::sync::mpsc;

use crate::embed::{self, EmbedConfig};

/// The repository's monitors.yaml, used when the file is not found.
const BUILT_IN_MONITORS: &str = include_str!("../../../monitors.yaml");
/// How long the demo waits for the alert before it gives up.
const ALERT_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The monitors file (the repository's monitors.yaml is built in and used
    /// when this file does not exist).
    #[arg(long, default_value = "monitors.yaml")]
    pub monitors: PathBuf,
    /// How often the agent checks each monitor during the demo (the file's
    /// intervals are the windows read; only the check period is shortened).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Keep running after the alert, so you can send metrics with
    /// `hawkeye send --socket ...`; Ctrl-C stops.
    #[arg(long)]
    pub follow: bool,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    hawkeye_protocol::parse_duration(s, hawkeye_protocol::PlainUnit::Seconds)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            if d >= Duration::from_millis(100) {
                Ok(d)
            } else {
                Err("at least 100ms".into())
            }
        })
}

/// Prints each mail as it would arrive, and tells the demo about it.
struct TerminalMailer {
    seen: mpsc::UnboundedSender<Mail>,
}

#[async_trait]
impl Mailer for TerminalMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        print_mail(&mail);
        let _ = self.seen.send(mail);
        Ok(())
    }
}

fn print_mail(mail: &Mail) {
    let rule = "─".repeat(72);
    println!("\n┌{rule}");
    println!("│ From:    {}", mail.from);
    println!("│ To:      {}", mail.to.join(", "));
    if !mail.cc.is_empty() {
        println!("│ Cc:      {}", mail.cc.join(", "));
    }
    println!("│ Subject: {}", mail.subject);
    println!("│");
    for line in mail.body.lines() {
        println!("│ {line}");
    }
    println!("└{rule}\n");
}

/// The traffic that breaches one monitor: how many events of which metric.
struct Breach {
    metric: String,
    events: u64,
    threshold: f64,
    window: Duration,
}

/// Picks the first counter monitor that emails, and the number of events
/// that breaches its lowest `>=`/`>` threshold (but not a higher one).
fn plan_breach(monitors: &MonitorsFile) -> Option<Breach> {
    monitors.monitors.iter().find_map(|m| {
        if m.kind != MetricKind::Counter
            || m.ratio_of.is_some()
            || !matches!(m.notifier, hawkeye_agent::monitors::Notifier::Email)
        {
            return None;
        }
        let mut thresholds: Vec<f64> = m
            .triggers
            .iter()
            .filter(|t| matches!(t.op, Op::Ge | Op::Gt) && t.threshold >= 0.0)
            .map(|t| t.threshold)
            .collect();
        thresholds.sort_by(f64::total_cmp);
        let lowest = *thresholds.first()?;
        let mut events = lowest.floor() as u64 + 2;
        if let Some(next) = thresholds.iter().find(|t| **t > lowest) {
            if (events as f64) >= *next {
                events = lowest.floor() as u64 + 1;
            }
        }
        Some(Breach {
            metric: m.metric.clone(),
            events,
            threshold: lowest,
            window: m.window,
        })
    })
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (mut monitors, origin) = if args.monitors.exists() {
        let m = hawkeye_agent::load_monitors(&args.monitors, AgentConfig::default().retention)?;
        (m, args.monitors.display().to_string())
    } else {
        let m = hawkeye_agent::parse_monitors(
            BUILT_IN_MONITORS,
            "monitors.yaml (built in)",
            AgentConfig::default().retention,
        )?;
        (m, "the built-in copy of monitors.yaml".to_string())
    };
    let Some(breach) = plan_breach(&monitors) else {
        bail!("{origin} has no counter monitor with an email trigger (>= or >) for the demo to breach");
    };
    for m in &mut monitors.monitors {
        m.interval = args.interval;
    }

    let dir = tempfile::Builder::new()
        .prefix("hawkeye-demo")
        .tempdir()
        .context("cannot create a temporary directory for the socket")?;
    let socket = dir.path().join("hawkeye.sock");
    println!("hawkeye demo");
    println!("============");
    println!("1. Starting a hawkeye server (in-memory store, no Redis needed) on");
    println!("   {}", socket.display());
    println!("   and an agent with the monitors of {origin}.");
    println!(
        "   For the demo the agent checks every {} instead of each monitor's interval;",
        humanize(args.interval)
    );
    println!("   windows and thresholds are the file's. Alert mail is printed here (no SMTP).");

    let (seen, mut mails) = mpsc::unbounded_channel();
    let agent = AgentConfig::default()
        .with_monitors(monitors)
        .with_service("hawkeye-demo", "demo");
    let hawkeye = embed::start(
        EmbedConfig::in_memory(&socket)
            .with_agent(agent)
            .with_mailer(Arc::new(TerminalMailer { seen })),
    )
    .await?;

    let outcome = drive(&args, &breach, &socket, &mut mails).await;
    if outcome.is_ok() && args.follow {
        println!("4. Still running (--follow). Send more, e.g.:");
        println!(
            "     cargo run -p hawkeye -- send --socket {} '{}:1|c'",
            socket.display(),
            breach.metric
        );
        println!(
            "     cargo run -p hawkeye -- query --socket {} {} --window 60s",
            socket.display(),
            breach.metric
        );
        println!("   Ctrl-C stops.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    println!("Stopping server and agent.");
    hawkeye.shutdown().await;
    outcome.map(|()| ExitCode::SUCCESS)
}

async fn drive(
    args: &DemoArgs,
    breach: &Breach,
    socket: &std::path::Path,
    mails: &mut mpsc::UnboundedReceiver<Mail>,
) -> anyhow::Result<()> {
    let client = Client::new(ClientConfig::new(socket))?;
    println!(
        "2. Sending traffic through hawkeye-client: {} × {} (the lowest threshold is {}),",
        breach.events, breach.metric, breach.threshold
    );
    println!("   with 20 × http.response.200 and http.requests for company.");
    for _ in 0..breach.events {
        client.incr(&breach.metric, &[]);
        client.incr("http.requests", &[]);
    }
    for _ in 0..20 {
        client.incr("http.response.200", &[]);
        client.incr("http.requests", &[]);
    }
    client.flush().await.context("sending the demo traffic")?;

    let window_secs = breach.window.as_secs().max(1);
    let counted = settled_count(socket, &breach.metric, window_secs, breach.events as f64).await?;
    println!(
        "   The server counted {} = {} over the last {window_secs}s.",
        breach.metric,
        counted.map_or("nothing".to_string(), |v| v.to_string())
    );
    println!(
        "3. Waiting for the agent's next check (every {}) to send the alert...",
        humanize(args.interval)
    );
    let mail = tokio::time::timeout(ALERT_DEADLINE, mails.recv())
        .await
        .map_err(|_| anyhow::anyhow!("no alert within {ALERT_DEADLINE:?}"))?
        .context("the agent stopped before sending the alert")?;
    println!(
        "   The alert above went to {} (subject {:?}). Repeats are debounced by run_every.",
        mail.to.join(", "),
        mail.subject
    );
    client.shutdown().await.ok();
    Ok(())
}

/// Reads `metric`'s sum until it is `expected` (the server writes to the
/// store every flush interval), for at most a few seconds.
async fn settled_count(
    socket: &std::path::Path,
    metric: &str,
    window_secs: u64,
    expected: f64,
) -> anyhow::Result<Option<f64>> {
    let mut conn = RpcConnection::connect(socket).await?;
    let params = QueryParams {
        metric: metric.to_string(),
        window: serde_json::json!(window_secs),
        agg: Some("sum".into()),
        tags: None,
        kind: None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let value = conn.query(&params).await?.value;
        if value == Some(expected) || tokio::time::Instant::now() > deadline {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_monitors_have_a_breach_to_show() {
        let m = hawkeye_agent::parse_monitors(
            BUILT_IN_MONITORS,
            "built-in",
            AgentConfig::default().retention,
        )
        .unwrap();
        let b = plan_breach(&m).unwrap();
        assert_eq!(b.metric, "http.response.400");
        assert_eq!(b.threshold, 3.0);
        assert_eq!(b.events, 5);
    }
}
