//! Encoding 10,000 series from the memory backend's snapshot. `export`:
//! 9,000 counters and 1,000 histograms as Prometheus text. `render_10k_series`:
//! 9,000 counters and 1,000 histograms of 20 samples each, as Prometheus
//! text and OpenMetrics, beside `metrics-exporter-prometheus` rendering
//! the same series (`PrometheusHandle::render`). `GET /metrics` through the
//! router is `metrics-http`'s `render` bench.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metrics_conformance::workload::TEN_THOUSAND_SERIES;
use metrics_exposition::{ExportFormat, Exporter, ExpositionConfig};
use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;

fn ours() -> Arc<MemoryMetrics> {
    let mem = Arc::new(MemoryMetrics::new());
    TEN_THOUSAND_SERIES.record(&Metrics::new(mem.clone()));
    mem
}

fn peer() -> metrics_exporter_prometheus::PrometheusHandle {
    // The same bounds as the default for plain histograms, so both render
    // the same buckets.
    let bounds = ExpositionConfig::default().histogram_buckets;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&bounds)
        .expect("bucket bounds")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for (n, id, v) in TEN_THOUSAND_SERIES.counters() {
            metrics::counter!(format!("bench_requests_{n}"), "id" => id.to_string()).increment(v);
        }
        for (n, id, v) in TEN_THOUSAND_SERIES.histogram_samples() {
            metrics::histogram!(format!("bench_payload_{n}"), "id" => id.to_string()).record(v);
        }
    });
    handle
}

fn render(c: &mut Criterion) {
    let mem = ours();
    let peer = peer();
    let series = mem.series_count();
    assert_eq!(series, TEN_THOUSAND_SERIES.series());
    let exporter = Exporter::new(mem);
    let mut g = c.benchmark_group("render_10k_series");
    g.throughput(Throughput::Elements(series as u64));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(30);
    g.bench_function("memory_export_prometheus", |b| {
        b.iter(|| black_box(exporter.export(ExportFormat::Prometheus).map(|t| t.len())))
    });
    g.bench_function("memory_export_openmetrics", |b| {
        b.iter(|| black_box(exporter.export(ExportFormat::OpenMetrics).map(|t| t.len())))
    });
    g.bench_function("metrics_exporter_prometheus_render", |b| {
        b.iter(|| black_box(peer.render().len()))
    });
    g.finish();
}

fn export(c: &mut Criterion) {
    let m = Arc::new(MemoryMetrics::new());
    let w = Metrics::new(m.clone());
    for i in 0..10_000u32 {
        let id = i.to_string();
        if i % 10 == 0 {
            w.record_histogram("payload.size", f64::from(i), &[("id", &id)]);
        } else {
            w.record_counter("requests", 1.0, &[("id", &id), ("region", "eu")]);
        }
    }
    let exporter = Exporter::new(m);
    let mut g = c.benchmark_group("export");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    g.bench_function("prometheus_10k_series", |b| {
        b.iter(|| exporter.export(ExportFormat::Prometheus).map(|s| s.len()))
    });
    g.finish();
}

criterion_group!(benches, export, render);
criterion_main!(benches);
