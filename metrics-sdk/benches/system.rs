//! `cargo bench -p metrics-sdk --bench system`: what the composed system
//! costs on the recording path, side by side in one run: the memory backend
//! alone (through a `Metrics` handle, as a library reaches any backend),
//! `Agent::metrics()` (memory behind the fan-out, under the tap of the
//! streams, aggregations and error-rate window), the same with a stream
//! subscriber and an aggregation that do not match the name, and the
//! `metrics` crate into `metrics-exporter-prometheus`'s recorder.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;
use metrics_protocol::app::{AsyncMetricsSystem, MetricFilter, MetricsSystem};
use metrics_sdk::{Agent, AgentConfig, AggregationSpec};

const TAGS: [(&str, &str); 2] = [("method", "GET"), ("code", "200")];

fn agent() -> Agent {
    Agent::new(AgentConfig {
        system_polling: false,
        ..AgentConfig::default()
    })
    .expect("the default configuration builds")
}

fn record(c: &mut Criterion) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    // Only this bench binary installs a global recorder.
    let _ = metrics::set_global_recorder(recorder);

    let memory = Metrics::new(Arc::new(MemoryMetrics::new()));
    let plain = agent();
    let plain_metrics = plain.metrics();
    let tapped = agent();
    let _stream = tapped.metrics_stream(MetricFilter::default().name_prefix("db."));
    tapped
        .aggregate(
            AggregationSpec::count("db.latency", 100)
                .functions(["mean"])
                .unwrap(),
        )
        .unwrap();
    let tapped_metrics = tapped.metrics();

    let mut g = c.benchmark_group("system");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("counter_2tags/memory", |b| {
        b.iter(|| memory.record_counter(black_box("http.requests"), 1.0, black_box(&TAGS)))
    });
    g.bench_function("counter_2tags/agent", |b| {
        b.iter(|| plain_metrics.record_counter(black_box("http.requests"), 1.0, black_box(&TAGS)))
    });
    g.bench_function("counter_2tags/agent_with_taps", |b| {
        b.iter(|| tapped_metrics.record_counter(black_box("http.requests"), 1.0, black_box(&TAGS)))
    });
    g.bench_function("counter_2tags/metrics-rs", |b| {
        b.iter(|| {
            metrics::counter!("http.requests", "method" => "GET", "code" => "200").increment(1)
        })
    });
    g.bench_function("success/agent", |b| {
        let tracker = plain.tracker();
        b.iter(|| tracker.record_success(black_box("checkout"), black_box(&TAGS)))
    });
    g.finish();
    plain.shutdown_metrics().unwrap();
    tapped.shutdown_metrics().unwrap();
}

criterion_group!(benches, record);
criterion_main!(benches);
