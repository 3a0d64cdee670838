//! `cargo bench -p metrics-exposition --bench floor`: the memory backend beside
//! the fastest Rust metrics clients, every row's peers in the same run.
//! Ids are `floor/<row>/<who>`:
//!
//! - `counter_inc`: a bound counter +1 (`ours`, `prometheus-client`,
//!   `fastmetrics`, `metrics` (a handle from `metrics-exporter-prometheus`'s
//!   recorder), `atomic` (a bare `AtomicU64::fetch_add`, the floor));
//! - `counter_inc_2threads`: the same, two threads incrementing one series,
//!   wall time per increment;
//! - `histogram_observe`: a bound histogram (`ours`, `prometheus-client` and
//!   `fastmetrics` with the default Prometheus buckets);
//! - `counter_3tags` and `histogram_3tags`: by name with three tags (`ours`,
//!   `metrics` (macros), `opentelemetry` (the SDK's instruments, three
//!   attributes, a `SdkMeterProvider` with a reader));
//! - `render`: Prometheus text of 100 families, each a counter and a
//!   10-bucket histogram, with 20 label sets each (`ours`,
//!   `prometheus-client`, `fastmetrics`, `metrics-exporter-prometheus`).
//!
//! The peers keep one number per counter and fixed buckets per histogram;
//! ours also keeps the 5 m / 1 h / 24 h windows, exact count/sum/min/max and
//! a quantile sketch for the histogram.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use metrics_exposition::{ExportFormat, Exporter, ExpositionConfig};
use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;

const TAGS3: [(&str, &str); 3] = [("method", "GET"), ("code", "200"), ("route", "/api")];
/// The default Prometheus buckets (what `prometheus-client` users pass and
/// `fastmetrics`' `Histogram::default` uses).
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The render row's 10 bucket bounds.
const RENDER_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const FAMILIES: usize = 100;
const LABEL_SETS: usize = 20;
/// Observations per histogram series in the render row.
const OBSERVATIONS: usize = 5;

/// The value of the `i`th observation: 0 to 1 s in steps of 1 ms.
fn value(i: u64) -> f64 {
    (i % 1000) as f64 * 0.001
}

/// Runs `f` `iters` times on each of two threads started together; the
/// wall time over both, per operation.
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
    start.elapsed() / 2
}

/// `fastmetrics` needs a label set type of its own.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FmLabels {
    id: String,
}

impl fastmetrics::raw::LabelSetSchema for FmLabels {
    fn names() -> Option<&'static [&'static str]> {
        Some(&["id"])
    }
}

impl fastmetrics::encoder::EncodeLabelSet for FmLabels {
    fn encode(
        &self,
        encoder: &mut dyn fastmetrics::encoder::LabelSetEncoder,
    ) -> fastmetrics::error::Result<()> {
        encoder.encode(&("id", &self.id))
    }
}

fn otel_meter() -> opentelemetry::metrics::Meter {
    let reader = opentelemetry_sdk::metrics::ManualReader::builder().build();
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .build();
    provider.meter("floor")
}

