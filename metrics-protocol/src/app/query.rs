//! [`MetricsAggregator`]: queries over what was recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::app::{MetricSummary, MetricValue};
use crate::error::MetricsError;
use crate::types::TimingStats;
use crate::{MetricType, Tags};

/// Answers questions about recorded metrics.
///
/// The read side of the protocol: write-only backends (StatsD) do not
/// implement it; an application that wants queries records into the
/// memory backend too (`metrics-kit`'s fan-out layer) and asks it.
///
/// ```
/// use std::time::Duration;
/// use metrics_protocol::NoopMetrics;
/// use metrics_protocol::app::MetricsAggregator;
///
/// fn p99_last_5_min(q: &dyn MetricsAggregator, name: &str) -> Option<f64> {
///     q.metric_summary(name, Some(Duration::from_secs(300))).ok()?.p99
/// }
/// assert_eq!(p99_last_5_min(&NoopMetrics, "db.query"), None);
/// ```
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait MetricsAggregator: Send + Sync {
    /// Summary of every series of `metric_name` merged, over all time or the
    /// last `time_window`. [`MetricsError::NoData`] when there is none.
    fn metric_summary(
        &self,
        metric_name: &str,
        time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError>;

    /// The current value of every series whose tags contain all of
    /// `tag_filter` (an empty filter matches everything).
    fn metrics_by_tag<'a>(&self, tag_filter: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError>;

    /// The `limit` series of `metric_type` with the largest value (counters:
    /// total; gauges: value; distributions: count), largest first.
    fn top_metrics(
        &self,
        metric_type: MetricType,
        limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError>;

    /// Successes / (successes + failures) of `operation`, 0 to 1, over all
    /// time or the last `time_window`; [`MetricsError::NoData`] when nothing
    /// was recorded (in the window).
    fn success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError>;

    /// Failures of `operation` by error type, over all time or the last
    /// `time_window` (empty when there were none).
    fn failure_breakdown(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError>;

    /// Count, sum, mean, min, max and percentiles (as durations) of the
    /// timer `operation`, over all time or the last `time_window`;
    /// [`MetricsError::NoData`] when nothing was recorded (in the window).
    fn timing_stats(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError>;
}

/// The success rate from counts: successes over all outcomes, or
/// [`MetricsError::NoData`] when there were none. What every
/// [`MetricsAggregator::success_rate`] answers from its counts.
///
/// ```
/// use std::collections::BTreeMap;
/// use metrics_protocol::app::rate_from_counts;
/// let failures = BTreeMap::from([("timeout".to_owned(), 1)]);
/// assert_eq!(rate_from_counts("sync", 3, &failures).unwrap(), 0.75);
/// assert!(rate_from_counts("sync", 0, &BTreeMap::new()).is_err());
/// ```
pub fn rate_from_counts(
    operation: &str,
    successes: u64,
    failures: &BTreeMap<String, u64>,
) -> Result<f64, MetricsError> {
    let total = successes.saturating_add(failures.values().fold(0u64, |a, b| a.saturating_add(*b)));
    if total == 0 {
        return Err(MetricsError::NoData(operation.to_owned()));
    }
    Ok(successes as f64 / total as f64)
}
