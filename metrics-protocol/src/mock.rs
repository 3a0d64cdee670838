//! mockall mocks (feature `mock`).
//!
//! Only what a backend writes is mocked: every convenience (`increment`,
//! bound handles, [`Metrics::start`](crate::Metrics::start), outcomes, ...)
//! arrives at the mock as the [`Measurement`]s it is made of, so a test sees
//! the same calls whichever convenience the library used, and binding a
//! handle needs no expectation.

use crate::backend::{DropReason, Measurement};

mockall::mock! {
    /// A mock [`MetricCollector`](crate::MetricCollector): expect
    /// `record` (each measurement) and `reject` (each refused recording).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use metrics_protocol::{Metrics, MockMetricCollector};
    /// use metrics_protocol::backend::Value;
    ///
    /// let mut backend = MockMetricCollector::new();
    /// backend
    ///     .expect_record()
    ///     .withf(|m| matches!(m.value(), Value::Timer(_)))
    ///     .times(1)
    ///     .return_const(());
    /// backend
    ///     .expect_record()
    ///     .withf(|m| m.key().name() == "upload" && m.error_type() == Some("timeout"))
    ///     .times(1)
    ///     .return_const(());
    /// let metrics = Metrics::new(Arc::new(backend));
    /// metrics.start("upload", &[]).failure("timeout");
    /// ```
    pub MetricCollector {}

    impl crate::MetricCollector for MetricCollector {
        fn record<'a>(&self, measurement: &Measurement<'a>);
        fn reject(&self, reason: DropReason);
    }
}
