use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::app::*;
use metrics_protocol::backend::{DropReason, HealthStatus, validate};
use metrics_protocol::*;

use crate::{Clock, ManualClock, MemoryConfig, MemoryMetrics, QuantileSketch};
use metrics_query::{Period, RangeGroup, RangeRequest, RollupRequest};

const T0: i64 = 1_790_000_000_000; // a fixed instant, aligned to no particular bin

fn manual() -> (Arc<ManualClock>, Arc<MemoryMetrics>) {
    manual_with(MemoryConfig::default())
}

fn manual_with(c: MemoryConfig) -> (Arc<ManualClock>, Arc<MemoryMetrics>) {
    let clock = Arc::new(ManualClock::new(T0));
    let m = MemoryMetrics::with_clock(c, clock.clone()).unwrap();
    (clock, Arc::new(m))
}

/// The handle a library would record into `m` with.
fn handle(m: &Arc<MemoryMetrics>) -> Metrics {
    Metrics::new(m.clone())
}

#[test]
fn windowed_summary_covers_exactly_the_window_and_ages_out() {
    let (clock, m) = manual();
    let w = handle(&m);
    for i in 0..600 {
        // One sample a second for 10 minutes: values 0..599.
        w.record_histogram("job.size", f64::from(i), &[]);
        clock.advance(Duration::from_secs(1));
    }
    let all = m.metric_summary("job.size", None).unwrap();
    assert_eq!(all.count, 600);
    assert_eq!(all.max, 599.0);
    let last5 = m
        .metric_summary("job.size", Some(Duration::from_secs(300)))
        .unwrap();
    // 10 s bins: the window holds whole bins, so count, sum, max and p50 agree.
    assert!((290..=310).contains(&last5.count), "{}", last5.count);
    assert_eq!(last5.max, 599.0);
    let lo = 600.0 - last5.count as f64;
    assert_eq!(last5.min, lo);
    assert_eq!(last5.sum, (lo as u64..600).sum::<u64>() as f64);
    let p50 = last5.p50.unwrap();
    assert!(p50 >= lo && p50 <= 599.0);
    // 25 hours later everything has aged out of every window.
    clock.advance(Duration::from_secs(25 * 3600));
    assert!(matches!(
        m.metric_summary("job.size", Some(Duration::from_secs(86_400))),
        Err(MetricsError::NoData(_))
    ));
    // All-time statistics stay.
    assert_eq!(m.metric_summary("job.size", None).unwrap().count, 600);
    assert!(
        m.metric_summary("job.size", Some(Duration::from_secs(90_000)))
            .is_err()
    );
}

#[test]
fn counters_recycle_their_slots_into_rings_without_losing_samples() {
    let (clock, m) = manual();
    let w = handle(&m);
    for _ in 0..1200 {
        // 2 per second for 20 minutes, through recycled slots and cascaded bins.
        w.record_counter("ticks", 2.0, &[("k", "v")]);
        clock.advance(Duration::from_millis(1000));
    }
    assert_eq!(m.counter_value("ticks", &[("k", "v")]), Some(2400.0));
    let all = m.metric_summary("ticks", None).unwrap();
    assert_eq!((all.count, all.sum), (1200, 2400.0));
    let five = m
        .metric_summary("ticks", Some(Duration::from_secs(300)))
        .unwrap();
    assert!((290..=310).contains(&five.count), "{}", five.count);
    assert_eq!(
        five.sum,
        2.0 * five.count as f64,
        "count and sum cover the same samples"
    );
    let hour = m
        .metric_summary("ticks", Some(Duration::from_secs(3600)))
        .unwrap();
    assert_eq!((hour.count, hour.sum), (1200, 2400.0));
    // Per 10 s bin the increase is 20: min and max of counters are per-bin increases.
    assert_eq!((five.min, five.max), (20.0, 20.0));
    clock.advance(Duration::from_secs(2 * 86_400));
    assert!(
        m.metric_summary("ticks", Some(Duration::from_secs(86_400)))
            .is_err()
    );
    assert_eq!(m.counter_value("ticks", &[("k", "v")]), Some(2400.0));
}

