//! The conformance checks. Each takes a fresh [`Harness`]; the
//! [`conformance_suite!`](crate::conformance_suite) macro turns every one
//! into a `#[test]` for a backend.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use metrics_protocol::validate::{MAX_NAME_LEN, MAX_TAGS};
use metrics_protocol::{CollectorExt, DropReason, InstrumentExt, MetricCollector};

use crate::Harness;

/// Counters add up: by value, by `increment`, across calls.
pub fn counters_accumulate(h: &dyn Harness) {
    let c = h.collector();
    c.record_counter("conf.requests", 1.0, &[("method", "GET")]);
    c.record_counter("conf.requests", 2.5, &[("method", "GET")]);
    c.increment("conf.requests", &[("method", "GET")]);
    c.increment("conf.requests", &[("method", "POST")]);
    h.settle();
    assert_eq!(h.counter("conf.requests", &[("method", "GET")]), Some(4.5));
    assert_eq!(h.counter("conf.requests", &[("method", "POST")]), Some(1.0));
    assert_eq!(h.counter("conf.requests", &[("method", "PUT")]), None);
}

/// `a=1,b=2` and `b=2,a=1` are one series; other values are another.
pub fn tag_order_does_not_matter(h: &dyn Harness) {
    let c = h.collector();
    c.record_counter("conf.tagged", 1.0, &[("a", "1"), ("b", "2")]);
    c.record_counter("conf.tagged", 1.0, &[("b", "2"), ("a", "1")]);
    c.record_counter("conf.tagged", 1.0, &[("a", "1"), ("b", "3")]);
    h.settle();
    assert_eq!(
        h.counter("conf.tagged", &[("b", "2"), ("a", "1")]),
        Some(2.0)
    );
    assert_eq!(
        h.counter("conf.tagged", &[("a", "1"), ("b", "3")]),
        Some(1.0)
    );
    assert_eq!(h.series_count(), 2);
}

/// Gauges keep the last value set, and adjust by deltas.
pub fn gauges_keep_last_value_and_adjust(h: &dyn Harness) {
    let c = h.collector();
    c.record_gauge("conf.temperature", 20.0, &[]);
    c.record_gauge("conf.temperature", -3.5, &[]);
    c.record_gauge("conf.connections", 10.0, &[("pool", "db")]);
    c.adjust_gauge("conf.connections", 5.0, &[("pool", "db")]);
    c.adjust_gauge("conf.connections", -1.0, &[("pool", "db")]);
    h.settle();
    assert_eq!(h.gauge("conf.temperature", &[]), Some(-3.5));
    assert_eq!(h.gauge("conf.connections", &[("pool", "db")]), Some(14.0));
}

/// Histograms and timers keep every sample.
pub fn distributions_count_every_sample(h: &dyn Harness) {
    let c = h.collector();
    for i in 0u32..10 {
        c.record_histogram("conf.size", f64::from(i) * 100.0, &[("kind", "blob")]);
        c.record_timer("conf.latency", Duration::from_millis(u64::from(i) + 1), &[]);
    }
    c.record_histogram("conf.size", -5.0, &[("kind", "blob")]);
    h.settle();
    assert_eq!(h.samples("conf.size", &[("kind", "blob")]), Some(11));
    assert_eq!(h.samples("conf.latency", &[]), Some(10));
}

