//! Timers: every duration counted, one per timing guard however it ends.

use std::time::Duration;

use crate::Harness;

/// A timer keeps every duration: zero and an hour included.
pub fn counts_every_duration(h: &dyn Harness) {
    let m = h.metrics();
    for i in 0u64..10 {
        m.record_timer("conf.latency", Duration::from_millis(i + 1), &[]);
    }
    m.record_timer("conf.latency", Duration::ZERO, &[]);
    m.record_timer("conf.latency", Duration::from_secs(3600), &[]);
    m.record_timer(
        "conf.latency",
        Duration::from_micros(250),
        &[("tier", "l1")],
    );
    h.settle();
    assert_eq!(h.samples("conf.latency", &[]), Some(12));
    assert_eq!(h.samples("conf.latency", &[("tier", "l1")]), Some(1));
}

/// Every way a timing guard ends records one duration into the timer named
/// after the operation, with the guard's tags (in any order).
pub fn every_guard_records_its_duration(h: &dyn Harness) {
    let m = h.metrics();
    let tags = [("queue", "a"), ("region", "eu")];
    m.start("conf.job", &tags).success();
    m.start("conf.job", &tags).failure("timeout");
    drop(m.start("conf.job", &tags));
    assert_eq!(m.time("conf.job", &tags, || 7), 7);
    let r: Result<(), &str> = m.time_result("conf.job", &tags, || Err("timeout"));
    assert!(r.is_err());
    h.settle();
    let reversed = [("region", "eu"), ("queue", "a")];
    assert_eq!(h.samples("conf.job", &reversed), Some(5));
    assert_eq!(h.samples("conf.job", &[("queue", "a")]), None);
}
