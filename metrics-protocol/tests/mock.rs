//! A library instrumented through `&dyn MetricCollector`, verified with the
//! mockall mocks of the `mock` feature.

use std::time::Duration;

use metrics_protocol::{
    MetricCollector, MetricsError, MockMetricCollector, MockPerformanceTimer,
    MockSuccessFailureTracker, PerformanceTimer, PerformanceTimerExt, SuccessFailureTracker,
    TimerId, TimingResult,
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

#[test]
fn timer_guard_stops_with_failure_when_marked() {
    let id = TimerId::new();
    let mut mock = MockPerformanceTimer::new();
    mock.expect_start_timer()
        .withf(|name, meta| name == "upload" && *meta == [("size", "big")])
        .times(1)
        .return_const(id);
    mock.expect_stop_timer()
        .withf(move |got, success| *got == id && !*success)
        .times(1)
        .returning(|_, success| {
            Ok(TimingResult {
                operation_name: "upload".into(),
                duration: Duration::from_millis(5),
                start_time: chrono::Utc::now(),
                end_time: chrono::Utc::now(),
                success,
                metadata: Default::default(),
            })
        });
    let mut guard = mock.start_guard("upload", &[("size", "big")]);
    guard.mark_failed();
    let r = guard.stop().unwrap();
    assert!(!r.success);
}

#[test]
fn time_result_reports_err_as_failure_and_returns_the_value() {
    let mut mock = MockPerformanceTimer::new();
    mock.expect_start_timer().return_const(TimerId::new());
    mock.expect_stop_timer()
        .withf(|_, success| !*success)
        .times(1)
        .returning(|id, _| Err(MetricsError::UnknownTimer(id)));
    let r: Result<(), &str> = mock.time_result("parse", &[], || Err("bad"));
    assert_eq!(r, Err("bad"));
}

#[test]
fn time_operation_default_runs_the_closure_once() {
    let mut mock = MockPerformanceTimer::new();
    let id = TimerId::new();
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
