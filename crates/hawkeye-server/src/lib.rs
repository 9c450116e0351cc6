//! The hawkeye server: takes metric events on a Unix stream socket (JSON-RPC
//! 2.0 and Go's net/rpc/jsonrpc, or plain statsd lines) and, optionally, a
//! datagram socket, UDP and TCP (plain statsd/DogStatsD lines), aggregates
//! them per series and per second in memory, and writes the aggregates to a
//! [`Store`] every flush interval.
//!
//! Embedding: [`start`] runs the server on the caller's tokio runtime and
//! returns a [`ServerHandle`] for stats and graceful shutdown.

/// Public for the criterion benches only (benches/aggregator.rs): not a
/// stable API.
#[doc(hidden)]
pub mod aggregator;
mod clock;
pub mod config;
mod connection;
mod datagram;
mod exporter;
mod flush_task;
mod flusher;
mod http;
mod ingest;
mod lane;
mod listeners;
mod output;
mod pace;
mod plain_stream;
mod registry;
mod reject_log;
mod rpc;
mod server_id;
mod shared;
mod socket_file;
mod stats;
mod statsd_lines;
mod stream_input;
mod tcp;
mod udp;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hawkeye_protocol::jsonrpc::StatsResult;
use hawkeye_store::Store;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

pub use config::{ConfigError, ServerConfig, StoreSettings};

