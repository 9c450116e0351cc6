//! The arguments several commands share: the server's socket, and what
//! `hawkeye query` reads (its window read and its `--range` read, in
//! `range.rs`); `--tag` values, also taken by `hawkeye silence`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use hawkeye_protocol::jsonrpc::QueryParams;

#[derive(Debug, Args)]
pub struct SocketArg {
    /// The server's JSON-RPC socket.
    #[arg(long, env = "HAWKEYE_SOCKET", default_value = "/tmp/hawkeye.sock")]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// The metric name.
    pub metric: String,
    /// The window, ending now: `60s`, `5m`, `1h`, `7d`, or a number of
    /// seconds; up to the server's `HAWKEYE_ROLLUP_RETENTION` (35 days).
    #[arg(long, short, default_value = "60s")]
    pub window: String,
    /// The aggregation (default: the metric type's first, e.g. `sum` for counters):
    /// sum, rate, last, min, max, avg, p50, p90, p95, p99, count, unique.
    #[arg(long, short)]
    pub agg: Option<String>,
    /// Only series with this tag (`key=value`, repeatable); without it all
    /// series of the name are combined.
    #[arg(long = "tag", short = 't', value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// The metric type (c, g, ms, s), needed only when one name has several.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Read a range instead of one window: `1h`, `30m`, ending now; draws a
    /// sparkline with min, max and last (`metric.range`).
    #[arg(long, conflicts_with = "window")]
    pub range: Option<String>,
    /// With --range: one point per step (`1m`, `10s`); default: the range
    /// cut into about 60 steps.
    #[arg(long, requires = "range")]
    pub step: Option<String>,
    /// Print the server's JSON result.
    #[arg(long)]
    pub json: bool,
}

impl QueryArgs {
    /// The `metric.query` params over `window` (`metric.range` adds a step).
    pub(crate) fn params(&self, window: &str) -> QueryParams {
        let tags: BTreeMap<String, String> = self.tags.iter().cloned().collect();
        QueryParams {
            metric: self.metric.clone(),
            window: serde_json::Value::String(window.to_string()),
            agg: self.agg.clone(),
            tags: (!tags.is_empty()).then_some(tags),
            kind: self.kind.clone(),
        }
    }

    /// What is read, for the text output: `p95 of http.latency`.
    pub(crate) fn what(&self) -> String {
        match self.agg.as_deref() {
            Some(agg) => format!("{agg} of {}", self.metric),
            None => self.metric.clone(),
        }
    }
}

pub(crate) fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| format!("{s:?} is not key=value"))?;
    if k.is_empty() {
        return Err(format!("{s:?} has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_as_key_value() {
        assert_eq!(
            parse_tag("route=/a").unwrap(),
            ("route".into(), "/a".into())
        );
        assert_eq!(
            parse_tag("env:prod").unwrap(),
            ("env".into(), "prod".into())
        );
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("=x").is_err());
    }
}
