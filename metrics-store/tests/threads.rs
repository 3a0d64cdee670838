//! The threads a SQLite store costs an application: sqlx runs one worker
//! thread per open SQLite connection, and a writer that has written and
//! gone idle keeps one connection open. (A test binary of its own: no
//! other test's connections in the count.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::Metrics;
use metrics_store::{HistoryQuery, HistoryWriter, StoreUrl, WriterConfig};

/// Names of this process's threads whose name starts with `prefix` (as the
/// kernel keeps it: the first 15 bytes).
fn threads_named(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let Ok(entry) = entry else { continue };
        // A thread that ended meanwhile has no comm any more.
        if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
            let name = name.trim_end().to_owned();
            if name.starts_with(prefix) {
                out.push(name);
            }
        }
    }
    out
}

const SQLITE_WORKER: &str = "sqlx-sqlite-wor";

#[test]
fn an_idle_sqlite_writer_keeps_one_connection_thread() {
    let dir = std::env::temp_dir().join(format!("metrics-store-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let t0 = 1_800_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let mut cfg = WriterConfig::new(url, "w");
    cfg.flush_interval = Duration::from_millis(50);
    cfg.ping_interval = Duration::from_millis(50);
    let w = HistoryWriter::start(m.clone(), cfg, rt.handle().clone()).unwrap();
    let metrics = Metrics::new(m.clone());
    metrics.record_counter("jobs", 1.0, &[]);
    clock.advance(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(120);
    while w.status().written == 0 {
        assert!(Instant::now() < deadline, "not written: {:?}", w.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A query from synchronous code opens a reading connection beside the
    // writer's.
    let store = w.store().expect("connected");
    let q = HistoryQuery {
        name: "jobs".into(),
        start_ms: t0,
        end_ms: t0 + 10_000,
        step_ms: 10_000,
        ..HistoryQuery::default()
    };
    let got = w.block_on(store.query(&q)).unwrap().unwrap();
    assert_eq!(got[0].bins[0].sum, 1.0);
    // Idle (the writer still flushing and pinging every 50 ms), the
    // reading connections close: one connection, one thread, stays.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let workers = threads_named(SQLITE_WORKER);
        if workers.len() <= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} SQLite connection threads while idle: {workers:?}",
            workers.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And it stays so: the writer's pings and flushes open no other.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let workers = threads_named(SQLITE_WORKER);
        assert!(workers.len() <= 1, "{workers:?}");
    }
    // The writer's own: no thread named after the store.
    assert_eq!(threads_named("metrics-store"), Vec::<String>::new());
    w.shutdown();
    assert!(w.status().healthy, "{:?}", w.status());
    drop(rt);
    std::fs::remove_dir_all(&dir).ok();
}
