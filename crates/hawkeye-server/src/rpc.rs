//! Answering one line of JSON-RPC: a request, a notification or a batch, in
//! either dialect. Responses are appended to the connection's output buffer.

use hawkeye_protocol::jsonrpc::{
    self, code, method, params_object, Dialect, GoMetricArgs, Incoming, LineText, QueryParams,
    QueryResult, Rejected, Request, RpcError, SendObject, SendResult,
};
use hawkeye_protocol::{parse_duration, parse_payload, MetricKind, PlainUnit, TagFilter};
use hawkeye_store::window::{Aggregation, WindowQuery};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::aggregator::Refusal;
use crate::ingest::{Ingested, Rejection};
use crate::shared::{now_secs, Shared};
use crate::stats::Stats;

/// A successful result of any method.
#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    Send(SendResult),
    Zero(u8),
    Text(&'static str),
    Query(QueryResult),
    Stats(jsonrpc::StatsResult),
}

impl Shared {
    /// Handles one line (without its newline) and appends the response, if
    /// any, to `out`.
    pub async fn answer_line(&self, line: &[u8], out: &mut Vec<u8>) {
        let Ok(text) = std::str::from_utf8(line) else {
            let e = RpcError::new(
                code::PARSE_ERROR,
                "parse error: the line is not valid UTF-8",
            );
            jsonrpc::write_response::<()>(out, Dialect::V2, None, &Err(e));
            return;
        };
        if text.trim().is_empty() {
            return;
        }
        match jsonrpc::parse_incoming(text) {
            Incoming::Invalid(e) | Incoming::Single(Err(e)) => {
                jsonrpc::write_response::<()>(out, Dialect::V2, None, &Err(e));
            }
            Incoming::Single(Ok(request)) => self.answer_request(&request, out).await,
            Incoming::Batch(items) => {
                let mut responses: Vec<u8> = Vec::new();
                for item in items {
                    let before = responses.len();
                    match item {
                        Ok(request) => self.answer_request(&request, &mut responses).await,
                        Err(e) => jsonrpc::write_response::<()>(
                            &mut responses,
                            Dialect::V2,
                            None,
                            &Err(e),
                        ),
                    }
                    if responses.len() > before {
                        // Each response ends with '\n'; inside the array a comma separates them.
                        responses.pop();
                        responses.push(b',');
                    }
                }
                if responses.pop().is_some() {
                    out.push(b'[');
                    out.extend_from_slice(&responses);
                    out.extend_from_slice(b"]\n");
                }
            }
        }
    }

    async fn answer_request(&self, request: &Request<'_>, out: &mut Vec<u8>) {
        let dialect = request.dialect();
        let outcome = self.call(request).await;
        if !request.is_notification() {
            jsonrpc::write_response(out, dialect, request.id, &outcome);
        }
    }

    async fn call(&self, request: &Request<'_>) -> Result<Reply, RpcError> {
        match request.method.as_ref() {
            method::SEND => self.send(request.params).map(Reply::Send),
            method::GO_HANDLE => self.go_handle(request.params).map(|()| Reply::Zero(0)),
            method::QUERY => self.query(request.params).await.map(Reply::Query),
            method::PING => Ok(Reply::Text("pong")),
            method::STATS => Ok(Reply::Stats(self.stats.snapshot())),
            other => Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!(
                    "method {other:?} not found (methods: metric.send, Metric.Handle, metric.query, server.ping, server.stats)"
                ),
            )),
        }
    }

    /// `metric.send`: `["line", ...]`, `{"lines": [...]}`, `{"metrics": [...]}`,
    /// or either object wrapped in a one-element array.
    fn send(&self, params: Option<&RawValue>) -> Result<SendResult, RpcError> {
        let raw = params.ok_or_else(|| {
            RpcError::invalid_params("params are required: an array of metric lines")
        })?;
        let object = match serde_json::from_str::<Vec<LineText>>(raw.get()) {
            Ok(lines) => SendObject { lines, metrics: Vec::new() },
            Err(_) => params_object::<SendObject>(Some(raw)).map_err(|_| {
                RpcError::invalid_params(
                    "params must be an array of metric lines, {\"lines\": [...]} or {\"metrics\": [...]}",
                )
            })?,
        };
        if object.lines.is_empty() && object.metrics.is_empty() {
            return Err(RpcError::invalid_params("no metric lines given"));
        }
        // Objects become lines (indexed after the plain lines) or rejections.
        let offset = object.lines.len();
        let mut built: Vec<(usize, String)> = Vec::new();
        let mut bad_objects: Vec<Rejected> = Vec::new();
        for (i, m) in object.metrics.iter().enumerate() {
            match m.to_line() {
                Ok(line) => built.push((offset + i, line)),
                Err(error) => bad_objects.push(Rejected {
                    index: offset + i,
                    error,
                }),
            }
        }
        let lines = object
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.0.as_ref()))
            .chain(built.iter().map(|(i, line)| (*i, line.as_str())));
        let ingested = self.ingest(
            lines.flat_map(|(i, text)| parse_payload(text).map(move |(_, parsed)| (i, parsed))),
        );
        send_result(ingested, bad_objects)
    }

    /// `Metric.Handle` from Go's net/rpc: `[{"Text": "line"}]`, result `0`.
    fn go_handle(&self, params: Option<&RawValue>) -> Result<(), RpcError> {
        let args: GoMetricArgs = params_object(params)?;
        // All lines or none: an error must mean nothing was counted, or a
        // client that retries would count the good lines twice.
        let lines: Vec<_> = parse_payload(&args.text).collect();
        if lines.is_empty() {
            return Err(RpcError::invalid_params("empty metric text"));
        }
        if let Some((_, Err(e))) = lines.iter().find(|(_, l)| l.is_err()) {
            let error = rejection_error(&Rejection::Line(e.clone()));
            Stats::add(&self.stats.lines_rejected, lines.len() as u64);
            return Err(error);
        }
        let ingested = self.ingest(lines);
        match ingested.rejected.into_iter().next() {
            None => Ok(()),
            Some((_, rejection)) => Err(rejection_error(&rejection)),
        }
    }

    async fn query(&self, params: Option<&RawValue>) -> Result<QueryResult, RpcError> {
        let p: QueryParams = params_object(params)?;
        let query = window_query(&p, self.config.retention.as_secs(), now_secs())?;
        // Everything accepted before this call is written first, so a query
        // sees every event its caller was answered for.
        self.flush()
            .await
            .map_err(|e| RpcError::new(code::STORE_UNAVAILABLE, e.to_string()))?;
        let value = self
            .store
            .query(&query)
            .await
            .map_err(|e| RpcError::new(code::STORE_UNAVAILABLE, e.to_string()))?
            .map_err(|e| RpcError::invalid_params(e.to_string()))?;
        Ok(QueryResult {
            value,
            window_secs: query.window_secs,
        })
    }
}