use registry::Admission;
use shared::Shared;
use statsd_lines::Listener;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "a hawkeye server is already listening on {0}; stop it or choose another HAWKEYE_SOCKET"
    )]
    AlreadyRunning(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HAWKEYE_UDP_ADDR {addr}: {source}")]
    Udp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HAWKEYE_HTTP_ADDR {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HAWKEYE_TCP_ADDR {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the server task failed: {0}")]
    Task(String),
    /// The store did not take the last aggregates before the shutdown
    /// deadline: these answered events are lost (and were logged).
    #[error("{events} answered events could not be written to the store before HAWKEYE_SHUTDOWN_TIMEOUT and are lost")]
    EventsLost { events: u64 },
}

impl ServerError {
    fn io(path: &Path, source: std::io::Error) -> ServerError {
        ServerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A running server.
pub struct ServerHandle {
    socket_path: PathBuf,
    tcp_addr: Option<std::net::SocketAddr>,
    http_addr: Option<std::net::SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    /// Ends with the number of answered events that could not be written.
    task: tokio::task::JoinHandle<u64>,
}

impl ServerHandle {
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The address the TCP listener is bound to (its port chosen by the
    /// system when `HAWKEYE_TCP_ADDR` asked for port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp_addr
    }

    /// The address `/metrics` is served on (see [`ServerHandle::tcp_addr`]).
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_addr
    }

    pub fn stats(&self) -> StatsResult {
        self.shared.stats.snapshot()
    }

    /// Stops accepting, lets open connections finish what they read, flushes
    /// everything to the store and removes the socket files, all within
    /// `HAWKEYE_SHUTDOWN_TIMEOUT`. An error when answered events could not
    /// be written ([`ServerError::EventsLost`]).
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        let lost = self
            .task
            .await
            .map_err(|e| ServerError::Task(e.to_string()))?;
        match lost {
            0 => Ok(()),
            events => Err(ServerError::EventsLost { events }),
        }
    }
}

/// Binds the sockets and starts the server's tasks on the current runtime.
pub async fn start(
    config: ServerConfig,
    store: Arc<dyn Store>,
) -> Result<ServerHandle, ServerError> {
    start_with_flush_runtime(config, store, tokio::runtime::Handle::current()).await
}

/// [`start`], with the periodic flushes on `flush_runtime`: connections are
/// served on the current runtime, and cutting and encoding a batch of many
/// series never holds up their calls. The standalone server serves
/// connections on a single-threaded runtime (no wake-ups between workers
/// per call) and flushes on a second thread.
pub async fn start_with_flush_runtime(
    config: ServerConfig,
    store: Arc<dyn Store>,
    flush_runtime: tokio::runtime::Handle,
) -> Result<ServerHandle, ServerError> {
    let listeners = listeners::bind(&config)?;
    let tcp_addr = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok());
    let http_addr = listeners.http.as_ref().and_then(|l| l.local_addr().ok());
    let name = match &config.server_id {
        Some(name) => name.clone(),
        None => server_id::default_name(&config.socket_path),
    };
    info!(
        socket = %config.socket_path.display(),
        datagram = ?config.dgram_socket_path,
        flush_interval = ?config.flush_interval,
        server_id = %name,
        "hawkeye server listening"
    );
    let socket_path = config.socket_path.clone();
    let shared = Arc::new(Shared::new(config, store, &name));
    if let Some((_, inode)) = &listeners.udp {
        shared.stats.set_udp_inode(*inode);
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let flusher = flush_runtime.spawn(flush_task::run(shared.clone(), shutdown_rx.clone()));
    let task = tokio::spawn(run(shared.clone(), listeners, flusher, shutdown_rx));
    Ok(ServerHandle {
        socket_path,
        tcp_addr,
        http_addr,
        shared,
        shutdown,
        task,
    })
}

async fn run(
    shared: Arc<Shared>,
    listeners: listeners::Listeners,
    flusher: tokio::task::JoinHandle<()>,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    let listeners::Listeners {
        stream: listener,
        datagram,
        udp,
        tcp,
        http,
    } = listeners;
    let datagram_tasks = serve_datagrams(&shared, datagram, udp, &shutdown);
    let http = http.map(|l| tokio::spawn(http::serve(shared.clone(), l, shutdown.clone())));
    let mut connections = JoinSet::new();
    let (lane, mut handed) = start_lane(&shared);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => admit(&shared, stream, lane.as_ref(), &mut connections),
                Err(e) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            accepted = tcp::accept(tcp.as_ref()) => match accepted {
                Ok(stream) => admit_tcp(&shared, stream, &mut connections),
                Err(e) => {
                    warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(handed) = handed.recv() => serve_handed(handed, &mut connections),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // One deadline for the whole shutdown: connections get the first half
    // of it to answer what they have read, the last flush the rest (all of
    // it when the connections finish at once, as they normally do).
    let started = tokio::time::Instant::now();
    let deadline = started + shared.config.shutdown_timeout;
    drop(listener);
    drop(tcp);
    // Nothing listens any more: the file goes now, so that a server started
    // meanwhile does not lose its own socket to this one's cleanup.
    socket_file::remove(&shared.config.socket_path);
    info!("shutting down: no new connections; answering what open ones have sent");
    finish_connections(&shared, lane, handed, connections, started, deadline).await;
    for task in datagram_tasks {
        let _ = task.await;
    }
    if let Some(http) = http {
        // A scraper's idle keep-alive connection must not hold the
        // shutdown up: what it could still ask for is not worth the wait.
        http.abort();
    }
    if let Some(path) = &shared.config.dgram_socket_path {
        socket_file::remove(path);
    }
    // Only now, with every connection done, does the last flush cover
    // everything that was answered.
    let _ = flusher.await;
    let lost = flush_task::final_flush(&shared, deadline).await;
    let stats = shared.stats.snapshot();
    info!(
        lines_accepted = stats.lines_accepted,
        flushes = stats.flushes,
        events_lost = lost,
        "hawkeye server stopped"
    );
    lost
}

/// At shutdown: every connection (the lane's too) answers what it has read
/// and closes, within the first half of the shutdown's time; past it, the
/// ones left are aborted.
async fn finish_connections(
    shared: &Shared,
    lane: Option<lane::Lane>,
    mut handed: mpsc::UnboundedReceiver<lane::HandOver>,
    mut connections: JoinSet<()>,
    started: tokio::time::Instant,
    deadline: tokio::time::Instant,
) {
    shared.registry.shut_down_all();
    // The lane answers its connections' last reads (handing over what it
    // cannot answer), then its channel closes.
    if let Some(lane) = lane {
        lane.finish();
    }
    let finish = async {
        loop {
            tokio::select! {
                Some(h) = handed.recv() => serve_handed(h, &mut connections),
                Some(_) = connections.join_next() => {}
                else => break,
            }
        }
    };
    let half = started + shared.config.shutdown_timeout / 2;
    if tokio::time::timeout_at(half, finish).await.is_err() {
        // A client that stops reading cannot hold the shutdown up for ever;
        // what its connection took in is in the aggregator already.
        warn!(
            remaining = connections.len(),
            "connections still open half-way through HAWKEYE_SHUTDOWN_TIMEOUT; closing them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    // The lane's channel closes when its thread has stopped: then nothing
    // it answers can come after the last flush. (Normally it is closed
    // already; after the connections were aborted, what it still hands
    // over closes.) Waited for until the deadline, and no longer.
    let lane_stopped = async { while handed.recv().await.is_some() {} };
    let _ = tokio::time::timeout_at(deadline, lane_stopped).await;
}

/// Reads the datagram sockets, each on a task of its own, until shutdown.
fn serve_datagrams(
    shared: &Arc<Shared>,
    datagram: Option<tokio::net::UnixDatagram>,
    udp: Option<(tokio::net::UdpSocket, u64)>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let max_bytes = shared.config.dgram_max_bytes;
    if let Some(socket) = datagram {
        let serve = datagram::serve(
            shared.clone(),
            socket,
            max_bytes,
            Listener::Datagram,
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(serve));
    }
    if let Some((socket, _)) = udp {
        let max_bytes = max_bytes.min(datagram::LARGEST_UDP);
        let serve = datagram::serve(
            shared.clone(),
            socket,
            max_bytes,
            Listener::Udp,
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(serve));
    }
    tasks
}

/// Serves a new TCP connection, or closes it when the server is at
/// `HAWKEYE_MAX_CONNECTIONS` (nothing is said: it reads no answers).
fn admit_tcp(shared: &Arc<Shared>, stream: tokio::net::TcpStream, connections: &mut JoinSet<()>) {
    match shared.registry.admit(&shared.stats) {
        Admission::Admitted(entry) => {
            connections.spawn(plain_stream::serve(shared.clone(), stream, entry));
        }
        Admission::Refused => {
            stats::Stats::bump(&shared.stats.connections_refused);
            debug!("TCP connection refused: HAWKEYE_MAX_CONNECTIONS reached, none idle");
        }
    }
}

/// Starts the lockstep lane, if the configuration asks for it; what it
/// hands over arrives on the receiver.
fn start_lane(
    shared: &Arc<Shared>,
) -> (Option<lane::Lane>, mpsc::UnboundedReceiver<lane::HandOver>) {
    let (sender, handed) = mpsc::unbounded_channel();
    if !shared.config.lockstep_lane {
        return (None, handed);
    }
    match lane::Lane::start(shared.clone(), sender) {
        Ok(lane) => (Some(lane), handed),
        Err(e) => {
            warn!(error = %e, "cannot start the lockstep lane; every connection is served on the runtime");
            (None, handed)
        }
    }
}

/// Serves a connection the lane handed over, from what it holds.
fn serve_handed(handed: lane::HandOver, connections: &mut JoinSet<()>) {
    let lane::HandOver { stream, open, held } = handed;
    match tokio::net::UnixStream::from_std(stream) {
        Ok(stream) => {
            connections.spawn(connection::serve_open(open, stream, Some(held)));
        }
        Err(e) => warn!(error = %e, "cannot serve a connection handed over by the lockstep lane"),
    }
}

/// Serves a new connection (on the lockstep lane when there is one), or
/// tells it why not.
fn admit(
    shared: &Arc<Shared>,
    stream: tokio::net::UnixStream,
    lane: Option<&lane::Lane>,
    connections: &mut JoinSet<()>,
) {
    match shared.registry.admit(&shared.stats) {
        Admission::Admitted(entry) => {
            let open = stream_input::Open::new(shared, entry);
            let refused = match lane {
                Some(lane) => lane.adopt(stream, open).err(),
                None => Some((stream, open)),
            };
            if let Some((stream, open)) = refused {
                connections.spawn(connection::serve_open(open, stream, None));
            }
        }
        Admission::Refused => {
            stats::Stats::bump(&shared.stats.connections_refused);
            tokio::spawn(connection::refuse(stream, shared.config.max_connections));
        }
    }
}
