//! `metric.send` and Go's `Metric.Handle`: metric lines in, what was taken
//! and what was refused out (docs/protocol.md, "Methods").
//!
//! `metric.send` takes each line on its own. Its lines are read from the
//! request's text one at a time, taken in chunks (one lock hold each, with
//! a yield between chunks), and its answer lists every refused line, written
//! out as it is produced: memory does not grow with the lines of a request,
//! beyond one byte per line refused after parsing. Lines refused by the
//! parser are not remembered but parsed again when the answer is written.
//!
//! `Metric.Handle` takes all of its lines or none, so that a Go client that
//! retries after an error counts nothing twice.

use std::borrow::Cow;

use hawkeye_protocol::jsonrpc::{
    self, array_items, code, params_object, string_items, Dialect, GoMetricArgs, MetricObject,
    Request, RpcError, SendResult,
};
use hawkeye_protocol::line::payload_lines;
use hawkeye_protocol::{parse_line_with, MetricLine};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::aggregator::Refusal;
use crate::ingest;
use crate::output::{Gone, Output};
use crate::shared::Shared;
use crate::stats::Stats;

/// Lines are taken in chunks of about this much text.
const CHUNK_BYTES: usize = 16 * 1024;

/// `metric.send` params, checked for shape, their arrays not yet read.
struct SendParams<'a> {
    lines: Option<&'a RawValue>,
    metrics: Option<&'a RawValue>,
}

/// `{"lines": [...], "metrics": [...]}` with the arrays left as text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendObject<'a> {
    #[serde(default, borrow)]
    lines: Option<&'a RawValue>,
    #[serde(default, borrow)]
    metrics: Option<&'a RawValue>,
}

/// One item of a call: the text of a line item (which may hold several
/// lines), a metric object written as a line, or an object that is not one.
enum Item<'a> {
    Text(Cow<'a, str>),
    Invalid(String),
}

/// What the ingest pass found.
#[derive(Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
    /// Refusals found after parsing, by line ordinal (0: none).
    refusals: Vec<u8>,
    /// The first rejection (by ordinal), for the error when nothing is taken.
    first: Option<(u32, RpcError)>,
}

impl Tally {
    fn reject(&mut self, ordinal: u32, error: impl FnOnce() -> RpcError) {
        self.rejected += 1;
        if self.first.as_ref().is_none_or(|(o, _)| ordinal < *o) {
            self.first = Some((ordinal, error()));
        }
    }

    fn refuse(&mut self, ordinal: u32, refusal: Refusal) {
        let i = ordinal as usize;
        if self.refusals.len() <= i {
            self.refusals.resize(i + 1, 0);
        }
        self.refusals[i] = refusal_code(refusal);
        self.reject(ordinal, || rejection_error(refusal));
    }

    fn refusal(&self, ordinal: u32, shared: &Shared) -> Option<Refusal> {
        let code = *self.refusals.get(ordinal as usize)?;
        Some(match code {
            1 => Refusal::TooManySeries(shared.config.max_series),
            2 => Refusal::BufferFull(shared.config.max_buffered),
            3 => Refusal::TimestampOutOfRange,
            4 => Refusal::OutOfRange,
            5 => Refusal::KeyBytesFull,
            _ => return None,
        })
    }
}

fn refusal_code(refusal: Refusal) -> u8 {
    match refusal {
        Refusal::TooManySeries(_) => 1,
        Refusal::BufferFull(_) => 2,
        Refusal::TimestampOutOfRange => 3,
        Refusal::OutOfRange => 4,
        Refusal::KeyBytesFull => 5,
    }
}

/// The error a refusal makes when it refuses a whole call.
pub(super) fn rejection_error(refusal: Refusal) -> RpcError {
    let code = match refusal {
        Refusal::TooManySeries(_) | Refusal::KeyBytesFull => code::TOO_MANY_SERIES,
        Refusal::BufferFull(_) => code::BUFFER_FULL,
        Refusal::TimestampOutOfRange | Refusal::OutOfRange => code::INVALID_PARAMS,
    };
    RpcError::new(code, refusal.to_string())
}

