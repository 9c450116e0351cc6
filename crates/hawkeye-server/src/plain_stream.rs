//! A stream connection carrying plain statsd/DogStatsD lines, one per `\n`,
//! with no answers: every connection of the TCP listener
//! (`HAWKEYE_TCP_ADDR`), and a client of the JSON-RPC stream socket whose
//! first bytes are not JSON (docs/protocol.md, "Plain lines on a stream").
//!
//! The lines are taken as a datagram's are ([`statsd_lines`]); the
//! connection obeys the stream socket's bounds ([`StreamInput`]), so a
//! line longer than `HAWKEYE_MAX_LINE_BYTES` or left incomplete past
//! `HAWKEYE_LINE_TIMEOUT` closes it (silently: it is never answered). As
//! nothing is written back, a client that never reads holds nothing.

use std::sync::Arc;

use tracing::debug;

use crate::pace::Pacer;
use crate::registry::Entry;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::statsd_lines::{self, Listener};
use crate::stream_input::{End, LineStream, Open, StreamInput};

/// Serves a new connection of the TCP listener.
pub(crate) async fn serve<S: LineStream>(shared: Arc<Shared>, stream: S, entry: Arc<Entry>) {
    let open = Open::new(&shared, entry);
    serve_open(
        &shared,
        stream,
        open.entry(),
        StreamInput::default(),
        Listener::Tcp,
    )
    .await;
}

/// Serves a connection already counted as open, with what was read of it.
pub(crate) async fn serve_open<S: LineStream>(
    shared: &Shared,
    mut stream: S,
    entry: &Entry,
    mut input: StreamInput,
    listener: Listener,
) {
    let mut pacer = Pacer::default();
    let mut eof = false;
    let end = loop {
        if let Err(end) = take(shared, &mut input, eof, listener, &mut pacer).await {
            break end;
        }
        if eof || input.closing {
            break End::Done;
        }
        if input.buf.is_empty() {
            entry.end_work(&shared.registry);
            input.release();
        }
        eof = match input.receive(&mut stream, shared, entry).await {
            Ok(eof) => eof,
            Err(end) => break end,
        };
        if !entry.begin_work() {
            // Closed to admit another client: what it sent whole is taken
            // (it is never told, and could not send it again).
            let _ = take(shared, &mut input, false, listener, &mut pacer).await;
            break End::Evicted;
        }
    };
    closed(shared, end, listener);
}

/// Takes the complete lines read (all of it at the end of the stream).
/// `Err` when a line is longer than `HAWKEYE_MAX_LINE_BYTES`: the lines
/// before it are taken, it and the rest of the connection are not.
async fn take(
    shared: &Shared,
    input: &mut StreamInput,
    eof: bool,
    listener: Listener,
    pacer: &mut Pacer,
) -> Result<(), End> {
    let max_line = shared.config.max_line_bytes;
    // Only the bytes read since the last look can hold a newline: a line
    // trickling in a byte at a time is not searched again and again.
    let complete = if eof {
        input.buf.len()
    } else {
        memchr::memrchr(b'\n', &input.buf[input.scanned..]).map_or(0, |i| input.scanned + i + 1)
    };
    let mut start = 0;
    let mut too_long = false;
    for end in memchr::memchr_iter(b'\n', &input.buf[..complete]).chain([complete]) {
        if end.saturating_sub(start) > max_line {
            too_long = true;
            break;
        }
        start = end + 1;
    }
    let good = if too_long { start } else { complete };
    statsd_lines::take_lines(shared, &input.buf[..good], listener, pacer).await;
    input.consume(good);
    if too_long || input.buf.len() > max_line {
        let reason = format!(
            "line longer than HAWKEYE_MAX_LINE_BYTES ({max_line}); the connection is closed"
        );
        shared
            .reject_log(listener)
            .rejected_bytes(&reason, &input.buf);
        return Err(End::LineTooLong);
    }
    Ok(())
}

/// Counts why the server closed a connection, if it did. Nothing is said
/// to the client: it reads no answers.
fn closed(shared: &Shared, end: End, listener: Listener) {
    let stats = &shared.stats;
    match end {
        End::LineTooLong => {
            Stats::bump(&stats.connections_closed_line_too_long);
            Stats::bump(&stats.lines_rejected);
        }
        End::LineTimeout => Stats::bump(&stats.connections_closed_line_timeout),
        End::InputBudget => Stats::bump(&stats.connections_closed_input_budget),
        // Counted by the registry when it chose this connection.
        End::Evicted | End::Done | End::PlainLines => return,
    }
    debug!(listener = listener.name(), reason = ?end, "closing a plain-line connection");
}
