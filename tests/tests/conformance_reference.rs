//! The suite against the reference capturing collector, and against a
//! `Fanout` of two of them (every record reaches both, with the same tags).

use std::sync::Arc;

use metrics_kit::Fanout;
use metrics_protocol::{DropReason, MetricCollector, Metrics, Tags};
use metrics_tests::{CapturingCollector, Harness};

mod capturing {
    metrics_tests::conformance_suite!(metrics_tests::CapturingCollector::new());
}

/// A fanout whose read-back checks that both children saw the same thing.
struct FanoutOfTwo {
    fanout: Arc<Fanout>,
    a: Arc<CapturingCollector>,
    b: Arc<CapturingCollector>,
}

impl FanoutOfTwo {
    fn new() -> Self {
        let a = CapturingCollector::new();
        let b = CapturingCollector::new();
        let fanout = Arc::new(Fanout::new(vec![a.clone(), b.clone()]));
        FanoutOfTwo { fanout, a, b }
    }

    fn both<T: PartialEq + std::fmt::Debug>(&self, f: impl Fn(&Arc<CapturingCollector>) -> T) -> T {
        let (x, y) = (f(&self.a), f(&self.b));
        assert_eq!(x, y, "the two fanout children disagree");
        x
    }
}

impl Harness for FanoutOfTwo {
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.fanout.clone()
    }
    fn metrics(&self) -> Metrics {
        Metrics::new(self.fanout.clone())
    }
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.both(|c| c.counter(name, tags))
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.both(|c| c.gauge(name, tags))
    }
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.both(|c| c.samples(name, tags))
    }
    fn series_count(&self) -> usize {
        self.both(|c| c.series_count())
    }
    fn dropped(&self, reason: DropReason) -> u64 {
        // Each child counts its own drops: report one child's view.
        self.both(|c| c.dropped(reason))
    }
}

mod fanout {
    metrics_tests::conformance_suite!(super::FanoutOfTwo::new());
}

#[test]
fn a_record_through_fanout_reaches_both_with_the_same_tags() {
    let h = FanoutOfTwo::new();
    h.collector()
        .record_counter("orders", 3.0, &[("region", "eu"), ("tier", "gold")]);
    let a = h.a.calls();
    assert_eq!(a.len(), 1);
    assert_eq!(a, h.b.calls());
    assert_eq!(
        a[0].tags,
        vec![
            ("region".to_owned(), "eu".to_owned()),
            ("tier".to_owned(), "gold".to_owned())
        ]
    );
    assert_eq!(a[0].value, 3.0);
}

#[test]
fn fanout_health_lists_every_child() {
    let h = FanoutOfTwo::new();
    h.collector().record_counter("x", -1.0, &[]);
    let health = h.collector().health();
    assert_eq!(health.len(), 2);
    assert!(
        health
            .iter()
            .all(|b| b.dropped[&DropReason::NegativeCounter] == 1)
    );
}
