//! One stream connection: newline-delimited JSON-RPC (docs/protocol.md).
//! A connection whose first bytes are not JSON (not `{` or `[` after white
//! space) is a statsd client writing plain lines: it is handed to
//! [`plain_stream`], which answers nothing.
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

use hawkeye_protocol::jsonrpc::{self, code, Dialect, RpcError};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tracing::debug;

use crate::output::{closed_for_budget, Gone, Output};
use crate::pace::Pacer;
use crate::plain_stream;
use crate::registry::Entry;
use crate::rpc;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::statsd_lines::Listener;
use crate::stream_input::{End, Open, StreamInput, SMALL_READ};

struct Connection<'a> {
    shared: &'a Shared,
    entry: &'a Entry,
    stream: UnixStream,
    input: StreamInput,
    output: Vec<u8>,
    /// The first bytes were JSON: this is a JSON-RPC connection.
    json: bool,
    /// Handed over by the lockstep lane.
    handed: bool,
    pacer: Pacer,
}

/// What a connection brings when the lockstep lane hands it over: input
/// read and not answered (from the first byte of a line), answers not yet
/// written, and whether its first bytes were JSON.
#[derive(Default)]
pub(crate) struct Held {
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    pub json: bool,
}

/// Serves a connection already counted as open: a new one, or one handed
/// over by the lockstep lane with what it holds.
pub(crate) async fn serve_open(open: Open, stream: UnixStream, held: Option<Held>) {
    let handed = held.is_some();
    let held = held.unwrap_or_default();
    let (shared, entry) = (open.shared(), open.entry());
    let mut input = StreamInput::default();
    input.buf = held.input;
    let mut conn = Connection {
        shared,
        entry,
        stream,
        input,
        output: held.output,
        json: held.json,
        handed,
        pacer: Pacer::default(),
    };
    let end = conn.run().await;
    if end == End::PlainLines {
        let Connection { stream, input, .. } = conn;
        plain_stream::serve_open(shared, stream, entry, input, Listener::UnixStream).await;
        return;
    }
    conn.goodbye(end);
}

impl Connection<'_> {
    async fn run(&mut self) -> End {
        if self.handed {
            if let Err(end) = self.writable_at_first().await {
                return end;
            }
        }
        // Handed over with input or answers held: those come first.
        let mut held = !self.input.buf.is_empty() || !self.output.is_empty();
        loop {
            let eof = if std::mem::take(&mut held) {
                false
            } else {
                let received = self
                    .input
                    .receive(&mut self.stream, self.shared, self.entry)
                    .await;
                match received {
                    Ok(eof) => eof,
                    Err(end) => return end,
                }
            };
            if !self.json {
                match first_byte(&self.input.buf) {
                    Some(b'{' | b'[') => self.json = true,
                    // Not JSON: a statsd client writing plain lines, as
                    // it would on a datagram socket. No answers for it.
                    Some(_) => return End::PlainLines,
                    None => {}
                }
            }
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
            if eof || self.input.closing {
                return End::Done;
            }
            self.settle();
        }
    }

    /// Waits until the runtime knows the socket of a connection handed
    /// over by the lane to be writable: until its reactor has said so,
    /// tokio takes a write for one that would block, so the answers held
    /// would wait as for a client that does not read, and the word of
    /// goodbye to one closed to admit a client would be lost. A client
    /// that does not read is waited for as [`Output`] waits for it.
    async fn writable_at_first(&mut self) -> Result<(), End> {
        tokio::select! {
            biased;
            ready = self.stream.writable() => ready.map_err(|_| End::Done),
            () = closed_for_budget(self.entry) => Err(if self.entry.evicted() {
                End::Evicted
            } else {
                End::InputBudget
            }),
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
            pacer,
            ..
        } = self;
        let StreamInput { buf, scanned, .. } = input;
        let max_line = shared.config.max_line_bytes;
        let mut out = Output::new(shared, stream, output, pacer, entry, buf.len());
        let mut start = 0;
        let mut too_long = false;
        while let Some(pos) = memchr::memchr(b'\n', &buf[*scanned..]) {
            let end = *scanned + pos;
            if end - start > max_line {
                too_long = true;
                break;
            }
            rpc::answer_line(shared, &buf[start..end], &mut out).await?;
            out.progress(end + 1 - start).await?;
            start = end + 1;
            *scanned = start;
        }
        if eof && !too_long && start < buf.len() && buf.len() - start <= max_line {
            // A last line without its newline, before the client's end of
            // the stream, is still a line.
            rpc::answer_line(shared, &buf[start..], &mut out).await?;
            start = buf.len();
        }
        input.consume(start);
        out.write_out().await?;
        if too_long || input.buf.len() > max_line {
            return Ok(Some(End::LineTooLong));
        }
        Ok(None)
    }

    /// After a read is answered: a connection with nothing held is idle.
    fn settle(&mut self) {
        if !self.input.buf.is_empty() || !self.output.is_empty() {
            return;
        }
        self.entry.end_work(&self.shared.registry);
        // A burst left large buffers behind; don't keep them while idle.
        self.input.release();
        if self.output.capacity() > SMALL_READ {
            self.output = Vec::new();
        }
    }

    /// Tells the client why the server closes the connection, if it did.
    /// Best effort: a client that does not read is not waited for.
    fn goodbye(&mut self, end: End) {
        if let Some(line) = goodbye_line(self.shared, end) {
            let _ = self.stream.try_write(&line);
        }
    }
}

/// The answer that tells a client why the server closes its connection
/// (counted in the stats), or `None` when the server says nothing.
pub(crate) fn goodbye_line(shared: &Shared, end: End) -> Option<Vec<u8>> {
    let config = &shared.config;
    let stats = &shared.stats;
    let error = match end {
        End::Done | End::PlainLines => return None,
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
    Some(line)
}

/// The first byte that is not white space, if one has arrived.
pub(crate) fn first_byte(input: &[u8]) -> Option<u8> {
    input.iter().copied().find(|b| !b.is_ascii_whitespace())
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
