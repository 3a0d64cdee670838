//! mockall mocks (feature `mock`).
//!
//! Only the methods a backend must write are mocked: the conveniences
//! (`increment`, bound handles, [`Metrics::start`](crate::Metrics::start),
//! ...) arrive at a mock as the plain recording calls they are made of, so a
//! test sees the same calls whichever convenience the library used, and
//! binding a handle needs no expectation.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{MetricsError, Tags};

mockall::mock! {
    /// A mock [`MetricCollector`](crate::MetricCollector): expect the five
    /// recording calls.
    pub MetricCollector {}

    impl crate::MetricCollector for MetricCollector {
        fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);
        fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);
        fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>);
        fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);
        fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>);
    }
}

mockall::mock! {
    /// A mock backend for a [`Metrics`](crate::Metrics) handle: the five
    /// recording calls of a collector and the four of a tracker.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use metrics_protocol::{Metrics, MockBackend};
    ///
    /// let mut backend = MockBackend::new();
    /// backend.expect_record_timer().times(1).return_const(());
    /// backend
    ///     .expect_record_failure()
    ///     .withf(|op, error_type, _| op == "upload" && error_type == "timeout")
    ///     .times(1)
    ///     .return_const(());
    /// let metrics = Metrics::new(Arc::new(backend));
    /// metrics.start("upload", &[]).failure("timeout");
    /// ```
    pub Backend {}

    impl crate::MetricCollector for Backend {
        fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);
        fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);
        fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>);
        fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);
        fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>);
    }

    impl crate::SuccessFailureTracker for Backend {
        fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>);
        fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>);
        fn get_success_rate(
            &self,
            operation: &str,
            time_window: Option<Duration>,
        ) -> Result<f64, MetricsError>;
        fn get_failure_breakdown(
            &self,
            operation: &str,
            time_window: Option<Duration>,
        ) -> Result<BTreeMap<String, u64>, MetricsError>;
    }
}
