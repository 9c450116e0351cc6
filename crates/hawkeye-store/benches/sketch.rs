//! The distribution sketch: adding an observation (per timing event on the
//! server), merging two (per second read) and a quantile (per check).
//! Run: `cargo bench -p hawkeye-store --bench sketch`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hawkeye_store::sketch::Sketch;
use std::hint::black_box;

/// Latencies spread over three orders of magnitude, like a real endpoint's.
fn values(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 + (i as f64 * 7.919).sin().abs() * 10f64.powi((i % 4) as i32))
        .collect()
}

fn sketch(c: &mut Criterion) {
    let observed = values(1000);
    let mut group = c.benchmark_group("sketch");
    group.throughput(Throughput::Elements(observed.len() as u64));
    group.bench_function("add_1000", |b| {
        b.iter(|| {
            let mut s = Sketch::default();
            for v in &observed {
                s.add(black_box(*v), 1.0);
            }
            s
        })
    });
    group.throughput(Throughput::Elements(1));
    let mut full = Sketch::default();
    for v in &observed {
        full.add(*v, 1.0);
    }
    group.bench_function("merge", |b| {
        b.iter(|| {
            let mut s = full.clone();
            s.merge(black_box(&full));
            s
        })
    });
    group.bench_function("quantile_p99", |b| {
        b.iter(|| black_box(&full).quantile(0.99))
    });
    group.finish();
}

criterion_group!(benches, sketch);
criterion_main!(benches);
