//! [`NoopMetrics`]: every trait, doing nothing, at no cost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crate::collector::MetricCollector;
use crate::error::MetricsError;
use crate::health::BackendHealth;
use crate::timing::PerformanceTimer;
use crate::tracking::SuccessFailureTracker;
use crate::types::{Tags, TimerId, TimingResult, TimingStats};

/// Implements every trait and records nothing: the default for a library
/// that was handed no backend.
///
/// Recording costs a function call. Queries, resource readings and
/// `stop_timer` answer [`MetricsError::Unsupported`] (there is nothing to
/// answer from); `time_operation` still runs and measures the operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetrics;

pub(crate) const NOOP: &str = "noop";

pub(crate) fn unsupported(operation: &'static str) -> MetricsError {
    MetricsError::Unsupported {
        operation,
        backend: NOOP,
    }
}

impl MetricCollector for NoopMetrics {
    #[inline]
    fn record_counter<'a>(&self, _name: &'a str, _value: f64, _tags: Tags<'a>) {}
    #[inline]
    fn record_gauge<'a>(&self, _name: &'a str, _value: f64, _tags: Tags<'a>) {}
    #[inline]
    fn adjust_gauge<'a>(&self, _name: &'a str, _delta: f64, _tags: Tags<'a>) {}
    #[inline]
    fn record_histogram<'a>(&self, _name: &'a str, _value: f64, _tags: Tags<'a>) {}
    #[inline]
    fn record_timer<'a>(&self, _name: &'a str, _duration: Duration, _tags: Tags<'a>) {}
    fn health(&self) -> Vec<BackendHealth> {
        vec![BackendHealth::healthy(NOOP)]
    }
}

impl PerformanceTimer for NoopMetrics {
    fn start_timer<'a>(&self, _operation_name: &'a str, _metadata: Tags<'a>) -> TimerId {
        TimerId(0)
    }

    fn stop_timer(&self, _timer_id: TimerId, _success: bool) -> Result<TimingResult, MetricsError> {
        Err(unsupported("stop_timer"))
    }

    fn time_operation<'a>(
        &self,
        operation_name: &'a str,
        operation: &mut dyn crate::timing::Operation,
        metadata: Tags<'a>,
    ) -> Result<TimingResult, MetricsError> {
        let start_time = SystemTime::now();
        let start = Instant::now();
        operation.run();
        let duration = start.elapsed();
        Ok(TimingResult {
            operation_name: operation_name.to_owned(),
            duration,
            start_time,
            end_time: SystemTime::now(),
            success: true,
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        })
    }

    fn get_timing_stats(
        &self,
        _operation_name: &str,
        _window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        Err(unsupported("get_timing_stats"))
    }
}

impl SuccessFailureTracker for NoopMetrics {
    #[inline]
    fn record_success<'a>(&self, _operation: &'a str, _metadata: Tags<'a>) {}
    #[inline]
    fn record_failure<'a>(&self, _operation: &'a str, _error_type: &'a str, _metadata: Tags<'a>) {}
    fn get_success_rate(
        &self,
        _operation: &str,
        _w: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        Err(unsupported("get_success_rate"))
    }
    fn get_failure_breakdown(
        &self,
        _operation: &str,
        _w: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        Err(unsupported("get_failure_breakdown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CollectorExt, Metrics};

    #[test]
    fn noop_records_nothing_and_refuses_queries() {
        let n = NoopMetrics;
        n.record_counter("c", 1.0, &[("a", "b")]);
        n.increment("c", &[]);
        n.adjust_gauge("g", -1.0, &[]);
        assert!(n.get_success_rate("op", None).is_err());
        assert!(n.get_timing_stats("op", None).is_err());
        assert!(matches!(
            n.stop_timer(n.start_timer("op", &[]), true),
            Err(MetricsError::Unsupported { .. })
        ));
    }

    #[test]
    fn noop_still_runs_and_measures_timed_operations() {
        let mut ran = 0;
        let r = NoopMetrics
            .time_operation("op", &mut || ran += 1, &[("k", "v")])
            .unwrap();
        assert_eq!(ran, 1);
        assert_eq!(r.operation_name, "op");
        assert_eq!(r.metadata["k"], "v");
        assert_eq!(Metrics::noop().time("op", &[], || 7), 7);
    }
}
