//! `cargo bench -p metrics-bridge`: the same `metrics` macro calls recorded
//! into our memory backend through the bridge and into
//! `metrics-exporter-prometheus`'s recorder, side by side in one run. Each
//! recorder is set for the bench's thread (`set_default_local_recorder`),
//! so both pay the same macro and recorder-lookup costs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use metrics_bridge::Recorder;
use metrics_memory::MemoryMetrics;

fn suite(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, recorder: &dyn metrics::Recorder) {
    let _scope = metrics::set_default_local_recorder(recorder);

    let handle = metrics::counter!("jobs.done", "queue" => "mail", "prio" => "high");
    g.bench_function(format!("counter_handle/{id}"), |b| {
        b.iter(|| handle.increment(black_box(1)))
    });

    g.bench_function(format!("counter_macro_2labels/{id}"), |b| {
        b.iter(|| {
            metrics::counter!("http.requests", "method" => "GET", "code" => "200")
                .increment(black_box(1))
        })
    });

    g.bench_function(format!("histogram_macro_2labels/{id}"), |b| {
        let mut v = 0.0;
        b.iter(|| {
            v += 1.0;
            metrics::histogram!("http.latency", "method" => "GET", "code" => "200")
                .record(black_box(v % 1000.0))
        })
    });
}

fn bridge(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let memory = Recorder::new(Arc::new(MemoryMetrics::new()));
    suite(&mut g, "memory-bridge", &memory);

    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    suite(&mut g, "prometheus-exporter", &prometheus);

    g.finish();
}

criterion_group!(benches, bridge);
criterion_main!(benches);
