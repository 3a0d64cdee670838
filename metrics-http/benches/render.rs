//! Serving `/metrics` for 10,000 series (9,000 counters, 1,000
//! histograms): the whole `GET /metrics` through the router (the encoding
//! alone, and the peer `metrics-exporter-prometheus` rendering the same
//! series, are `metrics-exposition`'s `export` bench). Then a counter
//! increment into the same backend, idle and while another thread serves
//! `GET /metrics` in a loop (what serving costs recording).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use metrics_conformance::workload::TEN_THOUSAND_SERIES;
use metrics_http::{HttpConfig, router};
use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;
use tower::ServiceExt;

#[path = "../tests/common/mod.rs"]
mod common;

fn ours() -> Arc<MemoryMetrics> {
    let mem = Arc::new(MemoryMetrics::new());
    TEN_THOUSAND_SERIES.record(&Metrics::new(mem.clone()));
    mem
}

fn render(c: &mut Criterion) {
    let mem = ours();
    let series = mem.series_count();
    assert_eq!(series, TEN_THOUSAND_SERIES.series());
    let app = router(
        common::TestSystem::over(mem.clone()).source(),
        &HttpConfig::default(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let mut g = c.benchmark_group("render_10k_series");
    g.throughput(Throughput::Elements(series as u64));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(30);
    g.bench_function("http_get_metrics", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get("/metrics")
                    .body(Body::empty())
                    .expect("a request");
                let res = app.clone().oneshot(req).await.expect("a response");
                let bytes = res.into_body().collect().await.expect("a body").to_bytes();
                black_box(bytes.len())
            })
        })
    });
    g.finish();
}

fn record_while_serving(c: &mut Criterion) {
    let mem = ours();
    let app = router(
        common::TestSystem::over(mem.clone()).source(),
        &HttpConfig::default(),
    );
    let metrics = Metrics::new(mem.clone());
    let mut g = c.benchmark_group("record_while_serving");
    g.measurement_time(Duration::from_secs(5));
    let record = |b: &mut criterion::Bencher<'_>| {
        b.iter(|| metrics.record_counter(black_box("bench.requests_7"), 1.0, &[("id", "42")]))
    };
    g.bench_function("counter_idle", record);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scrapes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = {
        let (stop, scrapes, app) = (stop.clone(), scrapes.clone(), app.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                rt.block_on(async {
                    let req = Request::get("/metrics")
                        .body(Body::empty())
                        .expect("a request");
                    let res = app.clone().oneshot(req).await.expect("a response");
                    black_box(
                        res.into_body()
                            .collect()
                            .await
                            .expect("a body")
                            .to_bytes()
                            .len(),
                    );
                });
                scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    g.bench_function("counter_while_serving", record);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server.join();
    eprintln!(
        "record_while_serving: {} scrapes of 10,000 series served meanwhile",
        scrapes.load(std::sync::atomic::Ordering::Relaxed)
    );
    g.finish();
}

criterion_group!(benches, render, record_while_serving);
criterion_main!(benches);
