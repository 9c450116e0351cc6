//! A spy server for tests, in memory: a [`Client`](crate::Client) made by
//! [`Client::with_spy`](crate::Client::with_spy) connects to it instead of
//! a socket, and the test plays the server. It reads each `metric.send`
//! request the client writes and answers it, or not, as it likes: like
//! cadence's `SpyMetricSink`, it needs no server process. For testing what
//! an application records, and the client's delivery against a server
//! that misbehaves on cue (docs/client.md says what the client promises).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hawkeye_client::{Client, ClientConfig};
//!
//! let (client, mut spy) = Client::with_spy(ClientConfig::default())?;
//! client.incr("jobs.done", &[("queue", "mail")]);
//! let flush = tokio::spawn({
//!     let client = client.clone();
//!     async move { client.flush().await }
//! });
//! let mut server = spy.accept().await.expect("the client connects");
//! let request = server.request().await?.expect("a request");
//! assert_eq!(request.lines, ["jobs.done:1|c|#queue:mail"]);
//! server.accept_all(&request).await?;
//! flush.await??; // confirmed by that answer
//! # Ok(()) }
//! ```

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hawkeye_protocol::jsonrpc::{
    method, parse_incoming, write_response, Dialect, Incoming, LineText, RpcError, SendResult,
};
use serde_json::value::RawValue;
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::sync::mpsc;

/// Bytes the in-memory pipe holds each way. A test that stops reading
/// stops the client's writes once this is full, as a server that stops
/// reading its socket does.
pub const SPY_BUFFER_BYTES: usize = 64 * 1024;

/// The test's end: the connections the client makes.
#[derive(Debug)]
pub struct SpyServer {
    connections: mpsc::UnboundedReceiver<SpyConnection>,
    listening: Arc<AtomicBool>,
}

/// The client's end, held by its background task.
#[derive(Debug)]
pub(crate) struct SpyEndpoint {
    connections: mpsc::UnboundedSender<SpyConnection>,
    listening: Arc<AtomicBool>,
}

/// A listening spy server and the endpoint a client connects to.
pub(crate) fn listen() -> (SpyServer, SpyEndpoint) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listening = Arc::new(AtomicBool::new(true));
    let server = SpyServer {
        connections: rx,
        listening: Arc::clone(&listening),
    };
    (
        server,
        SpyEndpoint {
            connections: tx,
            listening,
        },
    )
}

impl SpyEndpoint {
    /// A new connection, or `ConnectionRefused` as from a socket nobody
    /// listens on.
    pub(crate) fn connect(&self) -> io::Result<DuplexStream> {
        let refused = |why: &str| io::Error::new(io::ErrorKind::ConnectionRefused, why.to_string());
        if !self.listening.load(Ordering::SeqCst) {
            return Err(refused("the spy server is not listening"));
        }
        let (client, server) = tokio::io::duplex(SPY_BUFFER_BYTES);
        self.connections
            .send(SpyConnection::new(server))
            .map_err(|_| refused("the spy server is gone"))?;
        Ok(client)
    }
}

impl SpyServer {
    /// The next connection the client makes (waiting for it); `None` once
    /// the client's background task has ended.
    pub async fn accept(&mut self) -> Option<SpyConnection> {
        self.connections.recv().await
    }

    /// A connection the client made and the test has not accepted yet,
    /// without waiting.
    pub fn try_accept(&mut self) -> Option<SpyConnection> {
        self.connections.try_recv().ok()
    }

    /// Whether the client's connection attempts succeed (they do at
    /// first). `false` is a server that is down: connecting fails as with
    /// no socket, and the client backs off. Connections already made stay
    /// open; drop them to close them.
    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::SeqCst);
    }
}

/// One connection, seen from the server's side. Dropping it closes it.
#[derive(Debug)]
pub struct SpyConnection {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    writer: WriteHalf<DuplexStream>,
}

/// One `metric.send` request as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpyRequest {
    pub id: u64,
    /// Its metric lines, in order (the index a rejection names).
    pub lines: Vec<String>,
}

impl SpyConnection {
    fn new(stream: DuplexStream) -> SpyConnection {
        let (read, writer) = tokio::io::split(stream);
        SpyConnection {
            lines: BufReader::new(read).lines(),
            writer,
        }
    }

    /// The next request the client wrote (waiting for it); `None` when the
    /// client closed the connection. Anything but a `metric.send` request
    /// with a number id is an `InvalidData` error: the client never
    /// writes one.
    pub async fn request(&mut self) -> io::Result<Option<SpyRequest>> {
        let Some(line) = self.lines.next_line().await? else {
            return Ok(None);
        };
        read_request(&line)
            .map(Some)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, format!("{why}: {line}")))
    }

    /// Answers that every line of `request` was taken.
    pub async fn accept_all(&mut self, request: &SpyRequest) -> io::Result<()> {
        let result = SendResult {
            accepted: request.lines.len(),
            rejected: Vec::new(),
        };
        self.answer(request.id, Ok(result)).await
    }

    /// Answers request `id` with a result (some lines rejected, say) or an
    /// error (nothing taken).
    pub async fn answer(
        &mut self,
        id: u64,
        outcome: Result<SendResult, RpcError>,
    ) -> io::Result<()> {
        let id = RawValue::from_string(id.to_string()).map_err(io::Error::other)?;
        self.write_reply(Some(&id), &outcome).await
    }

    /// Answers with an error and id `null`, as the server does for a line
    /// it could not read (-32004 for a line too long, then it closes).
    pub async fn answer_unidentified(&mut self, error: RpcError) -> io::Result<()> {
        self.write_reply::<()>(None, &Err(error)).await
    }

    /// Writes `bytes` as they are: what a faulty server might say.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await
    }

    async fn write_reply<T: serde::Serialize>(
        &mut self,
        id: Option<&RawValue>,
        outcome: &Result<T, RpcError>,
    ) -> io::Result<()> {
        let mut out = Vec::new();
        write_response(&mut out, Dialect::V2, id, outcome);
        self.writer.write_all(&out).await
    }
}

fn read_request(line: &str) -> Result<SpyRequest, String> {
    // The spy reads what the client sends: one request per line, never a batch.
    let request = match parse_incoming(line, 1) {
        Incoming::Single(Ok(request)) => request,
        Incoming::Single(Err(e)) | Incoming::Invalid(e) => return Err(e.to_string()),
        Incoming::Batch(_) | Incoming::BatchTooLarge(_) => return Err("a batch".into()),
    };
    if request.method != method::SEND {
        return Err(format!("method {}", request.method));
    }
    let id = request
        .id
        .and_then(|id| id.get().parse().ok())
        .ok_or("no number id")?;
    let params = request.params.map_or("null", RawValue::get);
    let lines: Vec<LineText> = serde_json::from_str(params).map_err(|e| e.to_string())?;
    Ok(SpyRequest {
        id,
        lines: lines.into_iter().map(|l| l.0.into_owned()).collect(),
    })
}
