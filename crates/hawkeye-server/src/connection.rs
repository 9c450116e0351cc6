//! One stream connection: newline-delimited JSON-RPC (docs/protocol.md).
//!
//! Every complete line in the read buffer is answered before the answers are
//! written in one go, so a client that pipelines many calls (as Go's net/rpc
//! client does with concurrent callers) costs one read and one write per
//! buffer, not per call. A connection holds no buffer while idle, so
//! thousands of idle connections cost little memory.
//!
//! What one client can hold is bounded (docs/protocol.md, "Limits"): a line
//! longer than `HAWKEYE_MAX_LINE_BYTES` closes the connection (-32004), so
//! does a line left incomplete past `HAWKEYE_LINE_TIMEOUT` (-32007); the
//! bytes held across connections are bounded by the registry (-32006); and
//! unsent answers by the [`Output`] (reading stops until the client reads).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hawkeye_protocol::jsonrpc::{self, code, Dialect, RpcError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tracing::debug;

use crate::output::{Gone, Output};
use crate::pace::Pacer;
use crate::registry::{CloseRequest, Entry};
use crate::rpc;
use crate::shared::Shared;
use crate::stats::Stats;

/// How much is read at a time: a small read first, a large one when the
/// small one came back full (more is waiting).
const SMALL_READ: usize = 4 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed, or the server finished at shutdown.
    Done,
    /// Closed to admit a new client (it was the longest idle).
    Evicted,
    /// Closed to keep request bytes within `HAWKEYE_MAX_PENDING_BYTES`.
    InputBudget,
    LineTooLong,
    LineTimeout,
}

/// Counts the connection while it lives, and takes it out of the registry.
struct Open<'a> {
    shared: &'a Shared,
    entry: &'a Arc<Entry>,
}

impl<'a> Open<'a> {
    fn new(shared: &'a Shared, entry: &'a Arc<Entry>) -> Self {
        shared.stats.connections.fetch_add(1, Relaxed);
        shared.stats.connections_total.fetch_add(1, Relaxed);
        Open { shared, entry }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.shared.registry.leave(self.entry, &self.shared.stats);
        self.shared.stats.connections.fetch_sub(1, Relaxed);
    }
}

struct Connection<'a> {
    shared: &'a Shared,
    entry: &'a Entry,
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Where the search for the next newline resumes.
    scanned: usize,
    /// When the incomplete line at the end of `input` began arriving.
    line_started: Option<Instant>,
    /// Set at shutdown: answer what the client has already sent, then close.
    closing: bool,
    /// The last read filled the room it had: read more at a time.
    read_filled: bool,
    pacer: Pacer,
}

pub(crate) async fn serve(shared: Arc<Shared>, stream: UnixStream, entry: Arc<Entry>) {
    let _open = Open::new(&shared, &entry);
    let mut conn = Connection {
        shared: &shared,
        entry: &entry,
        stream,
        input: Vec::new(),
        output: Vec::new(),
        scanned: 0,
        line_started: None,
        closing: false,
        read_filled: false,
        pacer: Pacer::default(),
    };
    let end = conn.run().await;
    conn.goodbye(end);
}

