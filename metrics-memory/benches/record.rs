//! `cargo bench -p metrics-memory --bench record`: recording cost of the
//! memory backend side by side with the `metrics` crate recording the same
//! work into `metrics-exporter-prometheus`'s recorder; and the cost of a
//! timing guard beside a plain timed closure.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_memory::MemoryMetrics;
use metrics_protocol::backend::{InstrumentFn, Value};
use metrics_protocol::{Key, Metrics};

const TAGS: [(&str, &str); 2] = [("method", "GET"), ("code", "200")];

fn install_metrics_rs() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    // Only this bench binary installs a global recorder.
    let _ = metrics::set_global_recorder(recorder);
}

/// The floor of a bound counter handle: one atomic add and nothing else
/// (no time bins), behind this facade's handle (`Arc<dyn InstrumentFn>`).
struct FloorCounter(AtomicU64);

impl InstrumentFn for FloorCounter {
    fn record(&self, value: Value) {
        if let Value::Counter(v) = value {
            self.0.fetch_add(v as u64, Ordering::Relaxed);
        }
    }
}

fn two_threads(iters: u64, f: impl Fn() + Send + Sync + 'static) -> Duration {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    f();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    // Two threads did `iters` each: report wall time per operation.
    start.elapsed() / 2
}

fn record(c: &mut Criterion) {
    install_metrics_rs();
    let memory = Arc::new(MemoryMetrics::new());
    // What a library records with: by name, each recording a measurement
    // of a key built (checked and hashed) at the call.
    let metrics = Metrics::new(memory.clone());
    let mut g = c.benchmark_group("record");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    g.bench_function("counter_2tags/memory", |b| {
        b.iter(|| metrics.record_counter(black_box("http.requests"), 1.0, black_box(&TAGS)))
    });
    // The same series by a key built once (what a `const` key or a layer
    // passes on): the backend's own cost, without building the key.
    let key = Key::new("http.requests", &TAGS).expect("a valid key");
    g.bench_function("counter_2tags_key/memory", |b| {
        b.iter(|| metrics.record(black_box(&key), Value::Counter(1.0)))
    });
    g.bench_function("counter_2tags/metrics-rs", |b| {
        b.iter(|| {
            metrics::counter!("http.requests", "method" => "GET", "code" => "200").increment(1)
        })
    });

    g.bench_function("histogram_2tags/memory", |b| {
        let mut v = 0.0;
        b.iter(|| {
            v += 1.0;
            metrics.record_histogram(black_box("http.latency"), v % 1000.0, black_box(&TAGS))
        })
    });
    g.bench_function("histogram_2tags/metrics-rs", |b| {
        let mut v = 0.0;
        b.iter(|| {
            v += 1.0;
            metrics::histogram!("http.latency", "method" => "GET", "code" => "200")
                .record(v % 1000.0)
        })
    });

    let m2 = metrics.clone();
    g.bench_function("counter_2tags_2threads/memory", move |b| {
        let m2 = m2.clone();
        b.iter_custom(move |iters| {
            let m = m2.clone();
            two_threads(iters, move || m.record_counter("shared", 1.0, &TAGS))
        })
    });
    g.bench_function("counter_2tags_2threads/metrics-rs", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                metrics::counter!("shared", "method" => "GET", "code" => "200").increment(1)
            })
        })
    });

    let handle = metrics.counter("handled", &TAGS);
    g.bench_function("counter_handle/memory", |b| b.iter(|| handle.increment()));
    let rs_handle = metrics::counter!("handled", "method" => "GET", "code" => "200");
    g.bench_function("counter_handle/metrics-rs", |b| {
        b.iter(|| rs_handle.increment(black_box(1)))
    });
    // The machine's floor: a bare atomic add behind the same dispatch,
    // the `metrics` crate's (`Arc<AtomicU64>` as its `CounterFn`) and ours.
    let rs_floor = metrics::Counter::from_arc(Arc::new(AtomicU64::new(0)));
    g.bench_function("counter_handle/floor-metrics-rs", |b| {
        b.iter(|| rs_floor.increment(black_box(1)))
    });
    let floor = metrics_protocol::Counter::from_arc(Arc::new(FloorCounter(AtomicU64::new(0))));
    g.bench_function("counter_handle/floor", |b| b.iter(|| floor.increment()));

    // Timing: the Metrics handle's guard (duration + one outcome) beside
    // a closure timed by hand (duration only), same backend, same empty work.
    g.bench_function("timed/memory", |b| {
        b.iter(|| {
            let started = Instant::now();
            let r = black_box(1);
            metrics.record_timer(black_box("op.timed"), started.elapsed(), &TAGS);
            r
        })
    });
    g.bench_function("timer_guard/memory", |b| {
        b.iter(|| {
            let timing = metrics.start(black_box("op.guarded"), &TAGS);
            black_box(1);
            timing.success()
        })
    });
    g.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