/// Every bad-input rule of `metrics_protocol::validate` that applies to recording: the sample is
/// dropped whole, nothing reaches the backend, and the drop is counted by
/// reason.
pub fn bad_input_is_dropped_and_counted(h: &dyn Harness) {
    let c = h.collector();
    let long_name = "n".repeat(MAX_NAME_LEN + 1);
    let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}")).collect();
    let many_tags: Vec<(&str, &str)> = many.iter().map(|k| (k.as_str(), "v")).collect();

    c.record_gauge("conf.bad", f64::NAN, &[]);
    c.record_histogram("conf.bad", f64::INFINITY, &[]);
    c.record_counter("conf.bad", f64::NEG_INFINITY, &[]);
    c.record_counter("conf.bad", -1.0, &[]);
    c.record_counter("", 1.0, &[]);
    c.record_counter(&long_name, 1.0, &[]);
    c.record_counter("conf.bad\nfake.metric:1|c", 1.0, &[]);
    c.record_counter("conf.bad", 1.0, &many_tags);
    c.record_counter("conf.bad", 1.0, &[("a", "1"), ("a", "2")]);
    c.record_counter("conf.bad", 1.0, &[("", "v")]);
    c.record_counter("conf.bad", 1.0, &[("k\n", "v")]);
    h.settle();

    assert_eq!(
        h.series_count(),
        0,
        "a dropped sample must not create a series"
    );
    assert_eq!(h.counter("conf.bad", &[]), None);
    assert_eq!(h.dropped(DropReason::InvalidValue), 3);
    assert_eq!(h.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(h.dropped(DropReason::InvalidName), 3);
    assert_eq!(h.dropped(DropReason::TooManyTags), 1);
    assert_eq!(h.dropped(DropReason::DuplicateTag), 1);
    assert_eq!(h.dropped(DropReason::InvalidTag), 2);

    // The backend still works afterwards.
    c.increment("conf.after", &[]);
    h.settle();
    assert_eq!(h.counter("conf.after", &[]), Some(1.0));
}

/// Tag values with characters that wire formats reserve are accepted and
/// recorded exactly once, without creating any other series.
pub fn reserved_characters_are_never_injected(h: &dyn Harness) {
    let c = h.collector();
    let nasty = "a\"b\\c\nd:e|f@g#h,i=j;k ✓";
    c.record_counter("conf.nasty", 1.0, &[("v", nasty)]);
    c.record_counter("conf.nasty", 1.0, &[("v", nasty)]);
    h.settle();
    assert_eq!(h.series_count(), 1);
}

/// Bound handles record into the same series as the by-name calls.
pub fn bound_handles_share_the_named_series(h: &dyn Harness) {
    let c = h.collector();
    let counter = c.counter("conf.handled", &[("route", "/a"), ("code", "200")]);
    counter.increment(2.0);
    counter.inc();
    c.record_counter("conf.handled", 1.0, &[("code", "200"), ("route", "/a")]);
    let gauge = c.gauge("conf.queue", &[]);
    gauge.set(5.0);
    gauge.increment();
    let hist = c.histogram("conf.bytes", &[]);
    hist.record(10.0);
    let timer = c.timer("conf.step", &[]);
    timer.record(Duration::from_millis(3));
    assert_eq!(timer.time(|| 7), 7);
    counter.increment(-1.0); // dropped and counted, like the by-name call
    h.settle();
    assert_eq!(
        h.counter("conf.handled", &[("route", "/a"), ("code", "200")]),
        Some(4.0)
    );
    assert_eq!(h.gauge("conf.queue", &[]), Some(6.0));
    assert_eq!(h.samples("conf.bytes", &[]), Some(1));
    assert_eq!(h.samples("conf.step", &[]), Some(2));
    assert_eq!(h.dropped(DropReason::NegativeCounter), 1);
}

/// Concurrent increments from several threads are all counted.
pub fn concurrent_counters_are_exact(h: &dyn Harness) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    let c: Arc<dyn MetricCollector> = h.collector();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            thread::spawn(move || {
                let bound = c.counter("conf.parallel.bound", &[]);
                for _ in 0..PER_THREAD {
                    c.increment("conf.parallel", &[("shared", "yes")]);
                    bound.inc();
                }
                t
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("recording thread panicked");
    }
    h.settle();
    let expected = (THREADS * PER_THREAD) as f64;
    assert_eq!(
        h.counter("conf.parallel", &[("shared", "yes")]),
        Some(expected)
    );
    assert_eq!(h.counter("conf.parallel.bound", &[]), Some(expected));
}

/// Turns every check of [`crate::suite`] into a `#[test]` for the harness
/// built by `$make` (an expression evaluated once per test).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            counters_accumulate,
            tag_order_does_not_matter,
            gauges_keep_last_value_and_adjust,
            distributions_count_every_sample,
            bad_input_is_dropped_and_counted,
            reserved_characters_are_never_injected,
            bound_handles_share_the_named_series,
            concurrent_counters_are_exact,
            guards_record_durations_and_one_outcome_each,
            outcomes_keep_their_tags,
            queries_answer_from_what_was_recorded,
        );
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let harness = $make;
                $crate::suite::$check(&harness);
            }
        )*
    };
}

