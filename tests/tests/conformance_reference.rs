//! The suite against a `Fanout` of two recording doubles: every
//! measurement reaches both, with the same tags, and each child counts the
//! refusals it is told of.

use std::sync::Arc;

use metrics_conformance::{CaptureHarness, Harness};
use metrics_kit::layers::Fanout;
use metrics_protocol::backend::{DropReason, Value};
use metrics_protocol::testing::Capture;
use metrics_protocol::{MetricCollector, Metrics, Tags};

/// A fanout whose read-back checks that both children saw the same thing.
struct FanoutOfTwo {
    fanout: Arc<Fanout>,
    a: CaptureHarness,
    b: CaptureHarness,
}

impl FanoutOfTwo {
    fn new() -> Self {
        let (a, b) = (Capture::new(), Capture::new());
        let fanout = Arc::new(Fanout::new(vec![a.clone(), b.clone()]));
        FanoutOfTwo {
            fanout,
            a: CaptureHarness::with_capture(a),
            b: CaptureHarness::with_capture(b),
        }
    }

    fn both<T: PartialEq + std::fmt::Debug>(&self, f: impl Fn(&CaptureHarness) -> T) -> T {
        let (x, y) = (f(&self.a), f(&self.b));
        assert_eq!(x, y, "the two fanout children disagree");
        x
    }
}

impl Harness for FanoutOfTwo {
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
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.both(|c| c.successes(operation, tags))
    }
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.both(|c| c.failures(operation, error_type, tags))
    }
    fn dropped(&self, reason: DropReason) -> u64 {
        // Each child counts its own refusals: report one child's view.
        self.both(|c| c.dropped(reason))
    }
}

metrics_conformance::conformance_suite!(FanoutOfTwo::new());

#[test]
fn a_record_through_fanout_reaches_both_with_the_same_tags() {
    let h = FanoutOfTwo::new();
    h.metrics()
        .record_counter("orders", 3.0, &[("tier", "gold"), ("region", "eu")]);
    let a = h.a.capture().records();
    assert_eq!(a.len(), 1);
    assert_eq!(a, h.b.capture().records());
    assert_eq!(
        a[0].tags,
        vec![
            ("region".to_owned(), "eu".to_owned()),
            ("tier".to_owned(), "gold".to_owned())
        ]
    );
    assert_eq!(a[0].value, Value::Counter(3.0));
}

#[test]
fn fanout_health_lists_every_child() {
    let h = FanoutOfTwo::new();
    h.metrics().record_counter("x", -1.0, &[]);
    let health = h.fanout.health();
    assert_eq!(health.len(), 2);
    assert!(
        health
            .iter()
            .all(|b| b.dropped[&DropReason::NegativeCounter] == 1)
    );
}
