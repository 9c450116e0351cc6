use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use web_app::{App, AppConfig, Hawkeye};

/// The example web app: /ping, /400 and /500, counted by hawkeye.
#[derive(Debug, Parser)]
#[command(name = "web-app", version)]
struct Args {
    /// Address to listen on (default 127.0.0.1:PORT).
    #[arg(long, env = "LISTEN")]
    listen: Option<SocketAddr>,
    /// Port to listen on when --listen is not given.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// Send to a standalone server at HAWKEYE_SOCKET instead of starting
    /// server and agent inside the app.
    #[arg(long)]
    standalone: bool,
    /// The standalone server's socket.
    #[arg(long, env = "HAWKEYE_SOCKET", default_value = "/tmp/hawkeye.sock")]
    socket: PathBuf,
}

fn main() -> std::process::ExitCode {
    if let Err(e) = hawkeye::env_files::load_env_files() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listen = args
        .listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)));
    let hawkeye = if args.standalone {
        Hawkeye::Standalone {
            socket: args.socket,
        }
    } else {
        Hawkeye::Embedded(Box::new(
            hawkeye::embed::EmbedConfig::from_env().context("reading hawkeye's settings")?,
        ))
    };
    let app = App::start(AppConfig {
        listen,
        hawkeye,
        client: hawkeye_client::ClientConfig::default(),
    })
    .await?;
    let mode = if app.hawkeye().is_some() {
        "server and agent embedded"
    } else {
        "standalone server"
    };
    tracing::info!(
        "listening on http://{} ({mode}, metrics to {})",
        app.local_addr(),
        app.client().socket_path().display()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    app.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
