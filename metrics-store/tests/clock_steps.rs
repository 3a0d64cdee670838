//! A wall-clock step in either direction, and its correction, lose nothing
//! on the way to the database: the writer reads the memory backend's
//! recording timeline, which never runs backwards, so its watermark never
//! skips a bin.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{app_rt, rt, temp_dir, wait_until};
use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::Metrics;
use metrics_store::{HistoryQuery, HistoryWriter, OutcomeQuery, Store, StoreUrl, WriterConfig};

const HOUR: i64 = 3_600_000;
/// 7 s past a 15 minute edge: the writer starts inside a bin, and the bins
/// before a step forward cascade into a coarser bin that starts before the
/// writer's watermark.
const T0: i64 = 1_800_000_007_000;

/// Moves the wall clock alone by `delta_ms`, as an NTP step would.
fn step(clock: &ManualClock, delta_ms: i64) {
    clock.step(delta_ms);
}

/// One counter increment, one histogram sample and one success a second,
/// for `n` seconds; returns `n`.
fn record_each_second(m: &Metrics, clock: &ManualClock, n: u64) -> u64 {
    for _ in 0..n {
        m.record_counter("jobs", 1.0, &[]);
        m.record_histogram("lat", 5.0, &[]);
        m.record_success("pay", &[]);
        clock.advance(Duration::from_secs(1));
    }
    n
}

/// What the database holds: samples of `jobs` and `lat`, the largest
/// count of one stored 10 s bin, and successes of `pay`.
fn stored(url: &StoreUrl) -> (u64, u64, u64, u64) {
    rt().block_on(async {
        let s = Store::open(url, "reader").await.unwrap();
        let mut counts = Vec::new();
        let mut largest = 0;
        for name in ["jobs", "lat"] {
            let q = HistoryQuery {
                name: name.into(),
                start_ms: T0 - 3 * HOUR,
                end_ms: T0 + 72 * HOUR,
                step_ms: 10_000,
                ..HistoryQuery::default()
            };
            let got = s.query(&q).await.unwrap();
            let bins = got.first().map(|g| g.bins.clone()).unwrap_or_default();
            counts.push(bins.iter().map(|b| b.count).sum::<u64>());
            largest = bins.iter().map(|b| b.count).fold(largest, u64::max);
        }
        let pay = s
            .outcomes(&OutcomeQuery {
                operation: "pay".into(),
                ..OutcomeQuery::default()
            })
            .await
            .unwrap();
        s.close().await;
        (counts[0], counts[1], largest, pay.success)
    })
}

/// Records for 30 s, waits until the writer has written the bins that
/// ended (its watermark is past them), steps the wall clock by `delta_ms`,
/// records for 30 s more, then (with `correct`) steps it back and records
/// again; shuts the writer down and checks that the database holds every
/// sample.
fn run(test: &str, delta_ms: i64, correct: bool) {
    let url = StoreUrl::Sqlite(temp_dir(test).join("h.sqlite"));
    let clock = Arc::new(ManualClock::new(T0));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let mut cfg = WriterConfig::new(url.clone(), "w");
    cfg.flush_interval = Duration::from_millis(20);
    let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
    let metrics = Metrics::new(m.clone());
    let mut recorded = record_each_second(&metrics, &clock, 30);
    // Three bins of each metric and of the outcomes have ended.
    wait_until("the first bins written", || w.status().written >= 9);
    step(&clock, delta_ms);
    recorded += record_each_second(&metrics, &clock, 30);
    if correct {
        step(&clock, -delta_ms);
        recorded += record_each_second(&metrics, &clock, 30);
    }
    w.shutdown();
    let st = w.status();
    assert_eq!((st.dropped, st.pending), (0, 0), "{test}: {st:?}");
    let (jobs, lat, largest, pay) = stored(&url);
    assert_eq!(
        (jobs, lat, pay),
        (recorded, recorded, recorded),
        "{test}: samples in the database (jobs, lat, pay) after {recorded} recorded; {st:?}"
    );
    // Nothing piled into one bin: at most one sample a second.
    assert!(largest <= 10, "{test}: a stored 10 s bin holds {largest}");
    if let Some(dir) = match &url {
        StoreUrl::Sqlite(p) => p.parent().map(PathBuf::from),
        _ => None,
    } {
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn a_step_back_loses_nothing_in_the_store_before_and_after_its_correction() {
    run("back", -HOUR, false);
    run("back-corrected", -HOUR, true);
}

#[test]
fn a_step_forward_loses_nothing_in_the_store_before_and_after_its_correction() {
    run("forward", HOUR, false);
    run("forward-corrected", HOUR, true);
}

#[test]
fn a_step_forward_past_the_memory_retention_loses_nothing_in_the_store() {
    // Two days: the bins before the step are older than every ring of the
    // memory backend when the writer next collects.
    run("forward-2d", 48 * HOUR, false);
}
