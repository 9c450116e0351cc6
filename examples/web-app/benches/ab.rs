//! `cargo bench -p web-app --bench ab`: ab's requests/s for an instrumented
//! route (`/ping`, through hawkeye's HTTP layer) and an uninstrumented one
//! (`/raw/ping`, same handler) of the same app, from one run.
//!
//! The app runs in this process with an embedded server (in-memory store,
//! no agent). Each round runs ab on both routes, alternating which goes
//! first; the figures are the medians over the rounds. Settings:
//! `BENCH_REQUESTS` (default 20000), `BENCH_CONCURRENCY` (50),
//! `BENCH_ROUNDS` (5).

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{ensure, Context};
use hawkeye_client::rpc::RpcConnection;
use hawkeye_protocol::jsonrpc::QueryParams;
use web_app::ab::run_ab;
use web_app::{App, AppConfig, Hawkeye};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let requests = env_u64("BENCH_REQUESTS", 20_000);
    let concurrency = env_u64("BENCH_CONCURRENCY", 50);
    let rounds = env_u64("BENCH_ROUNDS", 5).max(1);
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let app = runtime.block_on(App::start(AppConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        hawkeye: Hawkeye::Embedded(Box::new(
            hawkeye::embed::EmbedConfig::in_memory(dir.path().join("hawkeye.sock")).without_agent(),
        )),
        client: hawkeye_client::ClientConfig::default(),
    }))?;
    let base = format!("http://{}", app.local_addr());
    let instrumented = format!("{base}/ping");
    let raw = format!("{base}/raw/ping");
    println!("web-app bench: ab -n {requests} -c {concurrency}, {rounds} rounds, app at {base}");

    for keep_alive in [false, true] {
        let mode = if keep_alive {
            "ab -k (keep-alive)"
        } else {
            "ab (a connection per request)"
        };
        // Warm up both routes.
        run_ab(&instrumented, requests / 10, concurrency, keep_alive)?;
        run_ab(&raw, requests / 10, concurrency, keep_alive)?;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for instrumented_first in order {
                let (url, out) = if instrumented_first {
                    (&instrumented, &mut with)
                } else {
                    (&raw, &mut without)
                };
                let report = run_ab(url, requests, concurrency, keep_alive)?;
                ensure!(
                    report.failed == 0 && report.complete == requests,
                    "ab reported failures: {report:?}"
                );
                out.push(report.requests_per_second);
            }
        }
        let (w, wo) = (median(&mut with), median(&mut without));
        println!("{mode}:");
        println!("  instrumented   /ping      {w:>10.0} requests/s (median; rounds {with:.0?})");
        println!(
            "  uninstrumented /raw/ping  {wo:>10.0} requests/s (median; rounds {without:.0?})"
        );
        println!(
            "  instrumented / uninstrumented = {:.1}% (target >= 95%)",
            100.0 * w / wo
        );
    }

    // Every instrumented request was counted.
    let expected = 2 * (requests / 10 + rounds * requests);
    let socket = dir.path().join("hawkeye.sock");
    let counted = runtime.block_on(async {
        app.client().flush().await.context("flushing the client")?;
        let mut conn = RpcConnection::connect(&socket).await?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let result = conn
                .query(&QueryParams {
                    metric: "http.requests".into(),
                    window: serde_json::json!("1h"),
                    agg: Some("sum".into()),
                    tags: None,
                    kind: None,
                })
                .await?;
            let counted = result.value.unwrap_or(0.0) as u64;
            if counted >= expected || tokio::time::Instant::now() > deadline {
                return anyhow::Ok(counted);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })?;
    println!("http.requests counted by hawkeye: {counted} (requests sent to /ping: {expected})");
    runtime.block_on(app.shutdown());
    Ok(())
}