#[test]
fn success_rate_and_breakdown_over_windows() {
    let (clock, m) = manual();
    for _ in 0..8 {
        m.record_success("git.push", &[]);
    }
    m.record_failure("git.push", "auth", &[]);
    clock.advance(Duration::from_secs(2 * 3600));
    m.record_failure("git.push", "network", &[]);
    m.record_failure("git.push", "network", &[]);
    m.record_success("git.push", &[]);
    assert!((m.success_rate("git.push", None).unwrap() - 9.0 / 12.0).abs() < 1e-12);
    let hour = Some(Duration::from_secs(3600));
    assert!((m.success_rate("git.push", hour).unwrap() - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        m.failure_breakdown("git.push", hour).unwrap(),
        [("network".to_owned(), 2)].into()
    );
    let all = m.failure_breakdown("git.push", None).unwrap();
    assert_eq!(all["auth"], 1);
    assert_eq!(all["network"], 2);
    assert!(matches!(
        m.success_rate("nope", None),
        Err(MetricsError::NoData(_))
    ));
    assert_eq!(m.operations(), vec!["git.push".to_owned()]);
}

#[test]
fn timers_stop_once_and_feed_stats_and_tracker() {
    let m = Arc::new(MemoryMetrics::new());
    let w = handle(&m);
    let id = m.start_timer("db.query", &[("table", "users")]);
    let r = m.stop_timer(id, true).unwrap();
    // Into the timer series named after the operation, tagged with the metadata.
    let d = m.distribution("db.query", &[("table", "users")]).unwrap();
    assert_eq!((d.count, d.sum), (1, r.as_secs_f64() * 1e3));
    assert_eq!(
        m.outcome_counts("db.query", &[("table", "users")])
            .unwrap()
            .0,
        1
    );
    assert!(matches!(m.stop_timer(id, true), Err(MetricsError::UnknownTimer(x)) if x == id));
    assert!(matches!(
        m.stop_timer(TimerId(u64::MAX), true),
        Err(MetricsError::UnknownTimer(_))
    ));
    let id = m.start_timer("db.query", &[("table", "users")]);
    m.stop_timer(id, false).unwrap();
    let stats = m.timing_stats("db.query", None).unwrap();
    assert_eq!(stats.count, 2);
    assert!(stats.min <= stats.p50 && stats.p50 <= stats.max);
    assert_eq!(m.success_rate("db.query", None).unwrap(), 0.5);
    assert_eq!(
        m.distribution("db.query", &[("table", "users")])
            .unwrap()
            .count,
        2
    );
    w.record_counter("not.timer", 1.0, &[]);
    assert!(matches!(
        m.timing_stats("not.timer", None),
        Err(MetricsError::InvalidArgument(_))
    ));
}

#[test]
fn running_timer_table_is_bounded() {
    let m = Arc::new(
        MemoryMetrics::with_config(MemoryConfig {
            max_running_timers: 3,
            ..Default::default()
        })
        .unwrap(),
    );
    let ids: Vec<_> = (0..5).map(|_| m.start_timer("t", &[])).collect();
    assert_eq!(m.dropped(DropReason::TimerEvicted), 2);
    assert!(matches!(
        m.stop_timer(ids[0], true),
        Err(MetricsError::UnknownTimer(_))
    ));
    assert!(m.stop_timer(ids[4], true).is_ok());
}

#[test]
fn cardinality_limit_folds_into_one_overflow_series_counting_everything() {
    let (_, m) = manual_with(MemoryConfig {
        cardinality_limit: 3,
        ..Default::default()
    });
    let w = handle(&m);
    for user in 0..10 {
        let u = user.to_string();
        w.record_counter("logins", 1.0, &[("user", &u)]);
        w.record_counter("logins", 1.0, &[("user", &u)]);
    }
    let series = m.series("logins");
    assert_eq!(series.len(), 4);
    let total: f64 = series.iter().map(|s| s.value).sum();
    assert_eq!(total, 20.0);
    assert_eq!(
        m.counter_value("logins", &[("metric.overflow", "true")]),
        Some(14.0)
    );
    let h = &m.health()[0];
    assert_eq!(h.overflowed_metrics, vec!["logins".to_owned()]);
    assert_eq!(h.status, HealthStatus::Degraded);
    // Existing series keep working.
    w.record_counter("logins", 1.0, &[("user", "0")]);
    assert_eq!(m.counter_value("logins", &[("user", "0")]), Some(3.0));
}

#[test]
fn idle_series_expire_but_bound_ones_stay() {
    let (clock, m) = manual_with(MemoryConfig {
        idle_expiry_secs: Some(60),
        ..Default::default()
    });
    let w = handle(&m);
    w.increment("idle", &[]);
    let bound = w.counter("bound", &[]);
    bound.increment();
    clock.advance(Duration::from_secs(30));
    w.increment("busy", &[]);
    clock.advance(Duration::from_secs(45));
    assert_eq!(m.expire_idle(), 1);
    assert_eq!(m.counter_value("idle", &[]), None);
    assert_eq!(m.counter_value("busy", &[]), Some(1.0));
    bound.increment();
    assert_eq!(m.counter_value("bound", &[]), Some(2.0));
}

#[test]
fn tag_order_does_not_matter_and_bad_input_never_reaches_a_series() {
    let m = Arc::new(MemoryMetrics::new());
    let w = handle(&m);
    let three = [("a", "1"), ("b", "2"), ("c", "3")];
    w.record_counter("req", 1.0, &three);
    // Every permutation lands in the one series, by name or through a handle.
    w.record_counter("req", 1.0, &[("c", "3"), ("a", "1"), ("b", "2")]);
    w.record_counter("req", 1.0, &[("b", "2"), ("c", "3"), ("a", "1")]);
    let key = Key::new("req", &[("c", "3"), ("b", "2"), ("a", "1")]).unwrap();
    Counter::from_arc(
        m.bind(&key, MetricType::Counter)
            .expect("the memory backend binds handles"),
    )
    .increment();
    assert_eq!(
        m.counter_value("req", &[("b", "2"), ("a", "1"), ("c", "3")]),
        Some(4.0)
    );
    assert_eq!(m.series("req").len(), 1);

    // Same length and every pair of the input in the series, but a duplicate
    // key: not a match, and rejected by the validation of a new series.
    w.record_counter("req", 1.0, &[("a", "1"), ("a", "1"), ("b", "2")]);
    assert_eq!(m.dropped(DropReason::DuplicateTag), 1);
    // Bad names, tags and values are each dropped and counted.
    w.record_counter("", 1.0, &three);
    w.record_counter("re\nq", 1.0, &three);
    w.record_counter("req", 1.0, &[("a\u{7}", "1"), ("b", "2"), ("c", "3")]);
    let many: Vec<(String, String)> = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.record_counter("req", 1.0, &many);
    w.record_counter("req", -1.0, &three);
    w.record_counter("req", f64::NAN, &three);
    w.record_gauge("g", f64::INFINITY, &[]);
    w.record_histogram("h", f64::NAN, &three);
    assert_eq!(m.dropped(DropReason::InvalidName), 2);
    assert_eq!(m.dropped(DropReason::InvalidTag), 1);
    assert_eq!(m.dropped(DropReason::TooManyTags), 1);
    assert_eq!(m.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(m.dropped(DropReason::InvalidValue), 3);
    // Nothing reached a series: the one valid series is untouched.
    assert_eq!(m.series_count(), 1);
    assert_eq!(m.counter_value("req", &three), Some(4.0));
}

#[test]
fn a_name_keeps_its_first_type() {
    let m = Arc::new(MemoryMetrics::new());
    let w = handle(&m);
    w.record_counter("x", 1.0, &[("a", "1")]);
    w.record_gauge("x", 1.0, &[("a", "1")]);
    w.record_gauge("x", 1.0, &[("a", "2")]);
    assert_eq!(m.dropped(DropReason::TypeMismatch), 2);
    assert_eq!(m.series("x").len(), 1);
}

#[test]
fn queries_by_tag_top_and_range() {
    let (clock, m) = manual();
    let w = handle(&m);
    for (user, n) in [("ann", 5.0), ("bob", 9.0), ("cy", 1.0)] {
        w.record_counter("tool.calls", n, &[("user", user), ("tool", "grep")]);
    }
    w.record_gauge("queue.depth", 4.0, &[("tool", "grep")]);
    let by_tag = m.metrics_by_tag(&[("tool", "grep")]).unwrap();
    assert_eq!(by_tag.len(), 4);
    let top = m.top_metrics(MetricType::Counter, 2).unwrap();
    assert_eq!(
        top.iter().map(|v| v.value).collect::<Vec<_>>(),
        vec![9.0, 5.0]
    );
    assert_eq!(top[0].tags["user"], "bob");

    clock.advance(Duration::from_secs(60));
    w.record_counter("tool.calls", 2.0, &[("user", "ann"), ("tool", "grep")]);
    let start = crate::clock::to_datetime(T0 - 600_000);
    let end = crate::clock::to_datetime(T0 + 600_000);
    let q = RangeRequest {
        name: "tool.calls".into(),
        tags: vec![("tool".into(), "grep".into())],
        start,
        end,
        step: Duration::from_secs(60),
        group_by: Some("user".into()),
        instance: Default::default(),
    };
    let groups = m.range_query(&q).unwrap();
    assert_eq!(groups.len(), 3);
    let ann = groups
        .iter()
        .find(|g| g.group.as_deref() == Some("ann"))
        .unwrap();
    assert_eq!(ann.bins.iter().map(|b| b.sum).sum::<f64>(), 7.0);
    assert_eq!(ann.bins.len(), 2);
    let merged = m
        .range_query(&RangeRequest {
            group_by: None,
            ..q.clone()
        })
        .unwrap();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].bins.iter().map(|b| b.count).sum::<u64>(), 4);
    let daily = m
        .rollup(&RollupRequest {
            name: "tool.calls".into(),
            tags: vec![],
            period: Period::Day,
            start,
            end,
            group_by: None,
            instance: Default::default(),
        })
        .unwrap();
    assert_eq!(daily[0].bins.iter().map(|b| b.sum).sum::<f64>(), 17.0);
    assert!(
        m.range_query(&RangeRequest {
            step: Duration::from_secs(7),
            ..q
        })
        .is_err()
    );
}

