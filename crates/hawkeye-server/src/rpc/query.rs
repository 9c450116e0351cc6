//! `metric.query`: one metric's window, read from the store after
//! everything the server holds is written (docs/protocol.md, "Methods").

use hawkeye_protocol::jsonrpc::{code, params_object, QueryParams, QueryResult, RpcError};
use hawkeye_protocol::{parse_duration, MetricKind, PlainUnit, TagFilter};
use hawkeye_store::window::{Aggregation, WindowQuery};
use serde_json::value::RawValue;

use crate::clock::now_secs;
use crate::shared::Shared;

pub(super) async fn query(
    shared: &Shared,
    params: Option<&RawValue>,
) -> Result<QueryResult, RpcError> {
    let p: QueryParams = params_object(params)?;
    let query = window_query(&p, shared.config.rollup_retention.as_secs(), now_secs())?;
    // Everything accepted before this call is written first, so a query
    // sees every event its caller was answered for.
    shared.flush().await.map_err(store_unavailable)?;
    let value = shared
        .store
        .query(&query)
        .await
        .map_err(store_unavailable)?
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    Ok(QueryResult {
        value,
        window_secs: query.window_secs,
    })
}

/// -32003: the store could not be written (the flush before a read) or read.
pub(super) fn store_unavailable(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(code::STORE_UNAVAILABLE, e.to_string())
}

/// A duration param (`window`, `step`): `"60s"`, `"5m"`, or a number of
/// seconds; whole seconds.
pub(super) fn seconds_param(what: &str, value: &serde_json::Value) -> Result<u64, RpcError> {
    let duration = match value {
        serde_json::Value::String(s) => parse_duration(s, PlainUnit::Seconds)
            .map_err(|e| RpcError::invalid_params(format!("{what}: {e}")))?,
        serde_json::Value::Number(n) => n
            .as_f64()
            .and_then(|n| hawkeye_protocol::duration::from_number(n, PlainUnit::Seconds))
            .ok_or_else(|| {
                RpcError::invalid_params(format!("{what}: must be a number of seconds >= 0"))
            })?,
        other => {
            return Err(RpcError::invalid_params(format!(
                "{what}: expected \"60s\" or a number of seconds, got {other}"
            )))
        }
    };
    Ok(duration.as_secs())
}

/// Builds the store query from `metric.query` params.
pub(super) fn window_query(
    p: &QueryParams,
    longest_secs: u64,
    now: i64,
) -> Result<WindowQuery, RpcError> {
    hawkeye_protocol::line::check_name(&p.metric)
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    let window_secs = seconds_param("window", &p.window)?;
    // Windows reach as far back as the rollups (docs/protocol.md, "Methods").
    if window_secs < 1 || window_secs > longest_secs {
        return Err(RpcError::invalid_params(format!(
            "window: must be between 1s and the rollup retention ({longest_secs}s, HAWKEYE_ROLLUP_RETENTION)"
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
