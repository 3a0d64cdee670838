//! Queries (feature `queries`): what a backend that answers queries
//! (`metrics_protocol::app::MetricsAggregator`) answers from what was
//! recorded, over all time and over a window.
//!
//! Every check here needs [`Harness::queries`] and returns early without
//! it; the window checks also need [`Harness::advance`] (they let 2 minutes
//! pass and ask about the last minute) and return early without it.

use std::time::Duration;

use metrics_protocol::MetricsError;

use crate::Harness;

const MINUTE: Duration = Duration::from_secs(60);

/// Whether two durations are within a microsecond of each other (backends
/// may keep durations as floating-point milliseconds).
fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= Duration::from_micros(1)
}

/// Success rates over every tag set of an operation, failure breakdowns by
/// error type, timing statistics as durations, and `NoData` for what was
/// never recorded.
pub fn answer_from_what_was_recorded(h: &dyn Harness) {
    let Some(q) = h.queries() else {
        return;
    };
    let m = h.metrics();
    m.record_success("conf.sync", &[("peer", "a")]);
    m.record_success("conf.sync", &[("peer", "b")]);
    m.record_success("conf.sync", &[]);
    m.record_failure("conf.sync", "timeout", &[("peer", "a")]);
    m.record_failure("conf.sync", "timeout", &[("peer", "b")]);
    m.record_failure("conf.sync", "refused", &[]);
    for ms in [10, 20, 30, 40] {
        m.record_timer("conf.fetch", Duration::from_millis(ms), &[("peer", "a")]);
    }
    h.settle();
    let rate = q.success_rate("conf.sync", None).unwrap();
    assert!((rate - 0.5).abs() < 1e-9, "{rate}");
    let breakdown = q.failure_breakdown("conf.sync", None).unwrap();
    assert_eq!(
        breakdown.into_iter().collect::<Vec<_>>(),
        [("refused".to_owned(), 1), ("timeout".to_owned(), 2)]
    );
    assert!(matches!(
        q.success_rate("conf.never", None),
        Err(MetricsError::NoData(_))
    ));
    assert!(matches!(
        q.timing_stats("conf.never", None),
        Err(MetricsError::NoData(_))
    ));
    let stats = q.timing_stats("conf.fetch", None).unwrap();
    assert_eq!(stats.count, 4);
    let ms = Duration::from_millis;
    assert!(close(stats.sum, ms(100)), "{stats:?}");
    assert!(close(stats.min, ms(10)), "{stats:?}");
    assert!(close(stats.max, ms(40)), "{stats:?}");
    assert!(close(stats.avg, ms(25)), "{stats:?}");
    let within_1_percent =
        |d: Duration, want_ms: f64| (d.as_secs_f64() * 1e3 - want_ms).abs() <= want_ms * 0.01;
    assert!(
        within_1_percent(stats.p50, 20.0) || within_1_percent(stats.p50, 30.0),
        "{stats:?}"
    );
    assert!(within_1_percent(stats.p99, 40.0), "{stats:?}");
}

/// A success rate over the last minute forgets outcomes older than the
/// minute (and so does the failure breakdown); over all time it counts
/// every one.
pub fn success_rate_forgets_outcomes_older_than_the_window(h: &dyn Harness) {
    let Some(q) = h.queries() else {
        return;
    };
    if !h.advance(Duration::ZERO) {
        return;
    }
    let m = h.metrics();
    m.record_success("conf.deploy", &[]);
    m.record_failure("conf.deploy", "rollback", &[("env", "prod")]);
    m.record_failure("conf.deploy", "rollback", &[]);
    assert!(h.advance(2 * MINUTE));
    for _ in 0..3 {
        m.record_success("conf.deploy", &[("env", "prod")]);
    }
    m.record_failure("conf.deploy", "timeout", &[]);
    h.settle();

    let recent = q.success_rate("conf.deploy", Some(MINUTE)).unwrap();
    assert!((recent - 0.75).abs() < 1e-9, "last minute: {recent}");
    let all = q.success_rate("conf.deploy", None).unwrap();
    assert!((all - 4.0 / 7.0).abs() < 1e-9, "all time: {all}");
    let breakdown = q.failure_breakdown("conf.deploy", Some(MINUTE)).unwrap();
    assert_eq!(
        breakdown.into_iter().collect::<Vec<_>>(),
        [("timeout".to_owned(), 1)]
    );

    assert!(h.advance(2 * MINUTE));
    h.settle();
    assert!(
        matches!(
            q.success_rate("conf.deploy", Some(MINUTE)),
            Err(MetricsError::NoData(_))
        ),
        "nothing was recorded in the last minute"
    );
    assert!(
        q.failure_breakdown("conf.deploy", Some(MINUTE))
            .unwrap()
            .is_empty()
    );
}

/// A counter's summary over the last minute holds the increments of that
/// minute only (their number and their total, from which its rate
/// follows); over all time, every increment.
pub fn counter_summary_in_a_window(h: &dyn Harness) {
    let Some(q) = h.queries() else {
        return;
    };
    if !h.advance(Duration::ZERO) {
        return;
    }
    let m = h.metrics();
    for _ in 0..3 {
        m.increment("conf.orders", &[("shop", "a")]);
    }
    m.record_counter("conf.orders", 4.0, &[("shop", "b")]);
    assert!(h.advance(2 * MINUTE));
    m.record_counter("conf.orders", 2.5, &[("shop", "a")]);
    m.record_counter("conf.orders", 2.5, &[("shop", "b")]);
    h.settle();

    let recent = q.metric_summary("conf.orders", Some(MINUTE)).unwrap();
    assert_eq!(recent.count, 2, "{recent:?}");
    assert!((recent.sum - 5.0).abs() < 1e-9, "{recent:?}");
    assert_eq!(recent.series, 2, "{recent:?}");
    let rate_per_s = recent.sum / MINUTE.as_secs_f64();
    assert!((rate_per_s - 5.0 / 60.0).abs() < 1e-9);
    let all = q.metric_summary("conf.orders", None).unwrap();
    assert_eq!(all.count, 6, "{all:?}");
    assert!((all.sum - 12.0).abs() < 1e-9, "{all:?}");
}

/// Timing statistics over the last minute hold the durations of that
/// minute only; over all time, every one.
pub fn timing_stats_in_a_window(h: &dyn Harness) {
    let Some(q) = h.queries() else {
        return;
    };
    if !h.advance(Duration::ZERO) {
        return;
    }
    let m = h.metrics();
    let ms = Duration::from_millis;
    m.record_timer("conf.query", ms(10), &[]);
    m.record_timer("conf.query", ms(500), &[("db", "replica")]);
    assert!(h.advance(2 * MINUTE));
    for _ in 0..3 {
        m.record_timer("conf.query", ms(30), &[]);
    }
    h.settle();

    let recent = q.timing_stats("conf.query", Some(MINUTE)).unwrap();
    assert_eq!(recent.count, 3, "{recent:?}");
    assert!(close(recent.sum, ms(90)), "{recent:?}");
    assert!(close(recent.min, ms(30)), "{recent:?}");
    assert!(close(recent.max, ms(30)), "{recent:?}");
    let all = q.timing_stats("conf.query", None).unwrap();
    assert_eq!(all.count, 5, "{all:?}");
    assert!(close(all.min, ms(10)), "{all:?}");
    assert!(close(all.max, ms(500)), "{all:?}");
}