fn bound(c: &mut Criterion, memory: &Arc<MemoryMetrics>) {
    let ours = Metrics::new(memory.clone());
    let prom_recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();

    let mut g = c.benchmark_group("floor");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // counter_inc
    let counter = ours.counter("floor.inc", &[]);
    g.bench_function("counter_inc/ours", |b| b.iter(|| counter.increment()));
    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    g.bench_function("counter_inc/prometheus-client", |b| {
        b.iter(|| black_box(pc.inc()))
    });
    let fm = fastmetrics::metrics::counter::Counter::<u64>::default();
    g.bench_function("counter_inc/fastmetrics", |b| b.iter(|| fm.inc()));
    let rs = metrics::with_local_recorder(&prom_recorder, || metrics::counter!("floor_inc"));
    g.bench_function("counter_inc/metrics", |b| b.iter(|| rs.increment(1)));
    let atomic = AtomicU64::new(0);
    g.bench_function("counter_inc/atomic", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Ordering::Relaxed))
    });

    // counter_inc_2threads: one series, two threads.
    let counter = ours.counter("floor.inc2", &[]);
    g.bench_function("counter_inc_2threads/ours", |b| {
        b.iter_custom(|iters| {
            let c = counter.clone();
            two_threads(iters, move || c.increment())
        })
    });
    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    g.bench_function("counter_inc_2threads/prometheus-client", |b| {
        b.iter_custom(|iters| {
            let c = pc.clone();
            two_threads(iters, move || {
                black_box(c.inc());
            })
        })
    });
    let fm = fastmetrics::metrics::counter::Counter::<u64>::default();
    g.bench_function("counter_inc_2threads/fastmetrics", |b| {
        b.iter_custom(|iters| {
            let c = fm.clone();
            two_threads(iters, move || c.inc())
        })
    });
    let rs = metrics::with_local_recorder(&prom_recorder, || metrics::counter!("floor_inc2"));
    g.bench_function("counter_inc_2threads/metrics", |b| {
        b.iter_custom(|iters| {
            let c = rs.clone();
            two_threads(iters, move || c.increment(1))
        })
    });
    let atomic = Arc::new(AtomicU64::new(0));
    g.bench_function("counter_inc_2threads/atomic", |b| {
        b.iter_custom(|iters| {
            let a = atomic.clone();
            two_threads(iters, move || {
                black_box(&*a).fetch_add(1, Ordering::Relaxed);
            })
        })
    });

    // histogram_observe
    let histogram = ours.histogram("floor.observe", &[]);
    g.bench_function("histogram_observe/ours", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            histogram.record(value(i))
        })
    });
    let ph = prometheus_client::metrics::histogram::Histogram::new(DEFAULT_BUCKETS);
    g.bench_function("histogram_observe/prometheus-client", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            ph.observe(value(i))
        })
    });
    let fh = fastmetrics::metrics::histogram::Histogram::new(DEFAULT_BUCKETS);
    g.bench_function("histogram_observe/fastmetrics", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            fh.observe(value(i))
        })
    });
    g.finish();
}