/// `metric.send`: `["line", ...]`, `{"lines": [...]}`, `{"metrics": [...]}`,
/// or either object wrapped in a one-element array.
pub(super) async fn metric_send(
    shared: &Shared,
    request: &Request<'_>,
    out: &mut Output<'_>,
) -> Result<(), Gone> {
    let params = match send_params(request.params) {
        Ok(p) => p,
        Err(e) => {
            if !request.is_notification() {
                jsonrpc::write_response::<()>(out.buf(), request.dialect(), request.id, &Err(e));
            }
            return Ok(());
        }
    };
    let tally = take_lines(shared, &params, out).await?;
    if request.is_notification() {
        return Ok(());
    }
    if tally.rejected == 0 {
        let result = SendResult {
            accepted: tally.accepted,
            rejected: Vec::new(),
        };
        jsonrpc::write_response(
            out.buf(),
            request.dialect(),
            request.id,
            &Ok::<_, RpcError>(result),
        );
        return Ok(());
    }
    answer_with_rejections(shared, request, &params, &tally, out).await
}

/// `{"lines": .., "metrics": ..}` from its text.
fn send_object(text: &str) -> Option<SendObject<'_>> {
    serde_json::from_str(text).ok()
}

fn send_params(params: Option<&RawValue>) -> Result<SendParams<'_>, RpcError> {
    let raw = params
        .ok_or_else(|| RpcError::invalid_params("params are required: an array of metric lines"))?;
    let shape = || {
        RpcError::invalid_params(
            "params must be an array of metric lines, {\"lines\": [...]} or {\"metrics\": [...]}",
        )
    };
    let text = raw.get().trim_start();
    let p = if text.starts_with('{') {
        send_object(raw.get()).ok_or_else(shape)?
    } else if text.starts_with('[') {
        let mut items = array_items(raw.get());
        match items.next() {
            // One object wrapped in an array, as Go and by-position callers send it.
            Some(Ok(first)) if first.get().starts_with('{') => {
                if items.next().is_some() {
                    return Err(shape());
                }
                send_object(first.get()).ok_or_else(shape)?
            }
            _ => SendObject {
                lines: Some(raw),
                metrics: None,
            },
        }
    } else {
        return Err(shape());
    };
    // Every item is checked before any is taken: a call with the wrong
    // shape is refused whole.
    // The params were read as JSON with the request: finding the strings is
    // a scan for quotes.
    let mut n = 0;
    for item in p.lines.map(|l| string_items(l.get())).into_iter().flatten() {
        item.map_err(|_| shape())?;
        n += 1;
    }
    for (i, item) in p
        .metrics
        .map(|m| array_items(m.get()))
        .into_iter()
        .flatten()
        .enumerate()
    {
        let raw = item.map_err(|_| shape())?;
        serde_json::from_str::<MetricObject>(raw.get())
            .map_err(|e| RpcError::invalid_params(format!("invalid params: metrics[{i}]: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(RpcError::invalid_params("no metric lines given"));
    }
    Ok(SendParams {
        lines: p.lines,
        metrics: p.metrics,
    })
}

/// The items of a call in order (plain lines, then objects), each with its
/// index in the call.
fn items<'a>(p: &SendParams<'a>) -> impl Iterator<Item = (usize, Item<'a>)> {
    let lines = p.lines.map(|l| string_items(l.get())).into_iter().flatten();
    let metrics = p
        .metrics
        .map(|m| array_items(m.get()))
        .into_iter()
        .flatten();
    lines
        .map(|text| match text {
            Ok(text) => Item::Text(text),
            // Ruled out by `send_params`.
            Err(_) => Item::Invalid("not a string".into()),
        })
        .chain(metrics.map(|raw| {
            let built = raw
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    serde_json::from_str::<MetricObject>(r.get()).map_err(|e| e.to_string())
                })
                .and_then(|m| m.to_line());
            match built {
                Ok(line) => Item::Text(Cow::Owned(line)),
                Err(e) => Item::Invalid(e),
            }
        }))
        .enumerate()
}