#[test]
fn samples_are_kept_only_when_asked_and_never_drained() {
    let m = Arc::new(
        MemoryMetrics::with_config(MemoryConfig {
            keep_samples: 3,
            ..Default::default()
        })
        .unwrap(),
    );
    let w = handle(&m);
    for v in [1.0, 2.0, 3.0, 4.0] {
        w.record_histogram("h", v, &[]);
    }
    assert_eq!(m.samples("h", &[]), vec![2.0, 3.0, 4.0]);
    assert_eq!(m.samples("h", &[]), vec![2.0, 3.0, 4.0]);
    assert!(MemoryMetrics::new().samples("h", &[]).is_empty());
}

#[test]
fn bad_config_names_the_field() {
    let bad = MemoryConfig {
        cardinality_limit: 0,
        ..Default::default()
    };
    let e = MemoryMetrics::with_config(bad).unwrap_err().to_string();
    assert!(e.contains("cardinality_limit"), "{e}");
    let bad = MemoryConfig {
        windows: vec![],
        ..Default::default()
    };
    assert!(
        MemoryMetrics::with_config(bad)
            .unwrap_err()
            .to_string()
            .contains("windows")
    );
}

#[test]
fn new_names_past_the_limit_are_dropped_counted_and_named_in_health() {
    let (_, m) = manual_with(MemoryConfig {
        max_names: 3,
        ..Default::default()
    });
    let w = handle(&m);
    for name in ["a", "b", "c", "d", "e"] {
        w.record_counter(name, 1.0, &[]);
    }
    assert_eq!(m.series_count(), 3);
    assert_eq!(m.counter_value("d", &[]), None);
    assert_eq!(m.dropped_over_name_limit(), 2);
    // Existing names keep recording, with new tag sets too.
    w.record_counter("a", 1.0, &[("k", "v")]);
    w.record_counter("a", 1.0, &[]);
    assert_eq!(m.counter_value("a", &[]), Some(2.0));
    assert_eq!(m.counter_value("a", &[("k", "v")]), Some(1.0));
    // Handles for a new name count every use as a drop.
    w.counter("f", &[]).increment();
    assert_eq!(m.dropped_over_name_limit(), 3);
    // Operations have the same limit.
    for op in ["op1", "op2", "op3", "op4"] {
        m.record_success(op, &[]);
    }
    assert_eq!(m.operations().len(), 3);
    assert_eq!(m.dropped_over_name_limit(), 4);
    let h = &m.health()[0];
    assert_eq!(h.status, HealthStatus::Degraded);
    let msg = h.message.as_deref().unwrap_or_default();
    assert!(msg.contains("max_names = 3"), "{msg}");
    assert_eq!(h.details["dropped_name_limit"], 4.0);
    assert_eq!(h.dropped[&DropReason::NameLimit], 4);
}