fn by_name(c: &mut Criterion, memory: &Arc<MemoryMetrics>) {
    let ours = Metrics::new(memory.clone());
    // The `metrics` macros record into the global recorder: only this
    // bench binary installs one.
    let _ = metrics::set_global_recorder(
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
    );
    let meter = otel_meter();
    let otel_counter = meter.u64_counter("floor.requests").build();
    let otel_histogram = meter.f64_histogram("floor.latency").build();

    let mut g = c.benchmark_group("floor");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    g.bench_function("counter_3tags/ours", |b| {
        b.iter(|| ours.record_counter(black_box("floor.requests"), 1.0, black_box(&TAGS3)))
    });
    g.bench_function("counter_3tags/metrics", |b| {
        b.iter(|| {
            metrics::counter!("floor_requests", "method" => "GET", "code" => "200", "route" => "/api")
                .increment(1)
        })
    });
    g.bench_function("counter_3tags/opentelemetry", |b| {
        b.iter(|| {
            otel_counter.add(
                1,
                &[
                    KeyValue::new("method", "GET"),
                    KeyValue::new("code", "200"),
                    KeyValue::new("route", "/api"),
                ],
            )
        })
    });

    g.bench_function("histogram_3tags/ours", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            ours.record_histogram(black_box("floor.latency"), value(i), black_box(&TAGS3))
        })
    });
    g.bench_function("histogram_3tags/metrics", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            metrics::histogram!("floor_latency", "method" => "GET", "code" => "200", "route" => "/api")
                .record(value(i))
        })
    });
    g.bench_function("histogram_3tags/opentelemetry", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            otel_histogram.record(
                value(i),
                &[
                    KeyValue::new("method", "GET"),
                    KeyValue::new("code", "200"),
                    KeyValue::new("route", "/api"),
                ],
            )
        })
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let ids: Vec<String> = (0..LABEL_SETS).map(|i| i.to_string()).collect();

    // Ours: the memory backend's snapshot through the exporter.
    let memory = Arc::new(MemoryMetrics::new());
    let m = Metrics::new(memory.clone());
    for f in 0..FAMILIES {
        let (counter, histogram) = (format!("floor.requests_{f}"), format!("floor.latency_{f}"));
        for (l, id) in ids.iter().enumerate() {
            m.record_counter(&counter, (l + 1) as f64, &[("id", id)]);
            for o in 0..OBSERVATIONS {
                m.record_histogram(&histogram, value((o * 97 + l) as u64), &[("id", id)]);
            }
        }
    }
    let config = ExpositionConfig {
        histogram_buckets: RENDER_BUCKETS.to_vec(),
        ..ExpositionConfig::default()
    };
    let exporter = Exporter::with_config(memory, config).expect("valid buckets");

    // prometheus-client
    let mut pc_registry = prometheus_client::registry::Registry::default();
    for f in 0..FAMILIES {
        type Labels = Vec<(String, String)>;
        let counters = prometheus_client::metrics::family::Family::<
            Labels,
            prometheus_client::metrics::counter::Counter,
        >::default();
        let histograms = prometheus_client::metrics::family::Family::<
            Labels,
            prometheus_client::metrics::histogram::Histogram,
        >::new_with_constructor(|| {
            prometheus_client::metrics::histogram::Histogram::new(RENDER_BUCKETS)
        });
        for (l, id) in ids.iter().enumerate() {
            let labels = vec![("id".to_owned(), id.clone())];
            counters.get_or_create(&labels).inc_by((l + 1) as u64);
            let h = histograms.get_or_create(&labels);
            for o in 0..OBSERVATIONS {
                h.observe(value((o * 97 + l) as u64));
            }
        }
        pc_registry.register(format!("floor_requests_{f}"), "", counters);
        pc_registry.register(format!("floor_latency_{f}"), "", histograms);
    }

    // fastmetrics
    let mut fm_registry = fastmetrics::registry::Registry::default();
    for f in 0..FAMILIES {
        let counters = fastmetrics::metrics::family::Family::<
            FmLabels,
            fastmetrics::metrics::counter::Counter,
        >::default();
        let histograms =
            fastmetrics::metrics::family::Family::<
                FmLabels,
                fastmetrics::metrics::histogram::Histogram,
            >::new(|| fastmetrics::metrics::histogram::Histogram::new(RENDER_BUCKETS));
        for (l, id) in ids.iter().enumerate() {
            let labels = FmLabels { id: id.clone() };
            counters.with_or_new(&labels, |c| c.inc_by((l + 1) as u64));
            histograms.with_or_new(&labels, |h| {
                for o in 0..OBSERVATIONS {
                    h.observe(value((o * 97 + l) as u64));
                }
            });
        }
        fm_registry
            .register(format!("floor_requests_{f}"), "requests", counters)
            .expect("a new family");
        fm_registry
            .register(format!("floor_latency_{f}"), "latency", histograms)
            .expect("a new family");
    }

    // metrics-exporter-prometheus
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&RENDER_BUCKETS)
        .expect("bucket bounds")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for f in 0..FAMILIES {
            for (l, id) in ids.iter().enumerate() {
                metrics::counter!(format!("floor_requests_{f}"), "id" => id.clone())
                    .increment((l + 1) as u64);
                let h = metrics::histogram!(format!("floor_latency_{f}"), "id" => id.clone());
                for o in 0..OBSERVATIONS {
                    h.record(value((o * 97 + l) as u64));
                }
            }
        }
    });

    // The four texts are of a size: what each renders, once.
    let mut sizes = vec![
        (
            "ours",
            exporter
                .export(ExportFormat::Prometheus)
                .map_or(0, |t| t.len()),
        ),
        ("metrics-exporter-prometheus", handle.render().len()),
    ];
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &pc_registry);
    sizes.push(("prometheus-client", out.len()));
    out.clear();
    let _ = fastmetrics::format::text::encode(
        &mut out,
        &fm_registry,
        fastmetrics::format::text::TextProfile::PrometheusV0_0_4,
    );
    sizes.push(("fastmetrics", out.len()));
    eprintln!("floor/render text bytes: {sizes:?}");

    let mut g = c.benchmark_group("floor");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("render/ours", |b| {
        b.iter(|| black_box(exporter.export(ExportFormat::Prometheus).map(|t| t.len())))
    });
    g.bench_function("render/prometheus-client", |b| {
        b.iter(|| {
            let mut out = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut out, &pc_registry);
            black_box(out.len())
        })
    });
    g.bench_function("render/fastmetrics", |b| {
        b.iter(|| {
            let mut out = String::new();
            let _ = fastmetrics::format::text::encode(
                &mut out,
                &fm_registry,
                fastmetrics::format::text::TextProfile::PrometheusV0_0_4,
            );
            black_box(out.len())
        })
    });
    g.bench_function("render/metrics-exporter-prometheus", |b| {
        b.iter(|| black_box(handle.render().len()))
    });
    g.finish();
}