/// The ingest pass: every line parsed and taken (or refused), in order.
async fn take_lines<'a>(
    shared: &Shared,
    p: &SendParams<'a>,
    out: &mut Output<'_>,
) -> Result<Tally, Gone> {
    let mut tally = Tally::default();
    let mut chunk: Vec<(u32, MetricLine<'a>)> = Vec::new();
    let mut chunk_bytes = 0;
    let mut ordinal = 0u32;
    for (_, item) in items(p) {
        match item {
            Item::Text(Cow::Borrowed(text)) => {
                parse_into(shared, text, &mut ordinal, &mut chunk, &mut tally);
                chunk_bytes += text.len();
            }
            Item::Text(Cow::Owned(text)) => {
                // Its lines cannot outlive `text`: take them now, after
                // the lines before them.
                take(shared, &mut chunk, &mut tally);
                let mut own = Vec::new();
                parse_into(shared, &text, &mut ordinal, &mut own, &mut tally);
                take(shared, &mut own, &mut tally);
                chunk_bytes += text.len();
            }
            Item::Invalid(e) => {
                Stats::bump(&shared.stats.lines_rejected);
                tally.reject(ordinal, || RpcError::invalid_params(e));
                ordinal += 1;
            }
        }
        if chunk_bytes >= CHUNK_BYTES {
            take(shared, &mut chunk, &mut tally);
            out.progress(chunk_bytes).await?;
            chunk_bytes = 0;
        }
    }
    take(shared, &mut chunk, &mut tally);
    Ok(tally)
}

/// Parses the lines of one item's text into `parsed`, numbering them.
fn parse_into<'t>(
    shared: &Shared,
    text: &'t str,
    ordinal: &mut u32,
    parsed: &mut Vec<(u32, MetricLine<'t>)>,
    tally: &mut Tally,
) {
    for line in payload_lines(text) {
        match parse_line_with(line, &shared.config.line_limits) {
            Ok(l) => parsed.push((*ordinal, l)),
            Err(e) => {
                shared.stats.line_refused(&e);
                tally.reject(*ordinal, || RpcError::invalid_params(e.to_string()));
            }
        }
        *ordinal += 1;
    }
}

/// Takes the parsed lines of a chunk under one lock hold, and empties it.
fn take(shared: &Shared, chunk: &mut Vec<(u32, MetricLine<'_>)>, tally: &mut Tally) {
    let accepted = ingest::ingest_each(shared, chunk, |o, r| tally.refuse(o, r));
    tally.accepted += accepted;
    chunk.clear();
}

/// The answer when some lines were refused: a result listing them, or, when
/// none was taken, an error whose `data` lists them.
async fn answer_with_rejections(
    shared: &Shared,
    request: &Request<'_>,
    p: &SendParams<'_>,
    tally: &Tally,
    out: &mut Output<'_>,
) -> Result<(), Gone> {
    let dialect = request.dialect();
    if tally.accepted > 0 {
        jsonrpc::begin_result(out.buf(), dialect);
        out.buf().extend_from_slice(
            format!("{{\"accepted\":{},\"rejected\":", tally.accepted).as_bytes(),
        );
        write_rejections(shared, p, tally, out).await?;
        out.buf().push(b'}');
        jsonrpc::end_response(out.buf(), request.id);
        return Ok(());
    }
    let mut error = tally
        .first
        .as_ref()
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| RpcError::invalid_params("rejected"));
    if tally.rejected > 1 {
        error.message = format!(
            "{} (and {} more rejected lines)",
            error.message,
            tally.rejected - 1
        );
    }
    jsonrpc::begin_error(out.buf(), dialect);
    if dialect == Dialect::Go {
        // Go's dialect carries the message only.
        let _ = serde_json::to_writer(&mut *out.buf(), &error.message);
    } else {
        let head = format!("{{\"code\":{},\"message\":", error.code);
        out.buf().extend_from_slice(head.as_bytes());
        let _ = serde_json::to_writer(&mut *out.buf(), &error.message);
        out.buf()
            .extend_from_slice(b",\"data\":{\"accepted\":0,\"rejected\":");
        write_rejections(shared, p, tally, out).await?;
        out.buf().extend_from_slice(b"}}");
    }
    jsonrpc::end_response(out.buf(), request.id);
    Ok(())
}

/// Writes `[{"index": i, "error": "..."}, ...]`, one entry per refused
/// line, finding parse errors again by parsing.
async fn write_rejections(
    shared: &Shared,
    p: &SendParams<'_>,
    tally: &Tally,
    out: &mut Output<'_>,
) -> Result<(), Gone> {
    out.buf().push(b'[');
    let mut left = tally.rejected;
    let mut ordinal = 0u32;
    for (index, item) in items(p) {
        if left == 0 {
            break;
        }
        match item {
            Item::Text(text) => {
                for line in payload_lines(&text) {
                    let why = match tally.refusal(ordinal, shared) {
                        Some(refusal) => Some(refusal.to_string()),
                        None => parse_line_with(line, &shared.config.line_limits)
                            .err()
                            .map(|e| e.to_string()),
                    };
                    ordinal += 1;
                    if let Some(why) = why {
                        write_entry(out, &mut left, tally.rejected, index, &why);
                        out.progress(line.len()).await?;
                    }
                }
            }
            Item::Invalid(why) => {
                ordinal += 1;
                write_entry(out, &mut left, tally.rejected, index, &why);
            }
        }
    }
    out.buf().push(b']');
    Ok(())
}

fn write_entry(out: &mut Output<'_>, left: &mut usize, total: usize, index: usize, error: &str) {
    if *left < total {
        out.buf().push(b',');
    }
    *left -= 1;
    let entry = jsonrpc::Rejected {
        index,
        error: error.to_string(),
    };
    let _ = serde_json::to_writer(&mut *out.buf(), &entry);
}

/// `Metric.Handle` from Go's net/rpc: `[{"Text": "line"}]`, result `0`.
/// All lines of the text or none.
pub(super) fn go_handle(shared: &Shared, params: Option<&RawValue>) -> Result<(), RpcError> {
    let args: GoMetricArgs = params_object(params)?;
    go_handle_text(shared, &args.text)
}

/// `Metric.Handle` with its text read: all lines of it or none.
pub(super) fn go_handle_text(shared: &Shared, text: &str) -> Result<(), RpcError> {
    let max = shared.config.max_batch;
    let bytes = text.as_bytes();
    // A text that begins with a visible ASCII byte (as a metric line does)
    // is not blank: `trim` decodes characters to find out. And a line of a
    // few tens of bytes is searched faster by core's plain loop than by
    // memchr's vector code, which pays to set up.
    let blank = || !bytes.first().is_some_and(u8::is_ascii_graphic) && text.trim().is_empty();
    if max >= 1 && !bytes.contains(&b'\n') && !blank() {
        // One event per call, as most Go clients send: no list to build.
        let line = parse_go_line(shared, text, 1)?;
        return ingest::ingest_all(shared, std::slice::from_ref(&line)).map_err(rejection_error);
    }
    if payload_lines(text).next().is_none() {
        return Err(RpcError::invalid_params("empty metric text"));
    }
    let count = payload_lines(text).take(max + 1).count();
    if count > max {
        Stats::bump(&shared.stats.batches_refused);
        return Err(RpcError::invalid_params(format!(
            "too many lines: a Metric.Handle text holds at most {max} (HAWKEYE_MAX_BATCH); nothing was taken"
        )));
    }
    let lines = payload_lines(text)
        .map(|line| parse_go_line(shared, line, count))
        .collect::<Result<Vec<_>, _>>()?;
    ingest::ingest_all(shared, &lines).map_err(rejection_error)
}

/// Parses one line of a `Metric.Handle` text of `count` lines; when it is
/// refused, so are all the others.
fn parse_go_line<'t>(
    shared: &Shared,
    line: &'t str,
    count: usize,
) -> Result<MetricLine<'t>, RpcError> {
    parse_line_with(line, &shared.config.line_limits).map_err(|e| {
        shared.stats.line_refused(&e);
        Stats::add(&shared.stats.lines_rejected, count as u64 - 1);
        RpcError::invalid_params(e.to_string())
    })
}
