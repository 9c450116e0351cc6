//! `hawkeye-agent`: the agent as a standalone program.
//!
//! Settings come from `.env` (then `.{ENV}.env`), the environment, and the
//! flags, in increasing priority. `--check FILE` validates a monitors file
//! and exits; otherwise the agent runs until SIGTERM/SIGINT, reloading the
//! monitors file on SIGHUP (an invalid file is reported and the last good
//! one stays in use).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hawkeye_agent::{load_dotenv, load_monitors, AgentConfig, AgentHandle, MonitorsSource};
use hawkeye_store::{RedisConfig, RedisStore, Store};
use tokio::signal::unix::{signal, Signal, SignalKind};

#[global_allocator]
static GLOBAL: hawkeye_agent::Allocator = hawkeye_agent::ALLOCATOR;

#[derive(Parser, Debug)]
#[command(
    name = "hawkeye-agent",
    version,
    about = "Evaluates monitors.yaml and mails debounced alerts."
)]
struct Cli {
    /// Monitors file (default: MONITOR_CONFIG_FILE, else monitors.yaml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Validate FILE, print every problem as file:line:col: message, and exit
    /// (0 when valid, 1 otherwise).
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(path) = &cli.check {
        // The same settings as the agent would run with: windows are checked
        // against HAWKEYE_RETENTION (default 1h) and HAWKEYE_ROLLUP_RETENTION
        // (default 35d), as the server is not asked.
        load_dotenv(Path::new("."));
        return match AgentConfig::from_env() {
            Ok(config) => check(path, config.retention_limits()),
            Err(e) => {
                eprintln!("hawkeye-agent: {e}");
                ExitCode::FAILURE
            }
        };
    }
    load_dotenv(Path::new("."));
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hawkeye-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("hawkeye-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path, retention: hawkeye_agent::Retention) -> ExitCode {
    match load_monitors(path, retention) {
        Ok(file) => {
            for w in &file.warnings {
                println!("{w}");
            }
            let triggers: usize = file.monitors.iter().map(|m| m.triggers.len()).sum();
            println!(
                "{}: ok ({} monitors, {triggers} triggers)",
                path.display(),
                file.monitors.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            println!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs kept in files are searched.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn run(cli: Cli) -> Result<(), String> {
    // Before anything that takes time: a SIGHUP that arrives while starting
    // must not kill the process (its default action).
    let signals = Signals::install()?;
    let mut config = AgentConfig::from_env().map_err(|e| e.to_string())?;
    if let Some(path) = cli.config {
        config.monitors = MonitorsSource::File(path);
    }
    let MonitorsSource::File(monitors_path) = config.monitors.clone() else {
        return Err("no monitors file configured".into());
    };
    let mailer = hawkeye_mail::mailer_from_env().map_err(|e| e.to_string())?;
    let kind = hawkeye_env::Env::process().string_or("MAILER", "log");
    tracing::info!(mailer = %kind, "mailer ready");
    // The store connects lazily: a Redis that is down now is logged by the
    // agent's first check and retried every interval.
    let store: Arc<dyn Store> = Arc::new(
        RedisConfig::new(
            config.redis_url.clone(),
            config.key_prefix.clone(),
            config.retention,
        )
        .with_env()
        .and_then(RedisStore::new)
        .map_err(|e| e.to_string())?,
    );
    let mut agent = hawkeye_agent::start(config, store, mailer)
        .await
        .map_err(|e| format!("{}: {e}", monitors_path.display()))?;
    let result = signals.wait(&mut agent, &monitors_path).await;
    let stats = agent.shutdown().await;
    tracing::info!(
        checks = stats.engine.checks,
        alerts = stats.engine.notices,
        mails_sent = stats.mail.sent,
        "bye"
    );
    result
}

struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("cannot listen for {name}: {e}"))
        };
        Ok(Signals {
            hup: install(SignalKind::hangup(), "SIGHUP")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Reloads on SIGHUP; returns on SIGTERM or SIGINT, and with an error
    /// when the evaluation task ends by itself (the process must not keep
    /// running without evaluating).
    async fn wait(mut self, agent: &mut AgentHandle, monitors_path: &Path) -> Result<(), String> {
        let Signals { hup, term, int } = &mut self;
        let retention = agent.retention();
        loop {
            tokio::select! {
                why = agent.evaluation_ended() => {
                    return Err(format!("{why}; no monitors are evaluated any more, exiting"));
                }
                _ = hup.recv() => match load_monitors(monitors_path, retention) {
                    Ok(file) => match agent.reload(file) {
                        Ok(()) => tracing::info!(file = %monitors_path.display(), "SIGHUP: monitors reloaded"),
                        Err(e) => tracing::error!("SIGHUP: reload refused, keeping the current monitors: {e}"),
                    },
                    Err(errors) => {
                        for line in errors.to_string().lines() {
                            tracing::error!("{line}");
                        }
                        tracing::error!(
                            problems = errors.problems.len(),
                            "SIGHUP: {} is invalid; keeping the last good monitors",
                            monitors_path.display()
                        );
                    }
                },
                _ = term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    return Ok(());
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    return Ok(());
                }
            }
        }
    }
}
