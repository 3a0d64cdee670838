//! Histograms: every sample counted, in the series of its tags.

use crate::Harness;

/// A histogram keeps every sample: zero, negative and large ones included.
pub fn counts_every_sample(h: &dyn Harness) {
    let m = h.metrics();
    for i in 0u32..10 {
        m.record_histogram("conf.size", f64::from(i) * 100.0, &[("kind", "blob")]);
    }
    m.record_histogram("conf.size", -5.0, &[("kind", "blob")]);
    m.record_histogram("conf.size", 1e12, &[("kind", "blob")]);
    h.settle();
    assert_eq!(h.samples("conf.size", &[("kind", "blob")]), Some(12));
    assert_eq!(h.samples("conf.size", &[]), None);
}

/// Samples with different tags land in different series; the same tags in
/// another order land in the same one.
pub fn series_are_told_apart_by_tags(h: &dyn Harness) {
    let m = h.metrics();
    let a = [("kind", "a"), ("region", "eu")];
    let a_reversed = [("region", "eu"), ("kind", "a")];
    m.record_histogram("conf.payload", 1.0, &a);
    m.record_histogram("conf.payload", 2.0, &a_reversed);
    m.record_histogram("conf.payload", 3.0, &[("kind", "b"), ("region", "eu")]);
    m.histogram("conf.payload", &a_reversed).record(4.0);
    h.settle();
    assert_eq!(h.samples("conf.payload", &a), Some(3));
    assert_eq!(
        h.samples("conf.payload", &[("region", "eu"), ("kind", "b")]),
        Some(1)
    );
    assert_eq!(h.series_count(), 2);
}
