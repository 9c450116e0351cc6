//! Reading one stream connection's input, for both protocols a stream may
//! carry (JSON-RPC, and plain statsd lines on TCP or the Unix socket): the
//! bounds every stream connection obeys are kept here once
//! (docs/protocol.md, "Limits"). A connection holds no buffer while idle;
//! a line left incomplete past `HAWKEYE_LINE_TIMEOUT` ends it; the bytes it
//! holds count against `HAWKEYE_MAX_PENDING_BYTES`; and the registry may
//! ask it to close (evicted as the longest idle, over the budget, shutdown).

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;
use tracing::debug;

use crate::registry::{CloseRequest, Entry};
use crate::shared::Shared;

/// How much is read at a time: a small read first, a large one when the
/// small one came back full (more is waiting).
pub(crate) const SMALL_READ: usize = 4 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// A stream socket a connection reads from.
pub(crate) trait LineStream: AsyncRead + Unpin + Send {
    /// Waits until a read would find something (or the end).
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what has arrived without waiting.
    fn read_now(&self, buf: &mut Vec<u8>) -> io::Result<usize>;
}

impl LineStream for UnixStream {
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.readable()
    }

    fn read_now(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.try_read_buf(buf)
    }
}

impl LineStream for TcpStream {
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.readable()
    }

    fn read_now(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.try_read_buf(buf)
    }
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The client closed, or the server finished at shutdown.
    Done,
    /// Closed to admit a new client (it was the longest idle).
    Evicted,
    /// Closed to keep request bytes within `HAWKEYE_MAX_PENDING_BYTES`.
    InputBudget,
    LineTooLong,
    LineTimeout,
    /// The stream socket's client sends plain statsd lines, not JSON: it
    /// is served as such from now on.
    PlainLines,
}

/// Counts the connection while it lives, and takes it out of the registry.
/// Made once when the connection is admitted and moved with it, from the
/// lockstep lane to a task if it is handed over ([`crate::lane`]).
pub(crate) struct Open {
    shared: Arc<Shared>,
    entry: Arc<Entry>,
}

impl Open {
    pub fn new(shared: &Arc<Shared>, entry: Arc<Entry>) -> Self {
        shared.stats.connections.fetch_add(1, Relaxed);
        shared.stats.connections_total.fetch_add(1, Relaxed);
        Open {
            shared: shared.clone(),
            entry,
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn entry(&self) -> &Arc<Entry> {
        &self.entry
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.registry.leave(&self.entry, &self.shared.stats);
        self.shared.stats.connections.fetch_sub(1, Relaxed);
    }
}

/// What a connection has read and not yet handled.
#[derive(Default)]
pub(crate) struct StreamInput {
    pub buf: Vec<u8>,
    /// Where the search for the next newline resumes.
    pub scanned: usize,
    /// When the incomplete line at the end of `buf` began arriving.
    pub line_started: Option<Instant>,
    /// Set at shutdown: handle what the client has already sent, then close.
    pub closing: bool,
    /// The last read filled the room it had: read more at a time.
    read_filled: bool,
}

impl StreamInput {
    /// Waits for input and reads what has arrived: `Ok(true)` at the end of
    /// the input, `Err` when the connection must end instead.
    ///
    /// The read is one `read_buf`, not `readable()` then `try_read_buf`:
    /// tokio clears a socket's readiness when a read returns less than it
    /// asked for, so a call answered in lockstep costs one `recv`, not a
    /// second one that finds nothing.
    pub async fn receive<S: LineStream>(
        &mut self,
        stream: &mut S,
        shared: &Shared,
        entry: &Entry,
    ) -> Result<bool, End> {
        loop {
            if entry.evicted() {
                return Err(End::Evicted);
            }
            match entry.close_request() {
                Some(CloseRequest::InputBudget) => return Err(End::InputBudget),
                Some(CloseRequest::Shutdown) => self.closing = true,
                None => {}
            }
            if self.closing {
                // Read what has arrived, without waiting for more.
                return self.read_without_waiting(stream);
            }
            shared
                .registry
                .set_pending(entry, self.buf.len(), &shared.stats);
            let deadline = self.line_started.map(|t| t + shared.config.line_timeout);
            if self.buf.capacity() == 0 {
                // An idle connection holds no buffer: take one only once
                // something has arrived.
                tokio::select! {
                    biased;
                    () = asked(entry) => continue,
                    ready = stream.ready() => ready.map_err(|_| End::Done)?,
                    () = sleep_until(deadline) => return Err(End::LineTimeout),
                }
            }
            let room = self.reserve();
            // In order, without drawing a random number to pick the first:
            // a request of the registry before more input.
            tokio::select! {
                biased;
                // The registry wants something: look at the flags again.
                () = asked(entry) => {}
                // Cancel safe: when another branch wins, nothing was read.
                read = stream.read_buf(&mut self.buf) => {
                    return self.after_read(read, room);
                }
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
        if self.buf.capacity() - self.buf.len() < want / 4 {
            // Exactly: one read takes at most about `want`.
            self.buf.reserve_exact(want);
        }
        self.buf.capacity() - self.buf.len()
    }

    /// Reads what has arrived, without waiting (at shutdown).
    fn read_without_waiting<S: LineStream>(&mut self, stream: &S) -> Result<bool, End> {
        let room = self.reserve();
        match stream.read_now(&mut self.buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            read => self.after_read(read, room),
        }
    }

    fn after_read(&mut self, read: io::Result<usize>, room: usize) -> Result<bool, End> {
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

    /// The first `taken` bytes were handled (`taken` ends a line, or is 0):
    /// they go, and the incomplete line left, if any, is timed from now
    /// when it is a new one.
    pub fn consume(&mut self, taken: usize) {
        self.buf.drain(..taken);
        self.scanned = self.buf.len();
        if self.buf.is_empty() {
            self.line_started = None;
        } else if taken > 0 || self.line_started.is_none() {
            self.line_started = Some(Instant::now());
        }
    }

    /// With nothing held: a burst left a large buffer behind; don't keep it
    /// while idle. A small one stays, so that one call at a time allocates
    /// nothing.
    pub fn release(&mut self) {
        if self.buf.capacity() > SMALL_READ {
            self.buf = Vec::new();
            self.read_filled = false;
        }
    }
}

/// Ready when the registry has asked something of the connection.
async fn asked(entry: &Entry) {
    std::future::poll_fn(|cx| entry.poll_asked(cx, true)).await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
