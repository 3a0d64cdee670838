//! Tests of the history ranges: restarts, instances, outcomes, rollups.

use super::*;
use crate::ranges::range_bin;
use chrono::{DateTime, Utc};
use metrics_protocol::backend::HealthStatus;
use metrics_query::{Period, RangeBin};

/// One sample `v` in the step `[t, t + 10)`, its bin covering `[t + 1, t + 9)`.
fn bin(t: i64, v: f64) -> RangeBin {
    range_bin((t, t + 10), (t + 1, t + 9), (1, v, v, v)).unwrap()
}

#[test]
fn halves_merge_per_group_and_step() {
    let mem = vec![RangeGroup {
        group: None,
        bins: vec![bin(10, 4.0), bin(20, 1.0)],
    }];
    let stored = vec![RangeGroup {
        group: None,
        bins: vec![bin(0, 2.0), bin(10, 2.0)],
    }];
    let m = merge(mem, stored);
    assert_eq!(m.len(), 1);
    let got: Vec<(u64, f64, f64, f64)> = m[0]
        .bins
        .iter()
        .map(|b| (b.count, b.sum, b.min, b.avg))
        .collect();
    assert_eq!(
        got,
        vec![(1, 2.0, 2.0, 2.0), (2, 6.0, 2.0, 3.0), (1, 1.0, 1.0, 1.0)]
    );
    // A merged step covers what both halves' bins covered.
    let mut one = bin(10, 3.0);
    one.covers_start -= chrono::TimeDelta::milliseconds(1);
    let m = merge(
        vec![RangeGroup {
            group: None,
            bins: vec![one],
        }],
        vec![RangeGroup {
            group: None,
            bins: vec![bin(10, 1.0)],
        }],
    );
    let b = &m[0].bins[0];
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    assert_eq!((ms(b.covers_start), ms(b.covers_end), b.count), (10, 19, 2));
}

#[test]
fn health_follows_the_writer() {
    let mut s = WriterStatus {
        healthy: true,
        ..WriterStatus::default()
    };
    assert_eq!(store_health(&s), CheckOutcome::healthy());
    s.dropped = 3;
    assert_eq!(store_health(&s).status, HealthStatus::Degraded);
    s.healthy = false;
    s.last_error = Some("connection refused".into());
    let o = store_health(&s);
    assert_eq!(o.status, HealthStatus::Unhealthy);
    assert!(o.message.unwrap().contains("refused"));
}

