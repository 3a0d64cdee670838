//! Gauges: the last value set, moved by deltas.

use crate::Harness;

/// A gauge keeps the last value set, negative values and zero included.
pub fn keeps_the_last_value(h: &dyn Harness) {
    let m = h.metrics();
    m.record_gauge("conf.temperature", 20.0, &[]);
    m.record_gauge("conf.temperature", -3.5, &[]);
    m.record_gauge("conf.level", 7.0, &[("tank", "a")]);
    m.record_gauge("conf.level", 0.0, &[("tank", "a")]);
    m.record_gauge("conf.level", 9.0, &[("tank", "b")]);
    h.settle();
    assert_eq!(h.gauge("conf.temperature", &[]), Some(-3.5));
    assert_eq!(h.gauge("conf.level", &[("tank", "a")]), Some(0.0));
    assert_eq!(h.gauge("conf.level", &[("tank", "b")]), Some(9.0));
    assert_eq!(h.gauge("conf.level", &[]), None);
}

/// Deltas move the value last set, up and down; setting again replaces
/// whatever the deltas made of it.
pub fn adjusts_by_deltas(h: &dyn Harness) {
    let m = h.metrics();
    m.record_gauge("conf.connections", 10.0, &[("pool", "db")]);
    m.adjust_gauge("conf.connections", 5.0, &[("pool", "db")]);
    m.adjust_gauge("conf.connections", -1.0, &[("pool", "db")]);
    m.record_gauge("conf.queue", 4.0, &[]);
    m.adjust_gauge("conf.queue", 2.0, &[]);
    m.record_gauge("conf.queue", 1.0, &[]);
    h.settle();
    assert_eq!(h.gauge("conf.connections", &[("pool", "db")]), Some(14.0));
    assert_eq!(h.gauge("conf.queue", &[]), Some(1.0));
}

/// A delta on a gauge never set starts it from zero.
pub fn a_delta_on_a_new_gauge_starts_from_zero(h: &dyn Harness) {
    let m = h.metrics();
    m.adjust_gauge("conf.inflight", 3.0, &[("route", "/a")]);
    m.adjust_gauge("conf.inflight", -1.0, &[("route", "/a")]);
    m.adjust_gauge("conf.inflight", -2.0, &[("route", "/b")]);
    h.settle();
    assert_eq!(h.gauge("conf.inflight", &[("route", "/a")]), Some(2.0));
    assert_eq!(h.gauge("conf.inflight", &[("route", "/b")]), Some(-2.0));
}
