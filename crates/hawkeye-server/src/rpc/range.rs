//! `metric.range`: one metric's window cut into steps, one value per step,
//! read from the store after everything the server holds is written
//! (docs/protocol.md, "metric.range").

use hawkeye_protocol::jsonrpc::{
    params_object, QueryParams, RangeParams, RangeResult, RpcError, RANGE_DEFAULT_POINTS,
};
use hawkeye_store::{RangeQuery, MAX_RANGE_POINTS};
use serde_json::value::RawValue;

use super::query::{seconds_param, store_unavailable, window_query};
use crate::clock::now_secs;
use crate::shared::Shared;

pub(super) async fn range(
    shared: &Shared,
    params: Option<&RawValue>,
) -> Result<RangeResult, RpcError> {
    let p: RangeParams = params_object(params)?;
    let range = range_query(p, shared.config.rollup_retention.as_secs(), now_secs())?;
    // As `metric.query`: everything accepted before this call is written first.
    shared.flush().await.map_err(store_unavailable)?;
    let points = shared
        .store
        .query_range(&range)
        .await
        .map_err(store_unavailable)?
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    Ok(RangeResult {
        points,
        step_secs: range.step_secs,
    })
}

/// Builds the store's range read from `metric.range` params; refuses a
/// range of more than [`MAX_RANGE_POINTS`] steps before anything is read.
fn range_query(p: RangeParams, longest_secs: u64, now: i64) -> Result<RangeQuery, RpcError> {
    let window = QueryParams {
        metric: p.metric,
        window: p.window,
        agg: p.agg,
        tags: p.tags,
        kind: p.kind,
    };
    let query = window_query(&window, longest_secs, now)?;
    let step_secs = match &p.step {
        Some(step) => seconds_param("step", step)?,
        None => query.window_secs.div_ceil(RANGE_DEFAULT_POINTS),
    };
    if step_secs < 1 {
        return Err(RpcError::invalid_params("step: must be at least 1s"));
    }
    let range = RangeQuery { query, step_secs };
    let points = range.points();
    if points > MAX_RANGE_POINTS {
        return Err(RpcError::invalid_params(format!(
            "step: the window holds {points} steps of {step_secs}s, more than the {MAX_RANGE_POINTS} points a range returns; use a step of at least {}s",
            range.query.window_secs.div_ceil(MAX_RANGE_POINTS - 1)
        )));
    }
    Ok(range)
}