/// Two instances writing to one SQLite file: each answers for itself by
/// default, for the other by name, and for both with `*`.
#[test]
fn instances_are_queried_one_by_one_or_all_merged() {
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_store::{StoreUrl, WriterConfig};

    let dir = std::env::temp_dir().join(format!("metrics-sdk-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
    let t0 = 1_800_000_000_000;
    let start = |name: &str, v: f64| {
        let clock = Arc::new(ManualClock::new(t0));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let w = HistoryWriter::start(
            m.clone(),
            WriterConfig::new(url.clone(), name),
            crate::test_util::app_runtime(),
        )
        .unwrap();
        metrics_of(&m).record_counter("jobs", v, &[]);
        metrics_of(&m).record_histogram("size", v, &[]);
        metrics_of(&m).record_failure("pay", name, &[]);
        clock.advance(Duration::from_secs(10));
        (m, Arc::new(w))
    };
    let (_, wa) = start("host-a", 1.0);
    wa.shutdown();
    let (mb, wb) = start("host-b", 5.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while wb.store().is_none() {
        assert!(std::time::Instant::now() < deadline, "{:?}", wb.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranges = HistoryRanges::new(mb, wb.clone());
    assert!(ranges.serves_instances());
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    let sum = |instance: InstanceScope| -> f64 {
        let r = RangeRequest {
            name: "jobs".into(),
            tags: vec![],
            start: at(t0),
            end: at(t0 + 60_000),
            step: Duration::from_secs(60),
            group_by: None,
            instance,
        };
        ranges.query_range(&r).unwrap()[0].bins[0].sum
    };
    assert_eq!(sum(InstanceScope::Local), 5.0);
    assert_eq!(sum(InstanceScope::Named("host-a".into())), 1.0);
    assert_eq!(sum(InstanceScope::Named("host-b".into())), 5.0);
    assert_eq!(sum(InstanceScope::All), 6.0);
    let minute = Some(Duration::from_secs(60));
    let other = InstanceScope::Named("host-a".into());
    let s = ranges.summary("size", minute, &other).unwrap().unwrap();
    assert_eq!((s.count, s.max), (1, 1.0));
    let s = ranges
        .summary("size", minute, &InstanceScope::All)
        .unwrap()
        .unwrap();
    assert_eq!((s.count, s.min, s.max), (2, 1.0, 5.0));
    // A step's percentiles over every instance: host-a's stored sketch
    // merged with host-b's in memory (1 and 5: the median is 1, p99 5).
    let size_step = |instance: InstanceScope| {
        let r = RangeRequest {
            name: "size".into(),
            tags: vec![],
            start: at(t0),
            end: at(t0 + 60_000),
            step: Duration::from_secs(60),
            group_by: None,
            instance,
        };
        let b = ranges.query_range(&r).unwrap()[0].bins[0].clone();
        (b.count, b.p50, b.p99)
    };
    assert_eq!(size_step(InstanceScope::All), (2, Some(1.0), Some(5.0)));
    assert_eq!(size_step(InstanceScope::Local), (1, Some(5.0), Some(5.0)));
    assert_eq!(
        size_step(InstanceScope::Named("host-a".into())),
        (1, Some(1.0), Some(1.0))
    );
    let nobody = InstanceScope::Named("host-z".into());
    assert!(ranges.summary("size", minute, &nobody).unwrap().is_err());
    let day = RollupRequest {
        name: "jobs".into(),
        tags: vec![],
        period: Period::Hour,
        start: at(t0 - 3_600_000),
        end: at(t0 + 3_600_000),
        group_by: None,
        instance: InstanceScope::All,
    };
    let got = ranges.rollup(&day).unwrap().unwrap();
    assert_eq!(got[0].bins.iter().map(|b| b.sum).sum::<f64>(), 6.0);
    // Outcomes: each instance's failure is named after it.
    let failures = |instance: InstanceScope| -> Vec<(String, u64)> {
        let (ok, failed) = ranges.outcomes("pay", None, &instance).unwrap().unwrap();
        assert_eq!(ok, 0);
        failed.into_iter().collect()
    };
    let one = |name: &str| (name.to_owned(), 1);
    assert_eq!(failures(InstanceScope::Local), [one("host-b")]);
    let a = InstanceScope::Named("host-a".into());
    assert_eq!(failures(a), [one("host-a")]);
    // Counted once each: this run's rows in the store are left to memory.
    assert_eq!(failures(InstanceScope::All), [one("host-a"), one("host-b")]);
    assert!(ranges.outcomes("pay", None, &nobody).unwrap().is_err());
    wb.shutdown();
    std::fs::remove_dir_all(&dir).ok();
}

/// Two runs of a program on one store, the second asked about both:
/// the first run's bins come from the store, the second's from memory.
#[test]
fn a_range_across_a_restart_returns_both_halves() {
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_store::{StoreUrl, WriterConfig};

    let dir = std::env::temp_dir().join(format!("metrics-sdk-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
    let t0 = 1_800_000_000_000;
    let run = |at: i64| {
        let clock = Arc::new(ManualClock::new(at));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let w = HistoryWriter::start(
            m.clone(),
            WriterConfig::new(url.clone(), "host"),
            crate::test_util::app_runtime(),
        )
        .unwrap();
        (clock, m, Arc::new(w))
    };
    // The first run: 1 + 2 in its first bin, 4 in the next, then stops.
    let (clock, m, w) = run(t0);
    metrics_of(&m).record_counter("jobs", 1.0, &[("q", "a")]);
    metrics_of(&m).record_counter("jobs", 2.0, &[("q", "b")]);
    metrics_of(&m).record_counter("retired", 1.0, &[]);
    for v in [10.0, 20.0] {
        metrics_of(&m).record_histogram("size", v, &[("q", "a")]);
    }
    metrics_of(&m).record_timer("op", Duration::from_millis(5), &[]);
    metrics_of(&m).record_success("pay", &[]);
    metrics_of(&m).record_failure("pay", "timeout", &[]);
    clock.advance(Duration::from_secs(10));
    metrics_of(&m).record_counter("jobs", 4.0, &[("q", "a")]);
    metrics_of(&m).record_success("pay", &[]);
    w.shutdown();
    // 6 series bins and 2 outcome bins.
    assert_eq!(w.status().written, 8, "{:?}", w.status());

    // The second run starts 3 s later, within the bin the first one
    // stopped in, and records into it.
    let (clock, m, w) = run(t0 + 13_000);
    metrics_of(&m).record_counter("jobs", 8.0, &[("q", "a")]);
    metrics_of(&m).record_histogram("size", 30.0, &[("q", "b")]);
    metrics_of(&m).record_failure("pay", "refused", &[]);
    clock.advance(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while w.store().is_none() {
        assert!(std::time::Instant::now() < deadline, "{:?}", w.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ranges = HistoryRanges::new(m, w.clone());
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    let mut r = RangeRequest {
        name: "jobs".into(),
        tags: vec![],
        start: at(t0),
        end: at(t0 + 60_000),
        step: Duration::from_secs(10),
        group_by: None,
        instance: InstanceScope::Local,
    };
    let got = ranges.query_range(&r).unwrap();
    let sums: Vec<(DateTime<Utc>, f64)> = got[0].bins.iter().map(|b| (b.start, b.sum)).collect();
    assert_eq!(sums, vec![(at(t0), 3.0), (at(t0 + 10_000), 12.0)]);
    // Tag containment and grouping reach the stored half too.
    r.tags = vec![("q".into(), "a".into())];
    r.group_by = Some("q".into());
    let got = ranges.query_range(&r).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group.as_deref(), Some("a"));
    let sums: Vec<f64> = got[0].bins.iter().map(|b| b.sum).collect();
    assert_eq!(sums, vec![1.0, 12.0]);
    // A name only the store knows.
    r.name = "retired".into();
    (r.tags, r.group_by) = (vec![], None);
    let got = ranges.query_range(&r).unwrap();
    assert_eq!(got[0].bins.len(), 1);
    assert_eq!(got[0].bins[0].sum, 1.0);
    // A window's summary and timing merge both halves, percentiles
    // through the stored sketches (within the window accuracy); all
    // time is left to the system (this run's totals).
    let minute = Some(Duration::from_secs(60));
    let local = InstanceScope::Local;
    let s = ranges.summary("size", minute, &local).unwrap().unwrap();
    assert_eq!((s.count, s.sum, s.min, s.max), (3, 60.0, 10.0, 30.0));
    let p50 = s.p50.unwrap();
    assert!((p50 - 20.0).abs() < 0.5, "{p50}");
    assert!(
        ranges.summary("size", None, &local).is_none(),
        "all time: the system's"
    );
    let t = ranges.timing("op", minute).unwrap().unwrap();
    assert_eq!(t.count, 1);
    assert!((t.p50.as_secs_f64() - 0.005).abs() < 1e-4, "{t:?}");
    assert!(ranges.summary("never", minute, &local).unwrap().is_err());

    // Outcomes: both runs, windowed and all time, failures by type.
    for window in [minute, None] {
        let (ok, failed) = ranges
            .outcomes("pay", window, &InstanceScope::Local)
            .unwrap()
            .unwrap();
        assert_eq!(ok, 2, "{window:?}");
        let failed: Vec<(&str, u64)> = failed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(failed, vec![("refused", 1), ("timeout", 1)], "{window:?}");
    }
    assert!(
        ranges
            .outcomes("never", None, &InstanceScope::Local)
            .unwrap()
            .is_err()
    );

    // A day's rollup holds both runs, saying what its bins cover.
    let day = RollupRequest {
        name: "jobs".into(),
        tags: vec![],
        period: Period::Day,
        start: at(t0 - 86_400_000),
        end: at(t0 + 86_400_000),
        group_by: Some("q".into()),
        instance: InstanceScope::Local,
    };
    let got = ranges.rollup(&day).unwrap().unwrap();
    let a = got
        .iter()
        .find(|s| s.group.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(a.bins.len(), 1, "{got:?}");
    let b = &a.bins[0];
    assert_eq!(b.sum, 13.0);
    assert_eq!(b.start, Period::Day.start_of(at(t0)));
    assert_eq!(b.end - b.start, chrono::TimeDelta::days(1));
    assert_eq!((b.covers_start, b.covers_end), (at(t0), at(t0 + 20_000)));
    w.shutdown();
    std::fs::remove_dir_all(&dir).ok();
}

/// A listener on 127.0.0.1 that accepts connections and never answers: a
/// database server that hangs. Returns its port.
#[cfg(feature = "store-postgres")]
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    port
}

/// `jobs` over the minute from `t0`, and its hourly rollup.
fn jobs_requests(t0: i64) -> (RangeRequest, RollupRequest) {
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    let range = RangeRequest {
        name: "jobs".into(),
        tags: vec![],
        start: at(t0),
        end: at(t0 + 60_000),
        step: Duration::from_secs(60),
        group_by: None,
        instance: InstanceScope::Local,
    };
    let rollup = RollupRequest {
        name: "jobs".into(),
        tags: vec![],
        period: Period::Hour,
        start: at(t0 - 3_600_000),
        end: at(t0 + 3_600_000),
        group_by: None,
        instance: InstanceScope::Local,
    };
    (range, rollup)
}

/// A connected store that fails its queries (here: its connections
/// closed under it) does not lose the answer: `query_range` and `rollup`
/// answer from memory alone and say why; a store that answers gives
/// complete answers.
#[test]
fn a_store_that_fails_leaves_the_answer_to_memory_saying_so() {
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_store::{StoreUrl, WriterConfig};

    let dir = std::env::temp_dir().join(format!("metrics-sdk-failing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t0 = 1_800_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
    let w = Arc::new(
        HistoryWriter::start(
            m.clone(),
            WriterConfig::new(url, "host"),
            crate::test_util::app_runtime(),
        )
        .unwrap(),
    );
    metrics_of(&m).record_counter("jobs", 2.0, &[]);
    clock.advance(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while w.store().is_none() {
        assert!(std::time::Instant::now() < deadline, "{:?}", w.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (range, rollup) = jobs_requests(t0);
    let ranges = HistoryRanges::new(m, w.clone()).with_store_timeout(Duration::from_secs(120));
    assert_eq!(ranges.query_range_answer(&range).unwrap().partial, None);
    assert_eq!(
        ranges.rollup_answer(&rollup).unwrap().unwrap().partial,
        None
    );

    let store = w.store().unwrap();
    w.block_on(store.close()).unwrap();
    let answer = ranges.query_range_answer(&range).unwrap();
    assert_eq!(answer.series[0].bins[0].sum, 2.0, "memory's part");
    let why = answer.partial.unwrap();
    assert!(why.contains("history store unavailable"), "{why}");
    let answer = ranges.rollup_answer(&rollup).unwrap().unwrap();
    assert_eq!(answer.series[0].bins[0].sum, 2.0);
    assert!(answer.partial.is_some());
    w.shutdown();
    std::fs::remove_dir_all(&dir).ok();
}

/// A PostgreSQL store that accepts connections and never answers: the
/// writer never connects; queries answer from memory alone, saying so,
/// and the store's health check is unhealthy, "not answering".
#[test]
#[cfg(feature = "store-postgres")]
fn a_store_that_never_answers_leaves_the_answer_to_memory_saying_so() {
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_store::WriterConfig;

    let t0 = 1_800_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let url = format!("postgres://u@127.0.0.1:{}/none", silent_server())
        .parse()
        .unwrap();
    let mut config = WriterConfig::new(url, "host");
    config.answer_timeout = Duration::from_millis(200);
    let w =
        Arc::new(HistoryWriter::start(m.clone(), config, crate::test_util::app_runtime()).unwrap());
    metrics_of(&m).record_counter("jobs", 2.0, &[]);
    clock.advance(Duration::from_secs(10));
    let (range, rollup) = jobs_requests(t0);
    let ranges = HistoryRanges::new(m, w.clone());
    let answer = ranges.query_range_answer(&range).unwrap();
    assert_eq!(answer.series[0].bins[0].sum, 2.0);
    let why = answer.partial.unwrap();
    assert!(why.contains("history store unavailable"), "{why}");
    assert!(
        ranges
            .rollup_answer(&rollup)
            .unwrap()
            .unwrap()
            .partial
            .is_some()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let o = store_health(&w.status());
        if o.message
            .as_deref()
            .is_some_and(|m| m.contains("not answering"))
        {
            assert_eq!(o.status, HealthStatus::Unhealthy);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{o:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    w.shutdown();
}

/// The stores a restart test runs on: a fresh SQLite file, and the
/// PostgreSQL database `METRICS_TEST_POSTGRES_URL` names when set (rows
/// kept apart from other tests' by an instance name of their own).
fn restart_stores(test: &str) -> Vec<(metrics_store::StoreUrl, String)> {
    let unique = format!(
        "{test}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let dir = std::env::temp_dir().join(format!("metrics-sdk-{unique}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut out = vec![(
        metrics_store::StoreUrl::Sqlite(dir.join("h.sqlite")),
        "host".to_owned(),
    )];
    if let Ok(url) = std::env::var("METRICS_TEST_POSTGRES_URL") {
        out.push((url.parse().expect("a PostgreSQL URL"), unique));
    }
    out
}

/// A program stopped cleanly and started again on the same store within
/// the same 10 s bin: a window's summary and timing count both runs'
/// samples exactly as one process recording them all would, while that
/// bin is still open and after the second run flushed it (its own rows
/// are then in memory and in the store, counted once); `query_range`
/// agrees.
#[test]
fn a_window_across_a_restart_within_one_bin_counts_both_runs() {
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_store::WriterConfig;

    for (url, instance) in restart_stores("restart-bin") {
        let b0 = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::new(b0 + 1_000));
        // One process that records everything both runs record.
        let reference =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let start = || {
            let m = Arc::new(
                MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap(),
            );
            let mut config = WriterConfig::new(url.clone(), instance.clone());
            config.flush_interval = Duration::from_millis(20);
            let w = Arc::new(
                HistoryWriter::start(m.clone(), config, crate::test_util::app_runtime()).unwrap(),
            );
            (m, w)
        };
        let record = |m: &Arc<MemoryMetrics>, from: u32, to: u32| {
            for v in from..to {
                let v = f64::from(v);
                for target in [m, &reference] {
                    metrics_of(target).record_gauge("level", v * 3.0, &[]);
                    metrics_of(target).record_histogram("size", v, &[("q", "a")]);
                    metrics_of(target).record_timer("op", Duration::from_millis(v as u64), &[]);
                    if v % 3.0 == 0.0 {
                        metrics_of(target).record_failure("pay", "timeout", &[]);
                    } else {
                        metrics_of(target).record_success("pay", &[]);
                    }
                }
            }
        };
        // The first run: the bin from b0, then 4 s into the next; stops.
        let (m, w) = start();
        record(&m, 1, 200);
        clock.advance(Duration::from_secs(10));
        record(&m, 150, 400);
        clock.advance(Duration::from_secs(3));
        w.shutdown();
        // The second run, 2 s later, in the bin the first stopped in.
        clock.advance(Duration::from_secs(2));
        let (m, w) = start();
        record(&m, 300, 500);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while w.store().is_none() {
            assert!(std::time::Instant::now() < deadline, "{:?}", w.status());
            std::thread::sleep(Duration::from_millis(20));
        }
        let ranges = HistoryRanges::new(m.clone(), w.clone());
        let hour = Some(Duration::from_secs(3600));
        let local = InstanceScope::Local;
        let check = |when: &str| {
            for name in ["level", "size", "op"] {
                let got = ranges.summary(name, hour, &local).unwrap().unwrap();
                let want = reference.summary_with_older(name, hour, None).unwrap();
                let exact = |s: &MetricSummary| (s.count, s.sum, s.min, s.max);
                assert_eq!(exact(&got), exact(&want), "{url} {name} {when}");
                let ps = |s: &MetricSummary| [s.p50, s.p90, s.p95, s.p99];
                for (g, e) in ps(&got).into_iter().zip(ps(&want)) {
                    match (g, e) {
                        (Some(g), Some(e)) => {
                            assert!((g - e).abs() <= e * 0.02, "{url} {name} {when}: {g} vs {e}")
                        }
                        (g, e) => assert_eq!(g, e, "{url} {name} {when}"),
                    }
                }
            }
            let t = ranges.timing("op", hour).unwrap().unwrap();
            let want = reference.timing_with_older("op", hour, None).unwrap();
            assert_eq!((t.count, t.max), (want.count, want.max), "{url} {when}");
            let got = ranges.outcomes("pay", hour, &local).unwrap().unwrap();
            let want = reference.outcomes_with_older("pay", hour, None).unwrap();
            assert_eq!(got, want, "{url} {when}");
            let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
            let r = RangeRequest {
                name: "size".into(),
                tags: vec![],
                start: at(b0),
                end: at(b0 + 60_000),
                step: Duration::from_secs(60),
                group_by: None,
                instance: InstanceScope::Local,
            };
            let got = ranges.query_range(&r).unwrap();
            let want = reference.range_query(&r).unwrap();
            let sums = |g: &[RangeGroup]| {
                g[0].bins
                    .iter()
                    .map(|b| (b.count, b.sum, b.min, b.max))
                    .collect::<Vec<_>>()
            };
            assert_eq!(sums(&got), sums(&want), "{url} {when}");
            // The step's percentiles: both runs' sketches merged, as the
            // one process's.
            let ps = |g: &[RangeGroup]| {
                g[0].bins
                    .iter()
                    .map(|b| [b.p50, b.p95, b.p99])
                    .collect::<Vec<_>>()
            };
            assert!(ps(&want).iter().flatten().all(Option::is_some));
            assert_eq!(ps(&got), ps(&want), "{url} {when}");
        };
        check("with the bin open");
        // The second run's bin seals and is flushed: its rows are in the
        // store and in memory, counted once.
        clock.advance(Duration::from_secs(10));
        record(&m, 450, 600);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while w.status().written < 4 {
            assert!(std::time::Instant::now() < deadline, "{:?}", w.status());
            std::thread::sleep(Duration::from_millis(20));
        }
        check("after the second run's flush");
        w.shutdown();
        if let metrics_store::StoreUrl::Sqlite(p) = &url
            && let Some(dir) = p.parent()
        {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// The exact nearest-rank quantile of `samples`.
fn exact_quantile(samples: &[f64], q: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// A step's p50, p95 and p99 within the bins' sketch accuracy of the
/// exact quantiles of `samples`.
fn assert_step_percentiles(b: &RangeBin, samples: &[f64], what: &str) {
    assert_eq!(b.count, samples.len() as u64, "{what}: {b:?}");
    for (q, got) in [(0.5, b.p50), (0.95, b.p95), (0.99, b.p99)] {
        let want = exact_quantile(samples, q);
        let got = got.unwrap_or_else(|| panic!("{what}: no p{q} in {b:?}"));
        let err = want.abs() * metrics_memory::WINDOW_ACCURACY;
        assert!(
            (got - want).abs() <= err,
            "{what} p{q}: {got}, exact {want}"
        );
    }
}

/// A first run's bins in the store, the second run's in memory: a step
/// over both has the percentiles of both runs' samples (their sketches
/// merged, not their percentiles averaged), and the stored steps have the
/// figures memory gave them before the flush.
#[test]
fn a_step_half_stored_half_in_memory_has_the_percentiles_of_both() {
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_store::WriterConfig;

    for (url, instance) in restart_stores("step-percentiles") {
        let b0: i64 = 1_800_000_000_000; // a minute edge
        let clock = Arc::new(ManualClock::new(b0 + 1_000));
        let start = || {
            let m = Arc::new(
                MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap(),
            );
            let config = WriterConfig::new(url.clone(), instance.clone());
            let w = Arc::new(
                HistoryWriter::start(m.clone(), config, crate::test_util::app_runtime()).unwrap(),
            );
            (m, w)
        };
        let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
        let request = |step: u64| RangeRequest {
            name: "lat".into(),
            tags: vec![],
            start: at(b0),
            end: at(b0 + 60_000),
            step: Duration::from_secs(step),
            group_by: None,
            instance: InstanceScope::Local,
        };
        let a: Vec<f64> = (1..=100).map(f64::from).collect();
        let b: Vec<f64> = (1000..=1200).map(f64::from).collect();
        let c: Vec<f64> = (5000..=5400).map(f64::from).collect();
        let record = |m: &Arc<MemoryMetrics>, vs: &[f64]| {
            for v in vs {
                metrics_of(m).record_histogram("lat", *v, &[]);
            }
        };
        // The first run: A in the bin from b0, B in the next; stops.
        let (m, w) = start();
        record(&m, &a);
        clock.advance(Duration::from_secs(10));
        record(&m, &b);
        clock.advance(Duration::from_secs(10));
        let before = m.range_query(&request(10)).unwrap();
        w.shutdown();
        // The second run: C in the bin from b0 + 20 s.
        clock.advance(Duration::from_secs(1));
        let (m, w) = start();
        record(&m, &c);
        clock.advance(Duration::from_secs(10));
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while w.store().is_none() {
            assert!(std::time::Instant::now() < deadline, "{:?}", w.status());
            std::thread::sleep(Duration::from_millis(20));
        }
        let ranges = HistoryRanges::new(m.clone(), w.clone());

        // 10 s steps: the stored ones as memory gave them, then C's.
        let steps = ranges.query_range(&request(10)).unwrap();
        let steps = &steps[0].bins;
        assert_eq!(steps.len(), 3, "{url}: {steps:?}");
        assert_step_percentiles(&steps[0], &a, &format!("{url} stored A"));
        assert_step_percentiles(&steps[1], &b, &format!("{url} stored B"));
        assert_step_percentiles(&steps[2], &c, &format!("{url} memory C"));
        let ps = |x: &RangeBin| [x.p50, x.p95, x.p99];
        for (stored, mem) in steps.iter().zip(&before[0].bins) {
            assert_eq!(
                ps(stored),
                ps(mem),
                "{url}: the store's figures are memory's"
            );
        }

        // One minute step: A and B from the store, C from memory.
        let one = ranges.query_range(&request(60)).unwrap();
        let step = &one[0].bins[0];
        let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
        assert_step_percentiles(step, &all, &format!("{url} merged"));
        // Not the halves' percentiles averaged, even weighted by count.
        let stored_half: Vec<f64> = a.iter().chain(&b).copied().collect();
        let (ns, nm) = (stored_half.len() as f64, c.len() as f64);
        let weighted =
            (exact_quantile(&stored_half, 0.5) * ns + exact_quantile(&c, 0.5) * nm) / (ns + nm);
        let got = step.p50.unwrap();
        assert!(
            (got - weighted).abs() > 100.0,
            "{url}: p50 {got} ~ {weighted}"
        );
        // Every instance (one here) merges the same way.
        let mut r = request(60);
        r.instance = InstanceScope::All;
        let every = ranges.query_range(&r).unwrap();
        assert_eq!(ps(&every[0].bins[0]), ps(step), "{url}");
        w.shutdown();
        if let metrics_store::StoreUrl::Sqlite(p) = &url
            && let Some(dir) = p.parent()
        {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}