/// Every way a timing guard ends records the duration and exactly one
/// outcome with the guard's tags; an abandoned guard is never a success.
pub fn guards_record_durations_and_one_outcome_each(h: &dyn Harness) {
    let m = h.metrics();
    let tags = [("queue", "a"), ("region", "eu")];
    m.start("conf.job", &tags).success();
    m.start("conf.job", &tags).failure("timeout");
    drop(m.start("conf.job", &tags));
    let r: Result<(), &str> = m.time_result("conf.job", &tags, || Err("timeout"));
    assert!(r.is_err());
    h.settle();
    let reversed = [("region", "eu"), ("queue", "a")];
    assert_eq!(h.samples("conf.job", &reversed), Some(4));
    assert_eq!(h.successes("conf.job", &reversed), 1);
    assert_eq!(h.failures("conf.job", "timeout", &reversed), 2);
    assert_eq!(
        h.failures("conf.job", metrics_protocol::outcome::ABANDONED, &reversed),
        1
    );
}

/// Outcomes recorded with different tags are told apart.
pub fn outcomes_keep_their_tags(h: &dyn Harness) {
    let m = h.metrics();
    m.record_success("conf.push", &[("remote", "origin")]);
    m.record_success("conf.push", &[("remote", "origin")]);
    m.record_success("conf.push", &[("remote", "backup")]);
    m.record_failure("conf.push", "auth", &[("remote", "backup")]);
    m.record_success("conf.push", &[]);
    h.settle();
    assert_eq!(h.successes("conf.push", &[("remote", "origin")]), 2);
    assert_eq!(h.successes("conf.push", &[("remote", "backup")]), 1);
    assert_eq!(h.successes("conf.push", &[]), 1);
    assert_eq!(h.failures("conf.push", "auth", &[("remote", "backup")]), 1);
    assert_eq!(h.failures("conf.push", "auth", &[("remote", "origin")]), 0);
}

/// Backends that answer queries answer from exactly what was recorded:
/// the success rate over all tag sets, the failure breakdown, and timing
/// statistics as durations.
pub fn queries_answer_from_what_was_recorded(h: &dyn Harness) {
    let Some(q) = h.queries() else {
        return;
    };
    let m = h.metrics();
    m.record_success("conf.sync", &[("peer", "a")]);
    m.record_success("conf.sync", &[("peer", "b")]);
    m.record_success("conf.sync", &[]);
    m.record_failure("conf.sync", "timeout", &[("peer", "a")]);
    for ms in [10, 20, 30, 40] {
        m.record_timer("conf.fetch", Duration::from_millis(ms), &[("peer", "a")]);
    }
    h.settle();
    let rate = q.tracker.get_success_rate("conf.sync", None).unwrap();
    assert!((rate - 0.75).abs() < 1e-9, "{rate}");
    let breakdown = q.tracker.get_failure_breakdown("conf.sync", None).unwrap();
    assert_eq!(
        breakdown.into_iter().collect::<Vec<_>>(),
        [("timeout".to_owned(), 1)]
    );
    assert!(matches!(
        q.tracker.get_success_rate("conf.never", None),
        Err(metrics_protocol::MetricsError::NoData(_))
    ));
    let stats = q.timer.get_timing_stats("conf.fetch", None).unwrap();
    assert_eq!(stats.count, 4);
    assert_eq!(stats.sum, Duration::from_millis(100));
    assert_eq!(stats.min, Duration::from_millis(10));
    assert_eq!(stats.max, Duration::from_millis(40));
    assert_eq!(stats.avg, Duration::from_millis(25));
    let tolerance =
        |d: Duration, want_ms: f64| (d.as_secs_f64() * 1e3 - want_ms).abs() <= want_ms * 0.01;
    assert!(
        tolerance(stats.p50, 20.0) || tolerance(stats.p50, 30.0),
        "{stats:?}"
    );
    assert!(tolerance(stats.p99, 40.0), "{stats:?}");
}
