//! A library instrumented through a `Metrics` handle, verified with the
//! mockall mock of the `mock` feature: every convenience arrives as the
//! measurements it is made of.

use std::sync::Arc;

use metrics_protocol::backend::{DropReason, Value};
use metrics_protocol::mockall::Sequence;
use metrics_protocol::{
    Metrics, MetricsError, MockMetricCollector, MockPerformanceTimer, PerformanceTimer, TimerId,
};

/// The "library": charges a card and reports what happened.
fn charge(metrics: &Metrics, amount_cents: u64, currency: &str) {
    metrics.record_counter(
        "payments.charged",
        amount_cents as f64,
        &[("currency", currency)],
    );
}

#[test]
fn library_records_expected_name_value_and_tags_exactly_once() {
    let mut mock = MockMetricCollector::new();
    mock.expect_record()
        .withf(|m| {
            m.key().name() == "payments.charged"
                && m.value() == Value::Counter(1250.0)
                && m.key().tags() == [("currency", "EUR")]
        })
        .times(1)
        .return_const(());
    charge(&Metrics::new(Arc::new(mock)), 1250, "EUR");
    // Dropping the mock verifies `times(1)`: a second call or none fails.
}

#[test]
#[should_panic(expected = "No matching expectation found")]
fn mock_rejects_a_call_with_other_tags() {
    let mut mock = MockMetricCollector::new();
    mock.expect_record()
        .withf(|m| m.key().tags() == [("currency", "EUR")])
        .return_const(());
    charge(&Metrics::new(Arc::new(mock)), 5, "USD");
}

#[test]
fn outcomes_arrive_in_order_with_their_error_type() {
    let mut mock = MockMetricCollector::new();
    let mut seq = Sequence::new();
    mock.expect_record()
        .withf(|m| m.key().name() == "import.row" && m.value() == Value::Success)
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_record()
        .withf(|m| m.value() == Value::Failure && m.error_type() == Some("empty"))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    let metrics = Metrics::new(Arc::new(mock));
    for row in ["a", ""] {
        if row.is_empty() {
            metrics.record_failure("import.row", "empty", &[("source", "csv")]);
        } else {
            metrics.record_success("import.row", &[("source", "csv")]);
        }
    }
}

/// A library binds a handle at construction and records through it; the
/// mock needs no expectation for the binding, and `increment()` arrives as
/// the plain counter measurement it is made of.
#[test]
fn binding_a_handle_on_a_mock_needs_no_expectation() {
    let mut backend = MockMetricCollector::new();
    backend
        .expect_record()
        .withf(|m| {
            m.key().name() == "uploads"
                && m.value() == Value::Counter(1.0)
                && m.key().tags() == [("kind", "blob")]
        })
        .times(2)
        .return_const(());
    let metrics = Metrics::new(Arc::new(backend));
    let uploads = metrics.counter("uploads", &[("kind", "blob")]);
    uploads.increment();
    metrics.increment("uploads", &[("kind", "blob")]);
}

#[test]
fn a_refused_recording_reaches_reject_not_record() {
    let mut backend = MockMetricCollector::new();
    backend.expect_record().times(0);
    backend
        .expect_reject()
        .withf(|r| *r == DropReason::NegativeCounter)
        .times(1)
        .return_const(());
    Metrics::new(Arc::new(backend)).record_counter("c", -1.0, &[]);
}

#[test]
fn a_guard_records_its_duration_and_one_failure_with_the_callers_error_type() {
    let mut backend = MockMetricCollector::new();
    let mut seq = Sequence::new();
    backend
        .expect_record()
        .withf(|m| {
            m.key().name() == "upload"
                && matches!(m.value(), Value::Timer(_))
                && m.key().tags() == [("size", "big")]
        })
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    backend
        .expect_record()
        .withf(|m| {
            m.key().name() == "upload"
                && m.error_type() == Some("quota")
                && m.key().tags() == [("size", "big")]
        })
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    // No success is expected: a second outcome would fail the mock.
    let metrics = Metrics::new(Arc::new(backend));
    metrics.start("upload", &[("size", "big")]).failure("quota");
}

#[test]
fn timer_mock_sees_start_and_stop_by_id() {
    let mut mock = MockPerformanceTimer::new();
    let id = TimerId(7);
    mock.expect_start_timer().times(1).return_const(id);
    mock.expect_stop_timer()
        .withf(move |got, success| *got == id && !*success)
        .times(1)
        .returning(|id, _| Err(MetricsError::UnknownTimer(id)));
    let timer: &dyn PerformanceTimer = &mock;
    let started = timer.start_timer("op", &[]);
    assert!(
        matches!(timer.stop_timer(started, false), Err(MetricsError::UnknownTimer(got)) if got == id)
    );
}
