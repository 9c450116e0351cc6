//! Answering one line of JSON-RPC: a request, a notification or a batch, in
//! either dialect (docs/protocol.md). Answers go to the connection's
//! [`Output`], a batch's one item at a time, so that an answer is never
//! held whole in memory.

mod query;
mod range;
mod send;

use hawkeye_protocol::jsonrpc::{
    self, code, method, Batch, Dialect, GoHandleCall, Incoming, Request, RpcError, StatsResult,
};
use serde::Serialize;

use crate::output::{Gone, Output};
use crate::shared::Shared;
use crate::stats::Stats;

/// A successful result of the methods answered in one piece.
#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    Zero(u8),
    Text(&'static str),
    Query(jsonrpc::QueryResult),
    Range(jsonrpc::RangeResult),
    Stats(StatsResult),
}

/// Handles one line (without its newline) and appends the response, if
/// any, to `out`.
pub(crate) async fn answer_line(
    shared: &Shared,
    line: &[u8],
    out: &mut Output<'_>,
) -> Result<(), Gone> {
    if let Some(call) = jsonrpc::go_handle_call(line) {
        answer_go_call(shared, &call, out.buf());
        return Ok(());
    }
    let Ok(text) = std::str::from_utf8(line) else {
        let e = RpcError::new(
            code::PARSE_ERROR,
            "parse error: the line is not valid UTF-8",
        );
        jsonrpc::write_response::<()>(out.buf(), Dialect::V2, None, &Err(e));
        return Ok(());
    };
    if text.trim().is_empty() {
        return Ok(());
    }
    match jsonrpc::parse_incoming(text, shared.config.max_batch) {
        Incoming::Invalid(e) | Incoming::Single(Err(e)) => {
            jsonrpc::write_response::<()>(out.buf(), Dialect::V2, None, &Err(e));
            Ok(())
        }
        Incoming::BatchTooLarge(e) => {
            Stats::bump(&shared.stats.batches_refused);
            jsonrpc::write_response::<()>(out.buf(), Dialect::V2, None, &Err(e));
            Ok(())
        }
        Incoming::Single(Ok(request)) => answer_request(shared, &request, out).await,
        Incoming::Batch(batch) => answer_batch(shared, &batch, out).await,
    }
}

/// Answers Go's one-event call (`Metric.Handle`, found by
/// [`jsonrpc::go_handle_call`] without a JSON parser, nor a UTF-8 check of
/// more than its text), appending the response to `out`.
pub(crate) fn answer_go_call(shared: &Shared, call: &GoHandleCall<'_>, out: &mut Vec<u8>) {
    match send::go_handle_text(shared, call.text) {
        Ok(()) => jsonrpc::write_go_zero(out, call.id),
        Err(e) => jsonrpc::write_response_id::<()>(out, Dialect::Go, call.id, &Err(e)),
    }
}

/// Answers a batch item by item; the answer is one JSON array on one line,
/// written out in pieces when it grows past the output bound. A batch of
/// notifications only gets no answer at all.
async fn answer_batch(
    shared: &Shared,
    batch: &Batch<'_>,
    out: &mut Output<'_>,
) -> Result<(), Gone> {
    let mut opened = false;
    for item in batch.requests() {
        out.separate_next(if opened { b',' } else { b'[' });
        match item {
            Ok(request) => answer_request(shared, &request, out).await?,
            Err(e) => jsonrpc::write_response::<()>(out.buf(), Dialect::V2, None, &Err(e)),
        }
        if out.separator_used() {
            opened = true;
            // Each response ends with '\n'; inside the array a comma separates them.
            let newline = out.buf().pop();
            debug_assert_eq!(newline, Some(b'\n'));
        }
        out.progress(64).await?;
    }
    // The last item may have been a notification.
    out.clear_separator();
    if opened {
        out.buf().extend_from_slice(b"]\n");
    }
    Ok(())
}

async fn answer_request(
    shared: &Shared,
    request: &Request<'_>,
    out: &mut Output<'_>,
) -> Result<(), Gone> {
    let outcome = match request.method.as_ref() {
        method::SEND => return send::metric_send(shared, request, out).await,
        method::GO_HANDLE => send::go_handle(shared, request.params).map(|()| Reply::Zero(0)),
        method::QUERY => query::query(shared, request.params).await.map(Reply::Query),
        method::RANGE => range::range(shared, request.params).await.map(Reply::Range),
        method::PING => Ok(Reply::Text("pong")),
        method::STATS => Ok(Reply::Stats(shared.stats.snapshot())),
        other => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!(
                "method {other:?} not found (methods: metric.send, Metric.Handle, metric.query, metric.range, server.ping, server.stats)"
            ),
        )),
    };
    if !request.is_notification() {
        jsonrpc::write_response(out.buf(), request.dialect(), request.id, &outcome);
    }
    Ok(())
}