fn rejection_error(rejection: &Rejection) -> RpcError {
    let code = match rejection {
        Rejection::Refused(Refusal::TooManySeries(_)) => code::TOO_MANY_SERIES,
        Rejection::Refused(Refusal::BufferFull(_)) => code::BUFFER_FULL,
        _ => code::INVALID_PARAMS,
    };
    RpcError::new(code, rejection.to_string())
}

/// A result when anything was taken; an error (with every rejection in
/// `data`) when nothing was.
fn send_result(ingested: Ingested, bad_objects: Vec<Rejected>) -> Result<SendResult, RpcError> {
    let first_error = ingested.rejected.first().map(|(_, r)| rejection_error(r));
    let mut rejected: Vec<Rejected> = ingested
        .rejected
        .into_iter()
        .map(|(index, r)| Rejected {
            index,
            error: r.to_string(),
        })
        .chain(bad_objects)
        .collect();
    rejected.sort_by_key(|r| r.index);
    if ingested.accepted > 0 || rejected.is_empty() {
        return Ok(SendResult {
            accepted: ingested.accepted,
            rejected,
        });
    }
    let mut error =
        first_error.unwrap_or_else(|| RpcError::invalid_params(rejected[0].error.clone()));
    if rejected.len() > 1 {
        error.message = format!(
            "{} (and {} more rejected lines)",
            error.message,
            rejected.len() - 1
        );
    }
    Err(error.with_data(serde_json::json!({ "accepted": 0, "rejected": rejected })))
}

/// Builds the store query from `metric.query` params.
pub(crate) fn window_query(
    p: &QueryParams,
    retention_secs: u64,
    now: i64,
) -> Result<WindowQuery, RpcError> {
    hawkeye_protocol::line::check_name(&p.metric)
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    let window = match &p.window {
        serde_json::Value::String(s) => parse_duration(s, PlainUnit::Seconds)
            .map_err(|e| RpcError::invalid_params(format!("window: {e}")))?,
        serde_json::Value::Number(n) => n
            .as_f64()
            .and_then(|n| hawkeye_protocol::duration::from_number(n, PlainUnit::Seconds))
            .ok_or_else(|| RpcError::invalid_params("window: must be a number of seconds >= 0"))?,
        other => {
            return Err(RpcError::invalid_params(format!(
                "window: expected \"60s\" or a number of seconds, got {other}"
            )))
        }
    };
    let window_secs = window.as_secs();
    if window_secs < 1 || window_secs > retention_secs {
        return Err(RpcError::invalid_params(format!(
            "window: must be between 1s and the retention ({retention_secs}s)"
        )));
    }
    let aggregation = p
        .agg
        .as_deref()
        .map(str::parse::<Aggregation>)
        .transpose()
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    let kind = p
        .kind
        .as_deref()
        .map(|t| {
            MetricKind::from_statsd(t).ok_or_else(|| {
                RpcError::invalid_params(format!("type {t:?}: expected c, g, ms, h, d or s"))
            })
        })
        .transpose()?;
    Ok(WindowQuery {
        name: p.metric.clone(),
        kind,
        tags: TagFilter(p.tags.clone().unwrap_or_default()),
        aggregation,
        window_secs,
        end: now,
        stale_after: None,
    })
}
