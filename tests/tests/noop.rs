//! `NoopMetrics` behind every trait: accepts anything without panicking,
//! answers queries with `Unsupported`, and is usable as `Arc<dyn ...>`.

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::system::*;
use metrics_protocol::*;

#[test]
fn noop_accepts_any_input_through_every_trait_object() {
    let n: Arc<dyn MetricCollector> = Arc::new(NoopMetrics);
    n.record_counter("", f64::NAN, &[("", "\n")]);
    n.record_gauge("g", f64::INFINITY, &[]);
    n.record_timer("t", Duration::MAX, &[]);
    n.counter("c", &[("a", "b")]).increment(-5.0);
    n.timer("t", &[]).record(Duration::ZERO);
    assert!(n.flush().is_ok());

    let t: Arc<dyn SuccessFailureTracker> = Arc::new(NoopMetrics);
    t.record_success("op", &[]);
    t.record_failure("op", "boom", &[]);
    assert!(matches!(
        t.get_success_rate("op", None),
        Err(MetricsError::Unsupported {
            backend: "noop",
            ..
        })
    ));
}

#[test]
fn noop_system_is_healthy_and_streams_nothing() {
    let s = NoopMetrics;
    assert!(s.initialize_metrics(&MetricsConfig::default()).is_ok());
    let bad = MetricsConfig {
        collection_interval: 0.0,
        ..Default::default()
    };
    assert!(matches!(
        s.initialize_metrics(&bad),
        Err(MetricsError::Config { .. })
    ));
    assert!(s.get_system_health().healthy);
    assert!(s.create_dashboard_data(DashboardKind::Overview).is_err());
    assert!(s.shutdown_metrics().is_ok());

    let mut stream = AsyncMetricsSystem::metrics_stream(&s, MetricFilter::default());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(matches!(
        stream.as_mut().poll_next(&mut cx),
        std::task::Poll::Ready(None)
    ));
}

#[test]
fn mock_system_hands_out_mock_parts() {
    let mut sys = MockMetricsSystem::new();
    sys.expect_collector().returning(|| {
        let mut c = MockMetricCollector::new();
        // `increment` reaches a mock as the call it is made of.
        c.expect_record_counter()
            .withf(|n, v, _| n == "boot" && *v == 1.0)
            .times(1)
            .return_const(());
        Arc::new(c)
    });
    sys.collector().increment("boot", &[]);
}
