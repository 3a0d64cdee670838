//! Bound handles (`Counter`, `Gauge`, `Histogram`, `Timer` from
//! `Metrics::counter` and the like): the same series as the by-name calls,
//! the same rules, and a series that lives as long as a handle does.

use std::time::Duration;

use metrics_protocol::backend::DropReason;

use crate::Harness;

/// Handles record into the same series as the by-name calls with the same
/// name and tags (in any order), and a value that breaks a rule is dropped
/// and counted as the by-name call's would be.
pub fn share_the_named_series(h: &dyn Harness) {
    let m = h.metrics();
    let counter = m.counter("conf.handled", &[("route", "/a"), ("code", "200")]);
    counter.add(2.0);
    counter.increment();
    m.record_counter("conf.handled", 1.0, &[("code", "200"), ("route", "/a")]);
    let gauge = m.gauge("conf.queue", &[]);
    gauge.set(5.0);
    gauge.increment();
    gauge.adjust(2.5);
    gauge.decrement();
    m.adjust_gauge("conf.queue", 1.0, &[]);
    let histogram = m.histogram("conf.bytes", &[]);
    histogram.record(10.0);
    m.record_histogram("conf.bytes", 20.0, &[]);
    let timer = m.timer("conf.step", &[]);
    timer.record(Duration::from_millis(3));
    timer.record(Duration::ZERO);
    m.record_timer("conf.step", Duration::from_millis(1), &[]);
    counter.add(-1.0);
    gauge.set(f64::NAN);
    histogram.record(f64::INFINITY);
    h.settle();
    assert_eq!(
        h.counter("conf.handled", &[("route", "/a"), ("code", "200")]),
        Some(4.0)
    );
    assert_eq!(h.gauge("conf.queue", &[]), Some(8.5));
    assert_eq!(h.samples("conf.bytes", &[]), Some(2));
    assert_eq!(h.samples("conf.step", &[]), Some(3));
    assert_eq!(h.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(h.dropped(DropReason::InvalidValue), 2);
    assert_eq!(h.series_count(), 4);
}

/// Clones of a handle, and handles bound twice to one series, record into
/// that one series.
pub fn clones_record_into_one_series(h: &dyn Harness) {
    let m = h.metrics();
    let a = m.counter("conf.clones", &[("k", "v")]);
    let b = a.clone();
    let c = m.counter("conf.clones", &[("k", "v")]);
    a.increment();
    b.add(2.0);
    c.increment();
    drop(a);
    b.increment();
    let g = m.gauge("conf.clones.gauge", &[]);
    g.clone().set(3.0);
    g.increment();
    h.settle();
    assert_eq!(h.counter("conf.clones", &[("k", "v")]), Some(5.0));
    assert_eq!(h.gauge("conf.clones.gauge", &[]), Some(4.0));
    assert_eq!(h.series_count(), 2);
}

/// A handle bound to a name or tags that break a rule refuses every
/// recording through it, and each is counted under the key's reason.
pub fn a_handle_of_a_bad_key_refuses_every_recording(h: &dyn Harness) {
    let m = h.metrics();
    let nameless = m.counter("", &[]);
    nameless.increment();
    nameless.add(2.0);
    m.gauge("conf.dup", &[("a", "1"), ("a", "2")]).set(1.0);
    m.histogram("conf.badtag", &[("", "v")]).record(1.0);
    m.timer("conf.bad\nname", &[])
        .record(Duration::from_millis(1));
    h.settle();
    assert_eq!(h.series_count(), 0, "a refused handle creates no series");
    assert_eq!(h.dropped(DropReason::InvalidName), 3);
    assert_eq!(h.dropped(DropReason::DuplicateTag), 1);
    assert_eq!(h.dropped(DropReason::InvalidTag), 1);
}

/// While a handle bound to a series lives, idle expiry never removes the
/// series (its next recording must not be lost); once every handle is
/// dropped the series can expire like any other. Needs
/// [`Harness::idle_expiry`] and [`Harness::advance`]; returns early
/// without them.
pub fn bound_series_never_expire(h: &dyn Harness) {
    let Some(expiry) = h.idle_expiry() else {
        return;
    };
    if !h.advance(Duration::ZERO) {
        return;
    }
    let m = h.metrics();
    let held = m.counter("conf.held", &[("k", "v")]);
    held.increment();
    let gauge = m.gauge("conf.held.gauge", &[]);
    gauge.set(2.0);
    m.increment("conf.loose", &[]);
    h.settle();

    assert!(h.advance(expiry * 2));
    h.settle();
    assert_eq!(
        h.counter("conf.loose", &[]),
        None,
        "an unbound series idle for twice the expiry is removed"
    );
    assert_eq!(h.counter("conf.held", &[("k", "v")]), Some(1.0));
    assert_eq!(h.gauge("conf.held.gauge", &[]), Some(2.0));
    held.increment();
    gauge.increment();
    h.settle();
    assert_eq!(h.counter("conf.held", &[("k", "v")]), Some(2.0));
    assert_eq!(h.gauge("conf.held.gauge", &[]), Some(3.0));

    drop((held, gauge));
    assert!(h.advance(expiry * 2));
    h.settle();
    assert_eq!(
        h.counter("conf.held", &[("k", "v")]),
        None,
        "with its handles dropped, an idle series is removed"
    );
    assert_eq!(h.series_count(), 0);
}