#[test]
fn the_series_limit_folds_new_tag_sets_into_overflow_series() {
    let (_, m) = manual_with(MemoryConfig {
        max_series: 4,
        ..Default::default()
    });
    let w = handle(&m);
    for i in 0..6 {
        let v = i.to_string();
        w.record_counter("x", 1.0, &[("id", &v)]);
        w.record_counter("y", 1.0, &[("id", &v)]);
    }
    // Four series, then one overflow series per name: every sample counted.
    assert_eq!(m.series_count(), 6);
    let total: f64 = m.series("").iter().map(|s| s.value).sum();
    assert_eq!(total, 12.0);
    assert_eq!(m.health()[0].overflowed_metrics, vec!["x", "y"]);
    assert!(
        MemoryMetrics::with_config(MemoryConfig {
            max_names: 0,
            ..Default::default()
        })
        .unwrap_err()
        .to_string()
        .contains("max_names")
    );
}

#[test]
fn dropping_the_backend_frees_its_series_although_this_thread_cached_them() {
    let m = Arc::new(MemoryMetrics::new());
    let w = handle(&m);
    w.record_counter("c", 1.0, &[("k", "v")]);
    w.record_histogram("h", 2.0, &[]);
    // Recorded twice: the second is served from this thread's cache.
    w.record_counter("c", 1.0, &[("k", "v")]);
    let weak: Vec<std::sync::Weak<crate::registry::Series>> = ["c", "h"]
        .iter()
        .map(|n| m.registry.by_name(n))
        .map(|v| Arc::downgrade(&v[0]))
        .collect();
    assert!(weak.iter().all(|w| w.upgrade().is_some()));
    drop((m, w));
    assert!(
        weak.iter().all(|w| w.upgrade().is_none()),
        "the per-thread cache must not keep a dropped backend's series alive"
    );
}

#[test]
fn a_counter_is_never_expired_before_its_last_sample_is_idle_long_enough() {
    // Counters stamp their activity once per bin, not per sample: expiry
    // must still count from the last sample, never from the bin's first.
    let (clock, m) = manual_with(MemoryConfig {
        idle_expiry_secs: Some(60),
        ..Default::default()
    });
    let w = handle(&m);
    // Start of a 10 s bin, then a sample 9 s later in the same bin.
    clock.set(T0 - T0.rem_euclid(10_000) + 10_000);
    let start = clock.now_millis();
    let h = w.counter("late", &[]);
    h.increment();
    clock.advance(Duration::from_secs(9));
    h.increment();
    drop(h);
    w.increment("by_name", &[]);
    // 59 s after the last samples: both stay.
    clock.set(start + 68_000);
    assert_eq!(m.expire_idle(), 0);
    assert_eq!(m.counter_value("late", &[]), Some(2.0));
    // Past a minute after the end of their bin: both go.
    clock.set(start + 70_001);
    assert_eq!(m.expire_idle(), 2);
    assert_eq!(m.counter_value("late", &[]), None);
}

#[test]
fn dropping_a_handle_releases_its_pin_so_idle_expiry_applies() {
    let (clock, m) = manual_with(MemoryConfig {
        idle_expiry_secs: Some(60),
        ..Default::default()
    });
    let w = handle(&m);
    let a = w.counter("pinned", &[]);
    let b = w.counter("pinned", &[]);
    a.increment();
    drop(a);
    clock.advance(Duration::from_secs(120));
    assert_eq!(m.expire_idle(), 0, "one handle still pins it");
    drop(b);
    assert_eq!(m.expire_idle(), 1);
    assert_eq!(m.counter_value("pinned", &[]), None);
}

#[test]
fn timers_started_through_the_backend_read_its_clock() {
    let (clock, m) = manual();
    let id = m.start_timer("job", &[("kind", "batch")]);
    clock.advance(Duration::from_secs(5));
    clock.advance(Duration::from_micros(1500));
    let r = m.stop_timer(id, true).unwrap();
    assert_eq!(r, Duration::from_micros(5_001_500));
    // Recorded when it stopped, on the backend's clock.
    let recorded = m.metrics_by_tag(&[("kind", "batch")]).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].timestamp.timestamp_millis(), T0 + 5001);
    let d = m.distribution("job", &[("kind", "batch")]).unwrap();
    assert_eq!((d.count, d.sum), (1, 5001.5));
}

/// A range that starts one second past a bin edge, in 1 min steps: the
/// sample 3 s into it is counted, the one 65 s in is in the second step,
/// and no step counts a sample from outside its own `[start, end)`.
#[test]
fn range_steps_lie_on_the_bin_grid() {
    let (clock, m) = manual();
    let w = handle(&m);
    // A minute edge, and a range starting a second after it.
    let edge = (T0 / 60_000 + 1) * 60_000;
    let start = edge + 1_000;
    for (offset, v) in [(3_000, 1.0), (65_000, 2.0), (119_000, 4.0), (121_000, 8.0)] {
        clock.set(start + offset);
        w.record_histogram("lat", v, &[]);
    }
    clock.set(start + 400_000);
    let q = RangeRequest {
        name: "lat".into(),
        tags: vec![],
        start: crate::clock::to_datetime(start),
        end: crate::clock::to_datetime(start + 180_000),
        step: Duration::from_secs(60),
        group_by: None,
        instance: Default::default(),
    };
    let bins = &m.range_query(&q).unwrap()[0].bins;
    let got: Vec<(i64, u64, f64)> = bins
        .iter()
        .map(|b| (b.start.timestamp_millis() - edge, b.count, b.sum))
        .collect();
    // Steps [edge, edge+60 s), [edge+60 s, ...), ...: 4 s, 66 s, 120 s
    // and 122 s past the edge.
    assert_eq!(got, [(0, 1, 1.0), (60_000, 1, 2.0), (120_000, 2, 12.0)]);
    for b in bins {
        assert!(b.covers_start >= b.start && b.covers_end <= b.end, "{b:?}");
    }
}

