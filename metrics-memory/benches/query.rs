//! `cargo bench -p metrics-memory --bench query`: a query by name
//! (`timing_stats`) with 10,000 series registered, of which 10 are the
//! timer asked about.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;

use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;
use metrics_protocol::app::MetricsAggregator;

fn query(c: &mut Criterion) {
    let m = Arc::new(MemoryMetrics::new());
    let w = Metrics::new(m.clone());
    for i in 0..9_990 {
        let v = (i % 100).to_string();
        w.record_counter(&format!("other.{}", i / 100), 1.0, &[("k", &v)]);
    }
    for shard in 0..10 {
        let v = shard.to_string();
        for ms in [1, 5, 20] {
            w.record_timer("db.query", Duration::from_millis(ms), &[("shard", &v)]);
        }
    }
    assert_eq!(m.series_count(), 10_000);
    let mut g = c.benchmark_group("query");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("timing_stats_10k_series/memory", |b| {
        b.iter(|| m.timing_stats(black_box("db.query"), None))
    });
    g.finish();
}

criterion_group!(benches, query);
criterion_main!(benches);
