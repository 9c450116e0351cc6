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

fn main() -> ExitCode {
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
    let outcome = runtimes().and_then(|(connections, store, threads)| {
        let handle = store.handle().clone();
        connections.block_on(run(args, handle, threads))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hawkeye-server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Connections are served on one thread by default: a call answered in
/// lockstep then costs no wake-up of another worker, which was a third of
/// the CPU per call on a multi-threaded runtime. `HAWKEYE_CONNECTION_THREADS`
/// above 1 serves them on that many worker threads instead, for machines
/// with cores to spare for large batches (the aggregator is one lock either
/// way: only parsing runs in parallel). The store's connections and the
/// flushes run on a thread of their own, so that cutting and writing a
/// large batch never holds up a call.
///
/// Returns the two runtimes and the number of connection threads.
fn runtimes() -> Result<(tokio::runtime::Runtime, tokio::runtime::Runtime, usize), String> {
    let threads = hawkeye_env::Env::process()
        .count("HAWKEYE_CONNECTION_THREADS", 1)
        .map_err(|e| e.to_string())?;
    let mut connections = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let connections = connections
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let store = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hawkeye-store")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the store's runtime: {e}"))?;
    Ok((connections, store, threads))
}

async fn run(
    args: Args,
    store_runtime: tokio::runtime::Handle,
    connection_threads: usize,
) -> Result<(), String> {
    let mut config = ServerConfig::from_env().map_err(|e| e.to_string())?;
    // Several workers were asked for: lockstep calls are spread over them
    // too, not served by the one thread of the lockstep lane.
    config.lockstep_lane = connection_threads == 1;
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
    // Opened on the store's runtime: its connection tasks run there.
    let store = store_runtime
        .spawn(async move {
            hawkeye_store::open_with_env(&store.url, &store.key_prefix, store.retention).await
        })
        .await
        .map_err(|e| format!("opening the store failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let server = hawkeye_server::start_with_flush_runtime(config, store, store_runtime)
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