#[test]
fn range_queries_and_rollups_count_only_what_they_say_they_cover() {
    let (clock, m) = manual();
    let w = handle(&m);
    let mut r = crate::sketch::tests::Rng::new(2026);
    // 3,000 samples at random instants over 3 hours: they reach the 10 s,
    // 1 min and 15 min rings.
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut t = T0;
    for _ in 0..3000 {
        t += 1 + (r.uniform() * 7200.0) as i64;
        clock.set(t);
        let v = (r.uniform() * 1000.0).round();
        w.record_histogram("q", v, &[]);
        w.record_counter("c", v, &[]);
        samples.push((t, v));
    }
    let now = t;
    let independent = |from: i64, to: i64| {
        let vals: Vec<f64> = samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, v)| *v)
            .collect();
        let sum: f64 = vals.iter().sum();
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (vals.len() as u64, sum, min, max)
    };
    // Counters' min and max are per-bin increases (documented), so only
    // histograms compare them.
    let check = |what: &str, start: i64, end: i64, step: Option<i64>, out: &[RangeGroup]| {
        let dist = what.starts_with('q');
        let mut counted = 0;
        let mut prev_end = i64::MIN;
        for b in out.iter().flat_map(|s| &s.bins) {
            let (cs, ce) = (
                b.covers_start.timestamp_millis(),
                b.covers_end.timestamp_millis(),
            );
            assert!(
                cs >= start && ce <= end,
                "{what}: {cs}..{ce} outside {start}..{end}"
            );
            assert!(cs >= prev_end, "{what}: steps overlap");
            prev_end = ce;
            let s0 = b.start.timestamp_millis();
            let e0 = b.end.timestamp_millis();
            if let Some(step) = step {
                assert!(
                    cs >= s0 && cs < s0 + step,
                    "{what}: bin starts outside its step"
                );
                assert_eq!(e0, s0 + step, "{what}: a step is as wide as asked");
            } else {
                assert_eq!(e0, s0 + 3_600_000, "{what}: an hour period ends an hour on");
            }
            let (n, sum, min, max) = independent(cs, ce);
            assert_eq!(b.count, n, "{what}: count of {cs}..{ce}");
            assert_eq!(b.sum, sum, "{what}: sum of {cs}..{ce}");
            if dist && n > 0 {
                assert_eq!((b.min, b.max), (min, max), "{what}: {cs}..{ce}");
            }
            counted += n;
        }
        // Samples inside the range but not counted sit in a stored bin that
        // straddles an edge (at most one 15 min bin wide).
        let inside = independent(start, end).0;
        let edges = independent(start, start + 900_000).0 + independent(end - 900_000, end).0;
        assert!(
            counted <= inside && inside - counted <= edges,
            "{what}: {counted} of {inside}"
        );
        counted
    };
    let mut total = 0;
    for i in 0..60 {
        let start = T0 + (r.uniform() * 3.0 * 3_600_000.0) as i64;
        let end = start + 1 + (r.uniform() * 2.0 * 3_600_000.0) as i64;
        let step = 10_000 * (1 + (r.uniform() * 40.0) as i64);
        let name = if i % 2 == 0 { "q" } else { "c" };
        let q = RangeRequest {
            name: name.into(),
            tags: vec![],
            start: crate::clock::to_datetime(start),
            end: crate::clock::to_datetime(end),
            step: Duration::from_millis(step as u64),
            group_by: None,
            instance: Default::default(),
        };
        // The answer is on the step grid: the range rounded out to steps.
        let (a0, a1) = (
            start.div_euclid(step) * step,
            (end + step - 1).div_euclid(step) * step,
        );
        let a = q.aligned();
        assert_eq!(
            (a.start.timestamp_millis(), a.end.timestamp_millis()),
            (a0, a1)
        );
        total += check(name, a0, a1, Some(step), &m.range_query(&q).unwrap());
        let out = m
            .rollup(&RollupRequest {
                name: "q".into(),
                tags: vec![],
                period: Period::Hour,
                start: q.start,
                end: q.end,
                group_by: None,
                instance: Default::default(),
            })
            .unwrap();
        check("q hour rollup", start, end, None, &out);
    }
    assert!(total > 10_000, "the queries counted something: {total}");
    // The whole retention in one query counts every sample.
    let all = RangeRequest {
        name: "q".into(),
        tags: vec![],
        start: crate::clock::to_datetime(T0 - 3_600_000),
        end: crate::clock::to_datetime(now + 3_600_000),
        step: Duration::from_secs(3600),
        group_by: None,
        instance: Default::default(),
    };
    let n: u64 = m.range_query(&all).unwrap()[0]
        .bins
        .iter()
        .map(|b| b.count)
        .sum();
    assert_eq!(n, 3000);
}

#[test]
fn the_last_value_of_a_gauge_is_the_last_value_set() {
    let (clock, m) = manual();
    let w = handle(&m);
    w.record_gauge("temp", 51.62, &[("room", "a")]);
    clock.advance(Duration::from_secs(1));
    w.record_gauge("temp", 44.85, &[("room", "b")]);
    let s = m.metric_summary("temp", None).unwrap();
    assert_eq!(s.last, Some(44.85));
    clock.advance(Duration::from_secs(1));
    w.record_gauge("temp", 12.5, &[("room", "a")]);
    assert_eq!(m.metric_summary("temp", None).unwrap().last, Some(12.5));
}

