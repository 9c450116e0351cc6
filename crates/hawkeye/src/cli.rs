//! The `hawkeye` command line: argument definitions and what each command does.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use hawkeye_client::rpc::{RpcCallError, RpcConnection};

pub use crate::query_args::{QueryArgs, SocketArg};

/// Lines sent per `metric.send` request by `hawkeye send`.
const SEND_CHUNK: usize = 1000;

#[derive(Debug, Parser)]
#[command(
    name = "hawkeye",
    version,
    about = "Send, query and alert on metrics: the hawkeye command line.",
    long_about = "Send, query and alert on metrics: the hawkeye command line.\n\n\
        Settings come from flags, then the environment, then .env (and .{ENV}.env).\n\
        Start with `hawkeye demo`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send metric lines (`name:1|c`, statsd / DogStatsD format) to the server;
    /// with no LINE, read them from stdin, one per line.
    Send(SendArgs),
    /// Read one metric's window from the server.
    Query(QueryArgs),
    /// Validate a monitors file; every problem is reported with its line and column.
    Check(CheckArgs),
    /// Run the unit tests of a monitors file (docs/monitor-tests.md): input
    /// series, expected alerts and mail at given times; exit 1 on a failure.
    Test(TestArgs),
    /// Show the server's counters.
    Stats(StatsArgs),
    /// Run server and agent in this process on an in-memory store, send
    /// traffic that breaches monitors.yaml and show the alert email.
    Demo(crate::demo::DemoArgs),
    /// Silence alerts for a while, in the store every agent reads
    /// (REDIS_URL): add, list, expire.
    Silence(crate::silence::SilenceArgs),
    /// Every trigger's state in the store (ok, pending, firing, silenced);
    /// `--history`: the transitions, with who was told.
    Alerts(crate::alerts::AlertsArgs),
    /// Each SLO's objective, SLI and error budget over its period, and the burn rates now.
    Slo(crate::slo::SloArgs),
    /// Replay the stored data through a monitors file and print the
    /// notifications the agent would have sent (docs/backtest.md).
    Backtest(crate::backtest::BacktestArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Metric lines; `-` or none reads stdin.
    pub lines: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The monitors file.
    #[arg(env = "MONITOR_CONFIG_FILE", default_value = "monitors.yaml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The test file (it names the monitors file it tests).
    #[arg(default_value = "monitors.test.yaml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Print the server's JSON result.
    #[arg(long)]
    pub json: bool,
}

/// Logs go to stderr; `RUST_LOG` chooses what. Without it only warnings and
/// errors are logged, for every command: the CLI's own output (and the
/// demo's alert email) is printed, not logged, and stays readable.
pub fn init_tracing(cli: &Cli) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    if matches!(cli.command, Command::Backtest(_)) {
        // A backtest lists the alerts of `notifier: log` monitors itself;
        // the engine's log of each (whatever RUST_LOG) would repeat them.
        if let Ok(off) = "hawkeye::alert=off".parse() {
            filter = filter.add_directive(off);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs kept in files are searched.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs a command to completion.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Send(args) => send(args).await,
            Command::Query(args) => query(args).await,
            Command::Check(args) => crate::check::check(&args.file),
            Command::Test(args) => crate::monitor_test::run(&args.file).await,
            Command::Stats(args) => stats(args).await,
            Command::Demo(args) => crate::demo::run(args).await,
            Command::Silence(args) => crate::silence::run(args).await,
            Command::Alerts(args) => crate::alerts::run(args).await,
            Command::Slo(args) => crate::slo::run(args).await,
            Command::Backtest(args) => crate::backtest::run(args).await,
        }
    })
}

async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let from_stdin = args.lines.is_empty() || args.lines == ["-"];
    if from_stdin && std::io::stdin().is_terminal() {
        eprintln!("reading metric lines from stdin (one per line, end with Ctrl-D)");
    }
    let lines: Vec<String> = if from_stdin {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .context("cannot read stdin")?
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        args.lines
    };
    if lines.is_empty() {
        bail!("no metric lines to send");
    }
    let mut conn = RpcConnection::connect(&args.socket.socket).await?;
    let (mut accepted, mut rejected) = (0usize, 0usize);
    for (chunk_index, chunk) in lines.chunks(SEND_CHUNK).enumerate() {
        // A chunk the server refused as a whole is reported, and the next
        // chunks are still sent; only a lost connection stops the command.
        let result = match conn.send_lines(chunk).await {
            Ok(result) => result,
            Err(e @ RpcCallError::Server { .. }) => {
                let first = chunk_index * SEND_CHUNK + 1;
                eprintln!(
                    "lines {first}-{}: metric.send failed: {e}",
                    first + chunk.len() - 1
                );
                rejected += chunk.len();
                continue;
            }
            Err(e) => return Err(e).context("metric.send failed"),
        };
        accepted += result.accepted;
        for r in &result.rejected {
            rejected += 1;
            let index = chunk_index * SEND_CHUNK + r.index;
            let line = lines.get(index).map(String::as_str).unwrap_or("?");
            eprintln!("rejected line {}: {line:?}: {}", index + 1, r.error);
        }
    }
    println!("accepted {accepted}, rejected {rejected}");
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    if args.range.is_some() {
        return crate::range::query_range(args).await;
    }
    let mut conn = RpcConnection::connect(&args.socket.socket).await?;
    let result = conn
        .query(&args.params(&args.window))
        .await
        .context("metric.query failed")?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
        return Ok(ExitCode::SUCCESS);
    }
    let what = args.what();
    match result.value {
        Some(v) => println!("{what} over {}s: {v}", result.window_secs),
        None => println!("{what} over {}s: no data", result.window_secs),
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let mut conn = RpcConnection::connect(&args.socket.socket).await?;
    let s = conn.stats().await.context("server.stats failed")?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (name, value) in [
        ("connections", s.connections),
        ("connections_total", s.connections_total),
        ("lines_accepted", s.lines_accepted),
        ("lines_rejected", s.lines_rejected),
        ("flushes", s.flushes),
        ("store_errors", s.store_errors),
        ("buffered", s.buffered),
        ("dropped", s.dropped),
        ("series", s.series),
    ] {
        println!("{name:<18} {value}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
