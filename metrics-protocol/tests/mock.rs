//! A library instrumented through `&dyn MetricCollector`, verified with the
//! mockall mocks of the `mock` feature.

use std::time::Duration;

use std::sync::Arc;

use metrics_protocol::{
    MetricCollector, Metrics, MetricsError, MockBackend, MockMetricCollector, MockPerformanceTimer,
    MockSuccessFailureTracker, PerformanceTimer, SuccessFailureTracker, TimerId, TimingResult,
};
use mockall::Sequence;

/// The "library": charges a card and reports what happened.
fn charge(metrics: &dyn MetricCollector, amount_cents: u64, currency: &str) {
    metrics.record_counter(
        "payments.charged",
        amount_cents as f64,
        &[("currency", currency)],
    );
}

#[test]
fn library_records_expected_name_value_and_tags_exactly_once() {
    let mut mock = MockMetricCollector::new();
    mock.expect_record_counter()
        .withf(|name, value, tags| {
            name == "payments.charged" && *value == 1250.0 && *tags == [("currency", "EUR")]
        })
        .times(1)
        .return_const(());
    charge(&mock, 1250, "EUR");
    // Dropping the mock verifies `times(1)`: a second call or none fails.
}

#[test]
#[should_panic(expected = "No matching expectation found")]
fn mock_rejects_a_call_with_other_tags() {
    let mut mock = MockMetricCollector::new();
    mock.expect_record_counter()
        .withf(|_, _, tags| *tags == [("currency", "EUR")])
        .return_const(());
    charge(&mock, 5, "USD");
}

fn import(tracker: &dyn SuccessFailureTracker, rows: &[&str]) {
    for row in rows {
        if row.is_empty() {
            tracker.record_failure("import.row", "empty", &[("source", "csv")]);
        } else {
            tracker.record_success("import.row", &[("source", "csv")]);
        }
    }
}

#[test]
fn tracker_mock_sees_successes_and_failures_in_order() {
    let mut mock = MockSuccessFailureTracker::new();
    let mut seq = Sequence::new();
    mock.expect_record_success()
        .withf(|op, meta| op == "import.row" && *meta == [("source", "csv")])
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_record_failure()
        .withf(|op, err, _| op == "import.row" && err == "empty")
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    import(&mock, &["a", ""]);
}

/// The README's pattern: a library binds a handle at construction and
/// records through it; the mock needs no expectation for the binding, and
/// `inc()` arrives as the plain `record_counter` it is made of.
#[test]
fn binding_a_handle_on_a_mock_needs_no_expectation() {
    let mut backend = MockBackend::new();
    backend
        .expect_record_counter()
        .withf(|name, value, tags| {
            name == "uploads" && *value == 1.0 && *tags == [("kind", "blob")]
        })
        .times(2)
        .return_const(());
    let metrics = Metrics::new(Arc::new(backend));
    let uploads = metrics.counter("uploads", &[("kind", "blob")]);
    uploads.inc();
    metrics.increment("uploads", &[("kind", "blob")]);
}

#[test]
fn a_guard_records_its_duration_and_one_failure_with_the_callers_error_type() {
    let mut backend = MockBackend::new();
    let mut seq = Sequence::new();
    backend
        .expect_record_timer()
        .withf(|name, _, tags| name == "upload" && *tags == [("size", "big")])
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    backend
        .expect_record_failure()
        .withf(|op, error_type, tags| {
            op == "upload" && error_type == "quota" && *tags == [("size", "big")]
        })
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    // No success is expected: a second outcome would fail the mock.
    let metrics = Metrics::new(Arc::new(backend));
    metrics.start("upload", &[("size", "big")]).failure("quota");
}

#[test]
fn time_operation_default_runs_the_closure_once() {
    let mut mock = MockPerformanceTimer::new();
    let id = TimerId(7);
    mock.expect_start_timer().times(1).return_const(id);
    mock.expect_stop_timer()
        .withf(move |got, success| *got == id && *success)
        .times(1)
        .returning(|id, _| Err(MetricsError::UnknownTimer(id)));
    // The mock overrides time_operation too; call the trait default through a wrapper.
    struct Wrap(MockPerformanceTimer);
    impl PerformanceTimer for Wrap {
        fn start_timer<'a>(&self, n: &'a str, m: metrics_protocol::Tags<'a>) -> TimerId {
            self.0.start_timer(n, m)
        }
        fn stop_timer(&self, id: TimerId, s: bool) -> Result<TimingResult, MetricsError> {
            self.0.stop_timer(id, s)
        }
        fn get_timing_stats(
            &self,
            n: &str,
            w: Option<Duration>,
        ) -> Result<metrics_protocol::TimingStats, MetricsError> {
            self.0.get_timing_stats(n, w)
        }
    }
    let mut runs = 0;
    let r = Wrap(mock).time_operation("op", &mut || runs += 1, &[]);
    assert_eq!(runs, 1);
    assert!(matches!(r, Err(MetricsError::UnknownTimer(got)) if got == id));
}
