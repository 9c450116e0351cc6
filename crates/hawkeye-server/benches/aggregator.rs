//! `Aggregator::apply`, the work done under the server's one lock per
//! event: an event for a series already held, and events each starting a
//! new series. Run: `cargo bench -p hawkeye-server --bench aggregator`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hawkeye_protocol::parse_line;
use hawkeye_server::aggregator::Aggregator;
use std::hint::black_box;

const NOW: i64 = 1_700_000_000;

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregator_apply");
    for (name, text) in [
        ("counter", "http.response.400:1|c"),
        (
            "timing_with_tags",
            "api.latency:12.5|ms|#route:/checkout,method:GET",
        ),
        ("gauge", "queue.depth:+3|g|#queue:mail"),
    ] {
        let line = parse_line(text).unwrap();
        let mut a = Aggregator::new(1_000_000, usize::MAX, 3600);
        group.bench_function(format!("existing_series/{name}"), |b| {
            b.iter(|| a.apply(black_box(&line), NOW).unwrap())
        });
    }
    let texts: Vec<String> = (0..10_000)
        .map(|i| format!("bench.series:1|c|#id:{i}"))
        .collect();
    let lines: Vec<_> = texts.iter().map(|t| parse_line(t).unwrap()).collect();
    group.bench_function("new_series_x10000", |b| {
        b.iter_batched(
            || Aggregator::new(1_000_000, usize::MAX, 3600),
            |mut a| {
                for line in &lines {
                    a.apply(line, NOW).unwrap();
                }
                a
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