fn floor(c: &mut Criterion) {
    let memory = Arc::new(MemoryMetrics::new());
    bound(c, &memory);
    by_name(c, &memory);
    render(c);
}

/// `FLOOR_LOOP=<row>/<who>:<n>`: runs that single-thread operation `n`
/// times and nothing else, for instruction counts (`valgrind
/// --tool=callgrind`, at two values of `n`: the difference over the
/// difference in `n` is the cost of one operation, loop included).
fn instruction_loop(spec: &str) {
    let Some((id, n)) = spec.split_once(':') else {
        eprintln!("FLOOR_LOOP=<row>/<who>:<n>");
        std::process::exit(2)
    };
    let n: u64 = n.parse().unwrap_or(0);
    let memory = Arc::new(MemoryMetrics::new());
    let ours = Metrics::new(memory);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let meter = otel_meter();
    let attrs = || {
        [
            KeyValue::new("method", "GET"),
            KeyValue::new("code", "200"),
            KeyValue::new("route", "/api"),
        ]
    };
    macro_rules! run {
        ($op:expr) => {{
            for i in 0..n {
                black_box($op(black_box(i)));
            }
        }};
    }
    match id {
        "counter_inc/ours" => {
            let c = ours.counter("floor.inc", &[]);
            run!(|_| c.increment())
        }
        "counter_inc/prometheus-client" => {
            let c = prometheus_client::metrics::counter::Counter::<u64>::default();
            run!(|_| c.inc())
        }
        "counter_inc/fastmetrics" => {
            let c = fastmetrics::metrics::counter::Counter::<u64>::default();
            run!(|_| c.inc())
        }
        "counter_inc/metrics" => {
            let c = metrics::with_local_recorder(&recorder, || metrics::counter!("floor_inc"));
            run!(|_| c.increment(1))
        }
        "counter_inc/atomic" => {
            let a = AtomicU64::new(0);
            run!(|_| a.fetch_add(1, Ordering::Relaxed))
        }
        "histogram_observe/ours" => {
            let h = ours.histogram("floor.observe", &[]);
            run!(|i| h.record(value(i)))
        }
        "histogram_observe/prometheus-client" => {
            let h = prometheus_client::metrics::histogram::Histogram::new(DEFAULT_BUCKETS);
            run!(|i| h.observe(value(i)))
        }
        "histogram_observe/fastmetrics" => {
            let h = fastmetrics::metrics::histogram::Histogram::new(DEFAULT_BUCKETS);
            run!(|i| h.observe(value(i)))
        }
        "counter_3tags/ours" => run!(|_| ours.record_counter("floor.requests", 1.0, &TAGS3)),
        "counter_3tags/metrics" => metrics::with_local_recorder(&recorder, || {
            run!(|_| metrics::counter!(
                "floor_requests", "method" => "GET", "code" => "200", "route" => "/api"
            )
            .increment(1))
        }),
        "counter_3tags/opentelemetry" => {
            let c = meter.u64_counter("floor.requests").build();
            run!(|_| c.add(1, &attrs()))
        }
        "histogram_3tags/ours" => {
            run!(|i| ours.record_histogram("floor.latency", value(i), &TAGS3))
        }
        "histogram_3tags/metrics" => metrics::with_local_recorder(&recorder, || {
            run!(|i| metrics::histogram!(
                "floor_latency", "method" => "GET", "code" => "200", "route" => "/api"
            )
            .record(value(i)))
        }),
        "histogram_3tags/opentelemetry" => {
            let h = meter.f64_histogram("floor.latency").build();
            run!(|i| h.record(value(i), &attrs()))
        }
        _ => {
            eprintln!("no single-thread loop for {id}");
            std::process::exit(2)
        }
    }
}

criterion_group!(benches, floor);

fn main() {
    if let Ok(spec) = std::env::var("FLOOR_LOOP") {
        return instruction_loop(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
