//! [`NoopMetrics`]: every trait, doing nothing, at no cost.

use crate::collector::MetricCollector;
use crate::error::MetricsError;
use crate::health::BackendHealth;
use crate::measurement::Measurement;
use crate::timing::PerformanceTimer;
use crate::types::{Tags, TimerId};

/// Implements every trait and records nothing: the default for a library
/// that was handed no backend.
///
/// Recording costs a function call. Queries and resource readings answer
/// [`MetricsError::Unsupported`] (there is nothing to answer from);
/// `stop_timer` knows no id; timing guards still run and measure.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetrics;

pub(crate) const NOOP: &str = "noop";

#[cfg(feature = "app")]
pub(crate) fn unsupported(operation: &'static str) -> MetricsError {
    MetricsError::Unsupported {
        operation,
        backend: NOOP,
    }
}

impl MetricCollector for NoopMetrics {
    #[inline]
    fn record(&self, _: &Measurement<'_>) {}
    fn health(&self) -> Vec<BackendHealth> {
        vec![BackendHealth::healthy(NOOP)]
    }
}

impl PerformanceTimer for NoopMetrics {
    fn start_timer<'a>(&self, _operation_name: &'a str, _metadata: Tags<'a>) -> TimerId {
        TimerId(0)
    }

    /// The no-op keeps no table: every id is unknown.
    fn stop_timer(
        &self,
        timer_id: TimerId,
        _success: bool,
    ) -> Result<std::time::Duration, MetricsError> {
        Err(MetricsError::UnknownTimer(timer_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metrics, SuccessFailureTracker};

    #[test]
    fn noop_records_nothing_and_knows_no_timer() {
        let n = NoopMetrics;
        n.record_success("op", &[("a", "b")]);
        assert!(matches!(
            n.stop_timer(n.start_timer("op", &[]), true),
            Err(MetricsError::UnknownTimer(_))
        ));
        assert_eq!(n.health()[0].name, NOOP);
    }

    #[test]
    fn noop_still_runs_timed_work() {
        let metrics = Metrics::noop();
        assert_eq!(metrics.time("op", &[], || 7), 7);
        metrics.increment("c", &[]);
        metrics.counter("c", &[]).increment();
    }
}
