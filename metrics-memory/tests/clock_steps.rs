//! Wall-clock steps (an NTP step, an operator setting the time) neither
//! lose nor move what was recorded: every sample lands on the backend's
//! recording timeline, which never runs backwards, and every window, range
//! query and sealed bin reads that same timeline.

use std::sync::Arc;
use std::time::Duration;

use metrics_memory::{Clock, ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::app::MetricsAggregator;
use metrics_protocol::backend::HealthStatus;
use metrics_protocol::{MetricCollector, Metrics};
use metrics_query::RangeRequest;

/// On a 15 minute edge (so on every bin edge of the default windows).
const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;
const SEC: Duration = Duration::from_secs(1);

fn backend() -> (Arc<ManualClock>, Arc<MemoryMetrics>) {
    let clock = Arc::new(ManualClock::new(T0));
    let m = MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap();
    (clock, Arc::new(m))
}

/// Moves the wall clock alone by `delta_ms`, as an NTP step would.
fn step(clock: &ManualClock, delta_ms: i64) {
    clock.step(delta_ms);
}

/// One sample a second for `n` seconds into a counter by name, a bound
/// counter handle and a histogram.
fn record_each_second(m: &Arc<MemoryMetrics>, clock: &ManualClock, n: u32) {
    let m = Metrics::new(m.clone());
    let handle = m.counter("bound", &[]);
    for _ in 0..n {
        m.record_counter("jobs", 1.0, &[]);
        handle.increment();
        m.record_histogram("lat", 5.0, &[]);
        clock.advance(SEC);
    }
}

/// The non-empty 10 s bins of `name` in `[from, to)`: (start - T0 in
/// seconds, count).
fn bins(m: &MemoryMetrics, name: &str, from: i64, to: i64) -> Vec<(i64, u64)> {
    let q = RangeRequest {
        name: name.into(),
        tags: Vec::new(),
        start: chrono::DateTime::from_timestamp_millis(from).unwrap(),
        end: chrono::DateTime::from_timestamp_millis(to).unwrap(),
        step: Duration::from_secs(10),
        group_by: None,
        instance: Default::default(),
    };
    let got = m.range_query(&q).unwrap();
    got.first()
        .map(|s| {
            s.bins
                .iter()
                .map(|b| ((b.start.timestamp_millis() - T0) / 1000, b.count))
                .collect()
        })
        .unwrap_or_default()
}

/// `n` bins of 10 samples, the first starting `first` seconds after T0.
fn tens(first: i64, n: i64) -> Vec<(i64, u64)> {
    (0..n).map(|i| (first + 10 * i, 10)).collect()
}

#[test]
fn a_step_back_moves_nothing_recorded_after_it() {
    let (clock, m) = backend();
    record_each_second(&m, &clock, 60);
    step(&clock, -HOUR);
    // The wall clock now reads an hour earlier; the timeline goes on.
    record_each_second(&m, &clock, 60);
    assert_eq!(clock.now_millis(), T0 + 120_000 - HOUR);
    assert_eq!(m.clock_ms(), T0 + 120_000);
    assert_eq!(m.clock_behind_ms(), HOUR);
    for name in ["jobs", "bound", "lat"] {
        // Twelve bins of 10, each at its timeline time: not five bins of
        // 10 and one of 70.
        assert_eq!(
            bins(&m, name, T0 - 2 * HOUR, T0 + 2 * HOUR),
            tens(0, 12),
            "{name}"
        );
        let minute = m
            .metric_summary(name, Some(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(minute.count, 60, "{name}: the last minute");
        assert_eq!(m.metric_summary(name, None).unwrap().count, 120);
    }
}

#[test]
fn a_window_after_a_step_back_counts_exactly_what_was_recorded_in_it() {
    let (clock, m) = backend();
    let w = Metrics::new(m.clone());
    for _ in 0..3 {
        w.record_histogram("lat", 1.0, &[]);
        clock.advance(Duration::from_secs(10));
    }
    // Two minutes later the wall clock steps back an hour; exactly three
    // samples are recorded, 10 s apart, in the minute that follows.
    clock.advance(Duration::from_secs(120));
    step(&clock, -HOUR);
    for i in 0..3 {
        if i > 0 {
            clock.advance(Duration::from_secs(10));
        }
        w.record_histogram("lat", 2.0, &[]);
    }
    let minute = m
        .metric_summary("lat", Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!((minute.count, minute.sum), (3, 6.0));
    let five = m
        .metric_summary("lat", Some(Duration::from_secs(300)))
        .unwrap();
    assert_eq!((five.count, five.sum), (6, 9.0));
    // Each in the bin of its timeline time: 150, 160 and 170 s after T0.
    assert_eq!(
        bins(&m, "lat", T0 - 2 * HOUR, T0 + 2 * HOUR),
        vec![(0, 1), (10, 1), (20, 1), (150, 1), (160, 1), (170, 1)]
    );
}

#[test]
fn a_step_back_then_a_correction_forward_moves_nothing() {
    let (clock, m) = backend();
    record_each_second(&m, &clock, 30);
    step(&clock, -HOUR);
    record_each_second(&m, &clock, 30);
    assert_eq!(m.clock_behind_ms(), HOUR);
    // Corrected: the wall clock reads the timeline again, which follows it.
    step(&clock, HOUR);
    assert_eq!(m.clock_behind_ms(), 0);
    assert_eq!(m.clock_ms(), clock.now_millis());
    record_each_second(&m, &clock, 30);
    // A correction past the timeline is followed at once too.
    step(&clock, 60_000);
    record_each_second(&m, &clock, 30);
    for name in ["jobs", "bound", "lat"] {
        let mut want = tens(0, 9);
        want.extend(tens(150, 3));
        assert_eq!(bins(&m, name, T0 - 2 * HOUR, T0 + 2 * HOUR), want, "{name}");
    }
}

#[test]
fn a_step_forward_leaves_the_bins_between_empty_and_a_correction_back_moves_nothing() {
    let (clock, m) = backend();
    record_each_second(&m, &clock, 30);
    step(&clock, HOUR);
    // Followed at once: the timeline is the wall clock.
    assert_eq!(m.clock_ms(), T0 + 30_000 + HOUR);
    assert_eq!(m.clock_behind_ms(), 0);
    record_each_second(&m, &clock, 30);
    for name in ["jobs", "bound", "lat"] {
        let five = m
            .metric_summary(name, Some(Duration::from_secs(300)))
            .unwrap();
        assert_eq!(five.count, 30, "{name}: the last 5 minutes");
        // The bins before the step are an hour old (cascaded into 1 min
        // bins); those after it are 10 s bins at their time; none between.
        let got = bins(&m, name, T0 - 2 * HOUR, T0 + 3 * HOUR);
        assert_eq!(
            got,
            vec![(0, 30), (3630, 10), (3640, 10), (3650, 10)],
            "{name}"
        );
    }
    // The step was a mistake and is corrected: the wall clock goes back an
    // hour, the timeline goes on.
    step(&clock, -HOUR);
    assert_eq!(m.clock_behind_ms(), HOUR);
    record_each_second(&m, &clock, 30);
    for name in ["jobs", "bound", "lat"] {
        let got = bins(&m, name, T0 + HOUR, T0 + 3 * HOUR);
        assert_eq!(got, tens(3630, 6), "{name}");
        assert_eq!(m.metric_summary(name, None).unwrap().count, 90);
    }
}

#[test]
fn health_says_how_far_the_wall_clock_is_behind_the_timeline() {
    let (clock, m) = backend();
    let w = Metrics::new(m.clone());
    w.record_counter("jobs", 1.0, &[]);
    let healthy = &m.health()[0];
    assert_eq!(healthy.status, HealthStatus::Healthy);
    assert_eq!(healthy.details.get("clock_behind_s"), Some(&0.0));
    step(&clock, -90_000);
    let h = &m.health()[0];
    assert_eq!(h.status, HealthStatus::Degraded);
    assert_eq!(h.details.get("clock_behind_s"), Some(&90.0));
    let msg = h.message.as_deref().unwrap_or_default();
    assert!(
        msg.contains("wall clock 90 s behind the recording timeline"),
        "{msg}"
    );
    // Once the wall clock passes the timeline again, health is back.
    clock.advance(SEC);
    step(&clock, 90_000);
    assert_eq!(m.health()[0].status, HealthStatus::Healthy);
}
