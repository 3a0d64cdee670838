//! `NoopMetrics` behind every trait: accepts anything without panicking,
//! answers queries with `Unsupported`, and is usable as `Arc<dyn ...>`.

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::app::*;
use metrics_protocol::backend::Value;
use metrics_protocol::*;

#[test]
fn noop_accepts_any_input_through_every_trait_object() {
    let n: Arc<dyn MetricCollector> = Arc::new(NoopMetrics);
    let m = Metrics::from_dyn(n.clone());
    m.record_counter("", f64::NAN, &[("", "\n")]);
    m.record_gauge("g", f64::INFINITY, &[]);
    m.record_timer("t", Duration::MAX, &[]);
    m.counter("c", &[("a", "b")]).add(-5.0);
    m.timer("t", &[]).record(Duration::ZERO);
    m.record(&Key::from_static("k", &[]), Value::Success);
    assert!(n.flush().is_ok());
    assert_eq!(n.health()[0].total_dropped(), 0);

    let t: Arc<dyn SuccessFailureTracker> = Arc::new(NoopMetrics);
    t.record_success("op", &[]);
    t.record_failure("op", "boom", &[]);

    let q: Arc<dyn MetricsAggregator> = Arc::new(NoopMetrics);
    assert!(matches!(
        q.success_rate("op", None),
        Err(MetricsError::Unsupported {
            backend: "noop",
            ..
        })
    ));
    assert!(matches!(
        q.timing_stats("op", None),
        Err(MetricsError::Unsupported { .. })
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
        Err(MetricsError::InvalidArgument(msg)) if msg.contains("collection_interval")
    ));
    assert!(s.system_health().healthy);
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
    sys.expect_metrics().returning(|| {
        let mut c = MockMetricCollector::new();
        // `increment` reaches a mock as the measurement it is made of.
        c.expect_record()
            .withf(|m| m.key().name() == "boot" && m.value() == Value::Counter(1.0))
            .times(1)
            .return_const(());
        Metrics::new(Arc::new(c))
    });
    sys.metrics().increment("boot", &[]);
}