impl Connection<'_> {
    async fn run(&mut self) -> End {
        loop {
            let eof = match self.receive().await {
                Ok(eof) => eof,
                Err(end) => return end,
            };
            if !self.entry.begin_work() {
                return End::Evicted;
            }
            match self.answer(eof).await {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(Gone::Client) => return End::Done,
                Err(Gone::InputBudget) => return End::InputBudget,
            }
            // At shutdown one read is answered, no more: a client that keeps
            // writing cannot keep the connection open until it is aborted
            // half-way through a request (taken, never answered, sent again).
            // What it sent after is not answered; it sends it again.
            if eof || self.closing {
                return End::Done;
            }
            self.settle();
        }
    }

    /// Waits for input and reads what has arrived: `Ok(true)` at the end of
    /// the input, `Err` when the connection must end instead.
    ///
    /// The read is one `read_buf`, not `readable()` then `try_read_buf`:
    /// tokio clears a socket's readiness when a read returns less than it
    /// asked for, so a call answered in lockstep costs one `recv`, not a
    /// second one that finds nothing.
    async fn receive(&mut self) -> Result<bool, End> {
        loop {
            if self.entry.evicted() {
                return Err(End::Evicted);
            }
            match self.entry.close_request() {
                Some(CloseRequest::InputBudget) => return Err(End::InputBudget),
                Some(CloseRequest::Shutdown) => self.closing = true,
                None => {}
            }
            if self.closing {
                // Read what has arrived, without waiting for more.
                return self.read_now();
            }
            let stats = &self.shared.stats;
            self.shared
                .registry
                .set_pending(self.entry, self.input.len(), stats);
            let deadline = self
                .line_started
                .map(|t| t + self.shared.config.line_timeout);
            if self.input.capacity() == 0 {
                // An idle connection holds no buffer: take one only once
                // something has arrived.
                tokio::select! {
                    ready = self.stream.readable() => ready.map_err(|_| End::Done)?,
                    () = self.entry.wake.notified() => continue,
                    () = sleep_until(deadline) => return Err(End::LineTimeout),
                }
            }
            let room = self.reserve();
            tokio::select! {
                // Cancel safe: when another branch wins, nothing was read.
                read = self.stream.read_buf(&mut self.input) => {
                    return self.after_read(read, room);
                }
                // The registry wants something: look at the flags again.
                () = self.entry.wake.notified() => {}
                () = sleep_until(deadline) => return Err(End::LineTimeout),
            }
        }
    }

    /// Makes room for the next read; returns how much there is.
    fn reserve(&mut self) -> usize {
        let want = if self.read_filled {
            READ_CHUNK
        } else {
            SMALL_READ
        };
        if self.input.capacity() - self.input.len() < want / 4 {
            // Exactly: one read takes at most about `want`.
            self.input.reserve_exact(want);
        }
        self.input.capacity() - self.input.len()
    }

    /// Reads what has arrived, without waiting (at shutdown).
    fn read_now(&mut self) -> Result<bool, End> {
        let room = self.reserve();
        match self.stream.try_read_buf(&mut self.input) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            read => self.after_read(read, room),
        }
    }

    fn after_read(&mut self, read: std::io::Result<usize>, room: usize) -> Result<bool, End> {
        match read {
            Ok(0) => Ok(true),
            Ok(n) => {
                self.read_filled = n == room;
                Ok(false)
            }
            Err(e) => {
                debug!(error = %e, "connection read failed");
                Err(End::Done)
            }
        }
    }

    /// Answers every complete line read, and writes the answers out.
    async fn answer(&mut self, eof: bool) -> Result<Option<End>, Gone> {
        let Connection {
            shared,
            entry,
            stream,
            input,
            output,
            scanned,
            pacer,
            line_started,
            ..
        } = self;
        let max_line = shared.config.max_line_bytes;
        let mut out = Output::new(shared, stream, output, pacer, entry, input.len());
        let mut start = 0;
        let mut too_long = false;
        while let Some(pos) = memchr::memchr(b'\n', &input[*scanned..]) {
            let end = *scanned + pos;
            if end - start > max_line {
                too_long = true;
                break;
            }
            rpc::answer_line(shared, &input[start..end], &mut out).await?;
            out.progress(end + 1 - start).await?;
            start = end + 1;
            *scanned = start;
        }
        if eof && !too_long && start < input.len() && input.len() - start <= max_line {
            // A last line without its newline, before the client's end of
            // the stream, is still a line.
            rpc::answer_line(shared, &input[start..], &mut out).await?;
            start = input.len();
        }
        let completed = start > 0;
        input.drain(..start);
        *scanned = input.len();
        out.write_out().await?;
        if too_long || input.len() > max_line {
            return Ok(Some(End::LineTooLong));
        }
        if input.is_empty() {
            *line_started = None;
        } else if completed || line_started.is_none() {
            *line_started = Some(Instant::now());
        }
        Ok(None)
    }

    /// After a read is answered: a connection with nothing held is idle.
    fn settle(&mut self) {
        if !self.input.is_empty() || !self.output.is_empty() {
            return;
        }
        self.entry.end_work(&self.shared.registry);
        // A burst left large buffers behind; don't keep them while idle.
        // Small ones stay, so that one call at a time allocates nothing.
        if self.input.capacity() > SMALL_READ {
            self.input = Vec::new();
            self.read_filled = false;
        }
        if self.output.capacity() > SMALL_READ {
            self.output = Vec::new();
        }
    }

    /// Tells the client why the server closes the connection, if it did.
    /// Best effort: a client that does not read is not waited for.
    fn goodbye(&mut self, end: End) {
        let config = &self.shared.config;
        let stats = &self.shared.stats;
        let error = match end {
            End::Done => return,
            // Counted by the registry when it chose this connection.
            End::Evicted => RpcError::new(
                code::TOO_MANY_CONNECTIONS,
                format!("closed to admit a new client: the server is at HAWKEYE_MAX_CONNECTIONS ({}) and this connection was idle the longest", config.max_connections),
            ),
            End::InputBudget => {
                Stats::bump(&stats.connections_closed_input_budget);
                RpcError::new(
                    code::INPUT_BUDGET,
                    format!("closing: the server holds more than HAWKEYE_MAX_PENDING_BYTES ({}) of unanswered request lines, and this connection held the most", config.max_pending_bytes),
                )
            }
            End::LineTooLong => {
                Stats::bump(&stats.connections_closed_line_too_long);
                RpcError::new(
                    code::LINE_TOO_LONG,
                    format!("request line longer than {} bytes (HAWKEYE_MAX_LINE_BYTES); closing the connection", config.max_line_bytes),
                )
            }
            End::LineTimeout => {
                Stats::bump(&stats.connections_closed_line_timeout);
                RpcError::new(
                    code::LINE_TIMEOUT,
                    format!("request line incomplete for longer than HAWKEYE_LINE_TIMEOUT ({:?}); closing the connection", config.line_timeout),
                )
            }
        };
        debug!(reason = ?end, "closing a connection");
        let mut line = Vec::new();
        jsonrpc::write_response::<()>(&mut line, Dialect::V2, None, &Err(error));
        let _ = self.stream.try_write(&line);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Tells a connection over the limit why it is closed.
pub(crate) async fn refuse(mut stream: UnixStream, max: usize) {
    let e = RpcError::new(
        code::TOO_MANY_CONNECTIONS,
        format!(
            "too many connections (HAWKEYE_MAX_CONNECTIONS is {max}, none idle); try again later"
        ),
    );
    let mut out = Vec::new();
    jsonrpc::write_response::<()>(&mut out, Dialect::V2, None, &Err(e));
    let _ = stream.write_all(&out).await;
}
