//! The protocol's functions on the server's per-call path: the metric line
//! parser and the JSON-RPC request reader (the general one and Go's fast
//! shape). Run: `cargo bench -p hawkeye-protocol --bench hot_paths`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hawkeye_protocol::jsonrpc::{go_handle_call, parse_incoming, string_items, Incoming};
use hawkeye_protocol::parse_line;
use std::hint::black_box;

fn lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_line");
    for (name, line) in [
        ("counter", "http.response.400:1|c"),
        (
            "timing_with_tags",
            "api.latency:12.5|ms|@0.5|#route:/checkout,method:GET,status:200",
        ),
        ("three_values", "api.latency:12.5:13:14.25|ms"),
    ] {
        group.bench_function(name, |b| b.iter(|| parse_line(black_box(line)).unwrap()));
    }
    group.finish();
}

fn requests(c: &mut Criterion) {
    let v2 =
        r#"{"jsonrpc":"2.0","method":"metric.send","params":["http.response.400:1|c"],"id":7}"#;
    let go = r#"{"method":"Metric.Handle","params":[{"Text":"http.response.400:1|c"}],"id":7}"#;
    let mut group = c.benchmark_group("jsonrpc_decode");
    group.bench_function("v2_metric_send", |b| {
        b.iter(|| match parse_incoming(black_box(v2), 1000) {
            Incoming::Single(r) => r.unwrap().params.map(|p| p.get().len()),
            _ => None,
        })
    });
    group.bench_function("go_handle_parser", |b| {
        b.iter(|| match parse_incoming(black_box(go), 1000) {
            Incoming::Single(r) => r.unwrap().params.map(|p| p.get().len()),
            _ => None,
        })
    });
    group.bench_function("go_handle_fast_path", |b| {
        b.iter(|| go_handle_call(black_box(go.as_bytes())).unwrap())
    });
    let batch: Vec<String> = (0..1000)
        .map(|i| format!("bench.batched:1|c|#s:{i}"))
        .collect();
    let batch =
        serde_json::json!({"jsonrpc": "2.0", "method": "metric.send", "params": batch}).to_string();
    group.throughput(Throughput::Elements(1000));
    group.bench_function("v2_metric_send_1000_lines", |b| {
        b.iter(|| match parse_incoming(black_box(&batch), 1000) {
            Incoming::Single(r) => string_items(r.unwrap().params.unwrap().get()).count(),
            _ => 0,
        })
    });
    group.finish();
}

criterion_group!(benches, lines, requests);
criterion_main!(benches);
