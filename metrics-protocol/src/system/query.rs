//! [`MetricsAggregator`]: queries and exports over what was recorded.

use std::time::Duration;

use crate::error::MetricsError;
use crate::system::{ExportFormat, MetricSummary, MetricValue};
use crate::{MetricType, Tags};

/// Answers questions about recorded metrics.
///
/// Write-only backends (StatsD) answer every method with
/// [`MetricsError::Unsupported`]; combine them with the memory backend
/// through `metrics-kit`'s `Fanout` for local queries.
///
/// ```
/// use std::time::Duration;
/// use metrics_protocol::NoopMetrics;
/// use metrics_protocol::system::{ExportFormat, MetricsAggregator};
///
/// fn p99_last_5_min(q: &dyn MetricsAggregator, name: &str) -> Option<f64> {
///     q.get_metric_summary(name, Some(Duration::from_secs(300))).ok()?.p99
/// }
/// assert_eq!(p99_last_5_min(&NoopMetrics, "db.query"), None);
/// assert!(NoopMetrics.export_metrics(ExportFormat::Prometheus).is_err());
/// ```
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait MetricsAggregator: Send + Sync {
    /// Summary of every series of `metric_name` merged, over all time or the
    /// last `time_window`. [`MetricsError::NoData`] when there is none.
    fn get_metric_summary(
        &self,
        metric_name: &str,
        time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError>;

    /// The current value of every series whose tags contain all of
    /// `tag_filter` (an empty filter matches everything).
    fn get_metrics_by_tag<'a>(
        &self,
        tag_filter: Tags<'a>,
    ) -> Result<Vec<MetricValue>, MetricsError>;

    /// Everything recorded, in `format`. Parse a format name with
    /// `"csv".parse::<ExportFormat>()`, which rejects unknown names with
    /// [`MetricsError::UnsupportedFormat`].
    fn export_metrics(&self, format: ExportFormat) -> Result<String, MetricsError>;

    /// The `limit` series of `metric_type` with the largest value (counters:
    /// total; gauges: value; distributions: count), largest first.
    fn get_top_metrics(
        &self,
        metric_type: MetricType,
        limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError>;
}