#[test]
fn queries_by_name_follow_the_name_index_through_expiry() {
    let clock = Arc::new(ManualClock::new(T0));
    let m = Arc::new(
        MemoryMetrics::with_clock(
            MemoryConfig {
                idle_expiry_secs: Some(60),
                ..Default::default()
            },
            clock.clone(),
        )
        .unwrap(),
    );
    let w = handle(&m);
    w.record_timer("q", Duration::from_millis(5), &[("shard", "a")]);
    w.record_timer("q", Duration::from_millis(7), &[("shard", "b")]);
    w.record_counter("other", 1.0, &[]);
    assert_eq!(m.metric_summary("q", None).unwrap().series, 2);
    clock.advance(Duration::from_secs(45));
    w.record_timer("q", Duration::from_millis(9), &[("shard", "b")]);
    clock.advance(Duration::from_secs(30));
    assert_eq!(m.expire_idle(), 2, "shard a and `other` are idle");
    let s = m.metric_summary("q", None).unwrap();
    assert_eq!((s.series, s.count), (1, 2));
    assert!(matches!(
        m.metric_summary("other", None),
        Err(MetricsError::NoData(_))
    ));
    w.record_timer("q", Duration::from_millis(1), &[("shard", "a")]);
    assert_eq!(m.metric_summary("q", None).unwrap().series, 2);
}

#[test]
fn outcomes_match_tag_sets_in_any_order_and_drop_a_key_given_twice() {
    let (_, m) = manual();
    m.record_success("op", &[("a", "1"), ("b", "2")]);
    m.record_success("op", &[("b", "2"), ("a", "1")]);
    m.record_success("op", &[("a", "1"), ("a", "1")]);
    m.record_failure("op", "bad\nline", &[("a", "1"), ("b", "2")]);
    assert_eq!(
        m.outcome_counts("op", &[("a", "1"), ("b", "2")]).unwrap().0,
        2
    );
    let h = &m.health()[0];
    assert_eq!(h.dropped.get(&DropReason::DuplicateTag), Some(&1));
    // An error type is a tag value: any text, escaped by each exporter.
    let failed = m.outcome_counts("op", &[("a", "1"), ("b", "2")]).unwrap().1;
    assert_eq!(failed.get("bad\nline"), Some(&1));
}

/// Found by the fuzzer (the window property with backward clock steps): a
/// counter sample recorded after the clock stepped back was missing from
/// window queries while the all-time total counted it.
#[test]
fn a_sample_recorded_after_the_clock_steps_back_is_in_the_windows() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let w = handle(&m);
    clock.advance(Duration::from_millis(4_110_000));
    w.record_counter("c", 0.0, &[]);
    clock.set(1_700_000_000_000 + 4_110_000 - 70_001);
    w.record_counter("c", 1.0, &[]);
    assert_eq!(m.counter_value("c", &[]), Some(1.0));
    for window in [300, 3_600, 86_400] {
        let s = m
            .metric_summary("c", Some(Duration::from_secs(window)))
            .unwrap();
        assert_eq!(s.sum, 1.0, "window {window} s");
    }
}

