//! Counters: totals that only grow, one series per name and tag set
//! whatever the tags' order, exact under concurrent recording, and removed
//! when idle if the backend expires idle series.

use std::thread;
use std::time::Duration;

use crate::Harness;

/// Counters add up: by value, by `increment`, across calls; a tag set
/// never recorded has no series.
pub fn accumulates(h: &dyn Harness) {
    let m = h.metrics();
    m.record_counter("conf.requests", 1.0, &[("method", "GET")]);
    m.record_counter("conf.requests", 2.5, &[("method", "GET")]);
    m.increment("conf.requests", &[("method", "GET")]);
    m.increment("conf.requests", &[("method", "POST")]);
    m.record_counter("conf.requests", 0.0, &[("method", "POST")]);
    h.settle();
    assert_eq!(h.counter("conf.requests", &[("method", "GET")]), Some(4.5));
    assert_eq!(h.counter("conf.requests", &[("method", "POST")]), Some(1.0));
    assert_eq!(h.counter("conf.requests", &[("method", "PUT")]), None);
    assert_eq!(h.counter("conf.requests", &[]), None);
}

/// `a=1,b=2` and `b=2,a=1` are one series; other values are another.
pub fn tag_order_is_one_series(h: &dyn Harness) {
    let m = h.metrics();
    m.increment("conf.tagged", &[("a", "1"), ("b", "2")]);
    m.increment("conf.tagged", &[("b", "2"), ("a", "1")]);
    m.increment("conf.tagged", &[("a", "1"), ("b", "3")]);
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

/// Increments from several threads at once, by name and through a handle
/// each thread binds, are all counted.
pub fn concurrent_increments_are_exact(h: &dyn Harness) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    let m = h.metrics();
    thread::scope(|s| {
        for _ in 0..THREADS {
            let m = m.clone();
            s.spawn(move || {
                let bound = m.counter("conf.parallel.bound", &[]);
                for _ in 0..PER_THREAD {
                    m.increment("conf.parallel", &[("shared", "yes")]);
                    bound.increment();
                }
            });
        }
    });
    h.settle();
    let expected = (THREADS * PER_THREAD) as f64;
    assert_eq!(
        h.counter("conf.parallel", &[("shared", "yes")]),
        Some(expected)
    );
    assert_eq!(h.counter("conf.parallel.bound", &[]), Some(expected));
}

/// A backend that expires idle series removes a series nothing was
/// recorded into for longer than its expiry, counters and gauges alike,
/// and keeps one recorded into since. Needs [`Harness::idle_expiry`] and
/// [`Harness::advance`]; returns early without them.
pub fn idle_series_expire(h: &dyn Harness) {
    let Some(expiry) = h.idle_expiry() else {
        return;
    };
    if !h.advance(Duration::ZERO) {
        return;
    }
    let m = h.metrics();
    m.increment("conf.idle", &[("k", "v")]);
    m.record_gauge("conf.idle.gauge", 3.0, &[]);
    m.increment("conf.busy", &[]);
    h.settle();
    assert_eq!(h.counter("conf.idle", &[("k", "v")]), Some(1.0));

    assert!(h.advance(expiry));
    m.increment("conf.busy", &[]);
    assert!(h.advance(expiry / 2));
    h.settle();
    assert_eq!(
        h.counter("conf.idle", &[("k", "v")]),
        None,
        "a counter idle for 1.5 times the expiry is removed"
    );
    assert_eq!(h.gauge("conf.idle.gauge", &[]), None);
    assert_eq!(
        h.counter("conf.busy", &[]),
        Some(2.0),
        "a counter recorded into half an expiry ago is kept, with its total"
    );
    assert_eq!(h.series_count(), 1);

    // A removed series starts again from nothing.
    m.increment("conf.idle", &[("k", "v")]);
    h.settle();
    assert_eq!(h.counter("conf.idle", &[("k", "v")]), Some(1.0));
}
