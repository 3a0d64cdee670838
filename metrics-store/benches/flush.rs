//! `cargo bench -p metrics-store`: one flush of 10,000 series (8,000
//! counters, 2,000 distributions with their sketches) into SQLite, and into
//! PostgreSQL when `METRICS_BENCH_POSTGRES_URL` names a database: time per
//! flush and rows per second (criterion's throughput). Then what a flush
//! costs the memory side (collecting the sealed bins), and recording speed
//! with the store's writer running beside the same without it, same run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::Metrics;
use metrics_store::{HistoryWriter, Store, StoreUrl, StoredBin, WriterConfig};

const SERIES: usize = 10_000;
const T0: i64 = 1_800_000_000_000;

/// A backend holding 10,000 series, 10 s after their samples: one flush's
/// worth of sealed bins.
fn populated() -> (Arc<MemoryMetrics>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let config = MemoryConfig {
        max_series: 20_000,
        cardinality_limit: 20_000,
        ..MemoryConfig::default()
    };
    let m = Arc::new(MemoryMetrics::with_clock(config, clock.clone()).expect("memory"));
    let metrics = Metrics::new(m.clone());
    for i in 0..SERIES {
        let id = format!("{i}");
        let tags = [("series", id.as_str()), ("service", "api")];
        if i % 5 == 0 {
            for v in 0..20 {
                metrics.record_histogram("latency", f64::from(v + (i % 97) as u32), &tags);
            }
        } else {
            metrics.record_counter("requests", 1.0, &tags);
        }
    }
    clock.advance(Duration::from_secs(10));
    (m, clock)
}

fn flush_bins() -> Vec<StoredBin> {
    let (m, _) = populated();
    let bins = m.sealed_bins(T0, T0 + 10_000);
    assert_eq!(bins.len(), SERIES, "one sealed bin per series");
    bins
}

fn flush(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let bins = flush_bins();
    let dir = std::env::temp_dir().join(format!("metrics-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut stores = vec![("sqlite", StoreUrl::Sqlite(dir.join("bench.sqlite")))];
    if let Ok(u) = std::env::var("METRICS_BENCH_POSTGRES_URL") {
        match u.parse() {
            Ok(url) => stores.push(("postgres", url)),
            Err(e) => eprintln!("METRICS_BENCH_POSTGRES_URL: {e}"),
        }
    }
    let mut g = c.benchmark_group("flush_10k_series");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(SERIES as u64));
    for (label, url) in stores {
        let store = match rt.block_on(Store::open(&url, "bench")) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{label}: {e}; skipped");
                continue;
            }
        };
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let n = rt.block_on(store.write(black_box(&bins))).expect("write");
                    assert_eq!(n, SERIES as u64);
                }
                start.elapsed()
            })
        });
        // CPU time of this process per flush (the client side: for SQLite
        // all of it, for PostgreSQL not the server's).
        let (cpu0, wall0) = (process_cpu(), Instant::now());
        const N: u32 = 20;
        for _ in 0..N {
            let _ = rt.block_on(store.write(&bins));
        }
        if let (Some(a), Some(b)) = (cpu0, process_cpu()) {
            eprintln!(
                "{label}: {:.1} ms CPU (this process) and {:.1} ms wall per flush over {N} flushes",
                (b - a).as_secs_f64() * 1e3 / f64::from(N),
                wall0.elapsed().as_secs_f64() * 1e3 / f64::from(N)
            );
        }
        rt.block_on(store.close());
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);

    // The memory side of a flush: collecting 10,000 sealed bins.
    let (m, _) = populated();
    let mut g = c.benchmark_group("collect_10k_series");
    g.sample_size(20)
        .throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("sealed_bins", |b| {
        b.iter(|| black_box(m.sealed_bins(T0, T0 + 10_000)).len())
    });
    g.finish();
}

/// User plus system CPU time of this process so far (Linux `/proc`).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which ends with the last `)`).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture in use.
    Some(Duration::from_millis(ticks * 10))
}

/// Recording into a backend of 10,000 series, with the writer flushing it
/// every second into SQLite beside no writer at all.
fn record(c: &mut Criterion) {
    const TAGS: [(&str, &str); 2] = [("method", "GET"), ("code", "200")];
    let dir = std::env::temp_dir().join(format!("metrics-store-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut g = c.benchmark_group("record_counter");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for on in [false, true] {
        let config = MemoryConfig {
            max_series: 20_000,
            cardinality_limit: 20_000,
            ..MemoryConfig::default()
        };
        let m = Arc::new(MemoryMetrics::with_config(config).expect("memory"));
        // Recorded as a library records: through a handle.
        let metrics = Metrics::new(m.clone());
        for i in 0..SERIES {
            metrics.record_counter("requests", 1.0, &[("series", &i.to_string())]);
        }
        // The application's runtime, which the writer runs on.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let writer = on.then(|| {
            let mut cfg = WriterConfig::new(StoreUrl::Sqlite(dir.join("rec.sqlite")), "bench");
            cfg.flush_interval = Duration::from_secs(1);
            HistoryWriter::start(m.clone(), cfg, rt.handle().clone()).expect("writer")
        });
        let label = if on { "store_on" } else { "store_off" };
        g.bench_function(label, |b| {
            b.iter(|| metrics.record_counter(black_box("http.requests"), 1.0, black_box(&TAGS)))
        });
        if let Some(w) = writer {
            let st = w.status();
            eprintln!(
                "store_on: {} bins written in {} flushes",
                st.written, st.flushes
            );
            w.shutdown();
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, flush, record);
criterion_main!(benches);