#[test]
fn a_counter_handle_reads_the_injected_clock_and_counts_bad_increments_as_drops() {
    let (clock, m) = manual();
    let w = handle(&m);
    let c = w.counter("handled", &[("k", "v")]);
    c.increment();
    c.add(2.5);
    // Ten minutes later: the first two samples leave a 5-minute window.
    clock.advance(Duration::from_secs(600));
    c.increment();
    c.add(-1.0);
    c.add(f64::NAN);
    assert_eq!(m.counter_value("handled", &[("k", "v")]), Some(4.5));
    let recent = m
        .metric_summary("handled", Some(Duration::from_secs(300)))
        .unwrap();
    assert_eq!((recent.count, recent.sum), (1, 1.0));
    assert_eq!(m.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(m.dropped(DropReason::InvalidValue), 1);
}

#[test]
fn window_coverage_says_which_range_each_window_answer_covers() {
    let (clock, m) = manual();
    let metrics = handle(&m);
    // One sample every 10 s for 26 hours, valued by its index, from T0
    // (on no bin edge): samples at T0 + 10 s * i.
    let n = 26 * 360;
    for i in 0..n {
        clock.set(T0 + i * 10_000);
        metrics.record_histogram("lat", (i + 1) as f64, &[]);
    }
    // Now is off every bin edge too.
    clock.set(T0 + (n - 1) * 10_000 + 3_700);
    let now = clock.now_millis();
    let in_range = |from: i64| -> Vec<f64> {
        (0..n)
            .filter(|i| T0 + i * 10_000 >= from)
            .map(|i| (i + 1) as f64)
            .collect()
    };
    let ceil = |t: i64, step: i64| {
        t.div_euclid(step) * step + if t.rem_euclid(step) == 0 { 0 } else { step }
    };
    for (secs, bin, block) in [
        (300, 10_000, 10_000),
        (3600, 60_000, 900_000),
        (86_400, 900_000, 21_600_000),
    ] {
        let w = Duration::from_secs(secs);
        let since = now - secs as i64 * 1000;
        let c = m.window_coverage("lat", w).unwrap();
        assert_eq!(c.end.timestamp_millis(), now);
        let start = c.start.timestamp_millis();
        let qstart = c.quantiles_start.unwrap().timestamp_millis();
        assert_eq!(start, ceil(since, bin), "{secs} s window: first bin");
        // The percentiles cover the whole window too: a share of the block
        // straddling its start stands for the samples before the first
        // whole block.
        assert_eq!(qstart, start, "{secs} s window: percentiles cover it all");
        // The answer covers exactly what the coverage says.
        let s = m.metric_summary("lat", Some(w)).unwrap();
        let counted = in_range(start);
        assert_eq!(s.count, counted.len() as u64, "{secs} s window count");
        assert_eq!(s.min, counted[0]);
        // The stated error: within 1 % of a value whose rank is off by at
        // most the samples drawn from the straddling block (the window's
        // samples before its first whole block).
        let drawn = counted.len() - in_range(ceil(since, block)).len();
        assert!(drawn < counted.len() / 4 + 2, "{secs} s: {drawn} drawn");
        let rank = (counted.len() as f64 * 0.5).ceil() as usize - 1;
        let lo = counted[rank.saturating_sub(drawn)] * 0.99;
        let hi = counted[(rank + drawn).min(counted.len() - 1)] * 1.01;
        let got = s.p50.unwrap();
        assert!(
            (lo..=hi).contains(&got),
            "{secs} s p50 {got} outside [{lo}, {hi}]"
        );
    }
    assert!(
        m.window_coverage("lat", Duration::from_secs(2 * 86_400))
            .is_none()
    );
    assert!(
        m.window_coverage("nothing", Duration::from_secs(60))
            .is_none()
    );
}

#[test]
fn a_call_site_reusing_its_buffers_is_told_apart_by_content() {
    let m = Arc::new(MemoryMetrics::new());
    let w = handle(&m);
    // One buffer for the name, one for the tags: the same addresses and
    // lengths at every call, with other content.
    let mut name = String::with_capacity(16);
    let mut value = String::with_capacity(16);
    for (n, v) in [
        ("req.a", "1"),
        ("req.a", "1"),
        ("req.b", "1"),
        ("req.a", "2"),
    ] {
        name.clear();
        name.push_str(n);
        value.clear();
        value.push_str(v);
        w.increment(&name, &[("k", value.as_str())]);
    }
    assert_eq!(m.counter_value("req.a", &[("k", "1")]), Some(2.0));
    assert_eq!(m.counter_value("req.b", &[("k", "1")]), Some(1.0));
    assert_eq!(m.counter_value("req.a", &[("k", "2")]), Some(1.0));
    // A broken rule at an address that last held a valid key is refused.
    name.clear();
    name.push_str("req\na");
    w.increment(&name, &[("k", value.as_str())]);
    assert_eq!(m.dropped(DropReason::InvalidName), 1);
    // A value refused, and a type mismatch, from a call site whose series
    // is cached: the same reasons as through a key.
    let tags = [("k", "1")];
    for v in [1.0, -1.0, f64::NAN] {
        w.record_counter("req.c", v, &tags);
    }
    for _ in 0..2 {
        w.record_gauge("req.c", 1.0, &tags);
    }
    assert_eq!(m.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(m.dropped(DropReason::InvalidValue), 1);
    assert_eq!(m.dropped(DropReason::TypeMismatch), 2);
    assert_eq!(m.counter_value("req.c", &tags), Some(1.0));
    assert_eq!(m.series_count(), 4);
}

#[test]
fn guards_from_one_call_site_count_every_duration_and_outcome_where_a_key_would() {
    let m = Arc::new(MemoryMetrics::new());
    let w = handle(&m);
    let long = "e".repeat(validate::MAX_TAG_VALUE_LEN + 1);
    // One call site, one name buffer: the first guard takes the key path,
    // the others find the timer series and its outcomes in this thread's
    // cache; a content change at the same address is told apart.
    let mut name = String::with_capacity(16);
    for (i, op) in ["op.a", "op.a", "op.a", "op.b", "op.a", "op.a"]
        .into_iter()
        .enumerate()
    {
        name.clear();
        name.push_str(op);
        let timing = w.start(&name, &[("k", "v")]);
        match i {
            1 => drop(timing),
            2 => {
                timing.failure("timeout");
            }
            5 => {
                timing.failure(&long);
            }
            _ => {
                timing.success();
            }
        }
    }
    let tags = [("k", "v")];
    assert_eq!(m.distribution("op.a", &tags).unwrap().count, 5);
    assert_eq!(m.distribution("op.b", &tags).unwrap().count, 1);
    let (ok, failed) = m.outcome_counts("op.a", &tags).unwrap();
    assert_eq!((ok, failed["timeout"], failed["abandoned"]), (2, 1, 1));
    assert_eq!(failed.len(), 2);
    assert_eq!(m.outcome_counts("op.b", &tags).unwrap().0, 1);
    // The error type too long for a tag value is refused, as through a key.
    assert_eq!(m.dropped(DropReason::InvalidTag), 1);

    // A name already a counter: its duration is refused as a type mismatch
    // and its outcome still counted, at every call.
    w.increment("op.c", &tags);
    for _ in 0..3 {
        w.start("op.c", &tags).success();
    }
    assert_eq!(m.dropped(DropReason::TypeMismatch), 3);
    assert_eq!(m.outcome_counts("op.c", &tags).unwrap().0, 3);
    // A broken name is refused twice per guard: duration and outcome.
    for _ in 0..2 {
        w.start("op\nd", &tags).success();
    }
    assert_eq!(m.dropped(DropReason::InvalidName), 4);
}

/// A bursty series (every 5 minutes, 30 s of large values at ten times the
/// rate): the 1 h and 24 h percentiles, read at instants off every block
/// edge, cover the whole window and stay within the stated error of the
/// exact ones: 1 % of a value whose rank is off by at most the samples
/// drawn from the block straddling the window's start.
#[test]
fn window_percentiles_cover_the_whole_window_of_a_bursty_series() {
    let (clock, m) = manual();
    let metrics = handle(&m);
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut r = crate::sketch::tests::Rng::new(3);
    let mut t = T0;
    // Read at three instants off every block edge, 30 hours in and later.
    for end in [
        30 * 3_600_000,
        30 * 3_600_000 + 7 * 60_000 + 1_234,
        31 * 3_600_000 + 11 * 60_000,
    ] {
        let end = T0 + end;
        while t < end {
            let burst = (t - T0).rem_euclid(300_000) < 30_000;
            let v = if burst {
                1000.0 * (1.0 + r.uniform())
            } else {
                1.0 + 9.0 * r.uniform()
            };
            clock.set(t);
            metrics.record_histogram("bursty", v, &[]);
            samples.push((t, v));
            t += if burst { 100 } else { 1000 };
        }
        let now = end;
        clock.set(now);
        for (secs, block) in [(3600i64, 900_000i64), (86_400, 21_600_000)] {
            let w = Duration::from_secs(secs as u64);
            let s = m.metric_summary("bursty", Some(w)).unwrap();
            assert_eq!(s.quantiles_cover, s.covers, "{secs} s at {end}");
            let from = now - s.covers.unwrap().as_millis() as i64;
            let mut win: Vec<f64> = samples
                .iter()
                .filter(|(t, _)| *t >= from)
                .map(|(_, v)| *v)
                .collect();
            win.sort_by(f64::total_cmp);
            assert_eq!(s.count, win.len() as u64);
            let whole_from = (from + block - 1).div_euclid(block) * block;
            let drawn = samples
                .iter()
                .filter(|(t, _)| *t >= from && *t < whole_from)
                .count();
            for (q, got) in [(0.5, s.p50), (0.9, s.p90), (0.95, s.p95), (0.99, s.p99)] {
                let got = got.unwrap();
                let rank = (q * win.len() as f64).ceil() as usize - 1;
                let lo = win[rank.saturating_sub(drawn)] * (1.0 - crate::WINDOW_ACCURACY);
                let hi = win[(rank + drawn).min(win.len() - 1)] * (1.0 + crate::WINDOW_ACCURACY);
                assert!(
                    (lo..=hi).contains(&got),
                    "{secs} s at {end} p{q}: {got} outside [{lo}, {hi}] ({drawn} drawn)"
                );
            }
        }
    }
}

#[test]
fn the_snapshot_lends_every_series_outcome_and_description() {
    use metrics_query::snapshot::Snapshots;
    let (_, m) = manual();
    let w = handle(&m);
    w.record_counter("jobs", 2.0, &[("queue", "mail")]);
    w.record_histogram("size", 10.0, &[]);
    w.record_histogram("size", 30.0, &[]);
    w.describe(
        "size",
        MetricType::Histogram,
        Some(MetricUnit::Bytes),
        "Payloads",
    );
    m.record_failure("op", "boom", &[]);
    let snap = m.snapshot();
    // Two series, then the outcome counts as counters.
    assert_eq!(snap.len(), 4);
    let views: Vec<String> = (0..snap.len())
        .map(|i| {
            let s = snap.series(i).unwrap();
            format!("{} {:?} {:?}", s.name, s.tags, s.kind)
        })
        .collect();
    assert_eq!(
        views,
        [
            r#"jobs [("queue", "mail")] Counter"#,
            "size [] Histogram",
            "op.success [] Counter",
            r#"op.failure [("error_type", "boom")] Counter"#,
        ]
    );
    assert!(snap.series(4).is_none());
    let mut read = Vec::new();
    for i in 0..snap.len() {
        snap.read(i, &mut |r| {
            let d = r
                .distribution
                .map(|d| (d.quantile(1.0), d.cumulative_counts(1.0, &[15.0, 100.0])));
            read.push((r.value, r.count, r.min, r.max, d));
        });
    }
    assert_eq!(read[0], (2.0, 1, Some(2.0), Some(2.0), None));
    assert_eq!(
        read[1],
        (
            40.0,
            2,
            Some(10.0),
            Some(30.0),
            Some((Some(30.0), vec![1, 2]))
        )
    );
    assert_eq!(read[2], (0.0, 0, None, None, None));
    assert_eq!(read[3], (1.0, 1, None, None, None));
    let d = snap.description("size").unwrap();
    assert_eq!(
        (d.help, d.unit),
        (Some("Payloads"), Some(MetricUnit::Bytes))
    );
    assert!(snap.description("jobs").is_none());
}

#[test]
fn series_sorted_through_the_names_index_are_in_registry_order() {
    let m = Arc::new(MemoryMetrics::new());
    let w = Metrics::new(m.clone());
    for (name, tags) in [
        ("b", vec![("id", "2")]),
        ("a.x", vec![("z", "1"), ("a", "9")]),
        ("b", vec![("id", "10")]),
        ("a", vec![]),
        ("b", vec![("id", "1"), ("k", "v")]),
        ("a.x", vec![("a", "1")]),
    ] {
        w.record_counter(name, 1.0, &tags);
    }
    let names = |v: Vec<std::sync::Arc<crate::series::Series>>| -> Vec<String> {
        v.iter()
            .map(|s| format!("{} {:?}", s.name, s.tags))
            .collect()
    };
    let by_name = names(m.registry.all_by_name());
    assert_eq!(by_name.len(), 6);
    assert_eq!(by_name, names(m.registry.all()));
}

#[test]
fn far_merged_samples_are_reported_in_health() {
    let (clock, m) = manual();
    let w = handle(&m);
    let far_merged = |m: &MemoryMetrics| m.health()[0].details["far_merged_samples"];
    // A bulk at 1, then 40 distinct values far beyond its 17.8 decades
    // (1e20 to 1e59): more than the 32 far buckets a sign keeps.
    let values: Vec<f64> = std::iter::repeat_n(1.0, 1000)
        .chain((20..60).map(|e| 10f64.powi(e)))
        .collect();
    for v in &values[..1000] {
        w.record_histogram("wide", *v, &[]);
    }
    assert_eq!(far_merged(&m), 0.0, "nothing far yet");
    for v in &values[1000..] {
        w.record_histogram("wide", *v, &[]);
    }
    // What the all-time sketch and the bin's (window accuracy) merged.
    let (mut all_time, mut window) = (QuantileSketch::new(), QuantileSketch::windowed());
    for v in &values {
        all_time.add(*v);
        window.add(*v);
    }
    let want = all_time.far_merged() + window.far_merged();
    assert!(want > 0);
    assert_eq!(far_merged(&m), want as f64, "while the bin is open");
    // Sealed into the rings, the bin's count stays.
    clock.advance(Duration::from_secs(20));
    w.record_histogram("wide", 1.0, &[]);
    assert_eq!(far_merged(&m), want as f64, "after the bin is sealed");
    // A counter's far-away values are no sketch's.
    w.record_counter("c", 1e300, &[]);
    assert_eq!(far_merged(&m), want as f64);
}
