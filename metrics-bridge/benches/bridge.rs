//! `cargo bench -p metrics-bridge`: the same `metrics` macro calls recorded
//! into our memory backend through the bridge and into
//! `metrics-exporter-prometheus`'s recorder, side by side in one run. Each
//! recorder is set for the bench's thread (`set_default_local_recorder`),
//! so both pay the same macro and recorder-lookup costs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_bridge::Recorder;
use metrics_memory::MemoryMetrics;

/// The recorders under test, by id.
fn recorders() -> Vec<(&'static str, Box<dyn metrics::Recorder>)> {
    vec![
        (
            "memory-bridge",
            Box::new(Recorder::new(Arc::new(MemoryMetrics::new()))),
        ),
        (
            "prometheus-exporter",
            Box::new(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()),
        ),
    ]
}

/// Each row is measured for one recorder right after the other (not all of
/// one recorder, then all of the other), so a change in the machine's load
/// falls on both sides of a comparison alike.
fn bridge(c: &mut Criterion) {
    let recorders = recorders();
    let mut g = c.benchmark_group("bridge");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for (id, recorder) in &recorders {
        let _scope = metrics::set_default_local_recorder(&**recorder);
        let handle = metrics::counter!("jobs.done", "queue" => "mail", "prio" => "high");
        g.bench_function(format!("counter_handle/{id}"), |b| {
            b.iter(|| handle.increment(black_box(1)))
        });
    }

    for (id, recorder) in &recorders {
        let _scope = metrics::set_default_local_recorder(&**recorder);
        g.bench_function(format!("counter_macro_2labels/{id}"), |b| {
            b.iter(|| {
                metrics::counter!("http.requests", "method" => "GET", "code" => "200")
                    .increment(black_box(1))
            })
        });
    }

    for (id, recorder) in &recorders {
        let _scope = metrics::set_default_local_recorder(&**recorder);
        g.bench_function(format!("histogram_macro_2labels/{id}"), |b| {
            let mut v = 0.0;
            b.iter(|| {
                v += 1.0;
                metrics::histogram!("http.latency", "method" => "GET", "code" => "200")
                    .record(black_box(v % 1000.0))
            })
        });
    }

    g.finish();
}

criterion_group!(benches, bridge);
criterion_main!(benches);
