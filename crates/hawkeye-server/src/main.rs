//! `hawkeye-server`: the standalone server. Settings come from `.env`, then
//! the environment, then these flags (each wins over the one before).

use std::process::ExitCode;

use clap::Parser;

use hawkeye_server::{ServerConfig, StoreSettings};
use tracing::{error, info};

#[derive(Parser)]
#[command(
    name = "hawkeye-server",
    version,
    about = "Aggregates metric events from a Unix socket into Redis"
)]
struct Args {
    /// JSON-RPC stream socket path [env: HAWKEYE_SOCKET]
    #[arg(long)]
    socket: Option<std::path::PathBuf>,
    /// statsd datagram socket path [env: HAWKEYE_DGRAM_SOCKET]
    #[arg(long)]
    dgram_socket: Option<std::path::PathBuf>,
    /// Store URL: redis://, rediss://, redis+unix://, a comma list of cluster
    /// nodes, or memory:// for the in-memory store [env: REDIS_URL]
    #[arg(long)]
    redis_url: Option<String>,
    /// Shorthand for --redis-url memory://
    #[arg(long, conflicts_with = "redis_url")]
    memory: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match hawkeye_env::load_env_files() {
        Ok(loaded) => loaded
            .notices
            .iter()
            .for_each(|n| eprintln!("hawkeye-server: notice: {n}")),
        Err(e) => {
            eprintln!("hawkeye-server: {e}");
            return ExitCode::FAILURE;
        }
    }
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // Colours only on a terminal: logs kept in files are searched.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hawkeye-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = ServerConfig::from_env().map_err(|e| e.to_string())?;
    let mut store = StoreSettings::from_env().map_err(|e| e.to_string())?;
    if let Some(socket) = args.socket {
        config.socket_path = socket;
    }
    if let Some(path) = args.dgram_socket {
        config.dgram_socket_path = Some(path);
    }
    if let Some(url) = args.redis_url {
        store.url = url;
    }
    if args.memory {
        store.url = hawkeye_store::MEMORY_URL.to_string();
    }
    // Handlers first: a signal that arrives once the socket is up must stop
    // the server gracefully, not kill it.
    let signals = Signals::install().map_err(|e| format!("cannot listen for signals: {e}"))?;
    info!(store = ?store, "opening the store");
    let store = hawkeye_store::open_with_env(&store.url, &store.key_prefix, store.retention)
        .await
        .map_err(|e| e.to_string())?;
    let server = hawkeye_server::start(config, store)
        .await
        .map_err(|e| e.to_string())?;
    signals.wait().await;
    info!("signal received; shutting down");
    server.shutdown().await.map_err(|e| {
        error!(error = %e, "shutdown failed");
        e.to_string()
    })
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
