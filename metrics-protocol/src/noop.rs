//! [`NoopMetrics`]: every trait, doing nothing, at no cost.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::collector::MetricCollector;
use crate::config::MetricsConfig;
use crate::dashboard::{DashboardData, DashboardKind};
use crate::error::MetricsError;
use crate::health::{BackendHealth, HealthReport};
use crate::monitor::ResourceMonitor;
use crate::query::MetricsAggregator;
use crate::resources::{CpuUsage, DiskUsage, MemoryUsage, NetworkStats, ProcessUsage};
use crate::system::{
    AsyncMetricsSystem, EndpointResults, MetricFilter, MetricStream, MetricsSystem,
};
use crate::timing::PerformanceTimer;
use crate::tracking::SuccessFailureTracker;
use crate::types::{
    ExportFormat, MetricSummary, MetricType, MetricValue, Tags, TimerId, TimingResult, TimingStats,
};

/// Implements every trait and records nothing: the default for a library
/// that was handed no backend.
///
/// Recording costs a function call. Queries, resource readings and
/// `stop_timer` answer [`MetricsError::Unsupported`] (there is nothing to
/// answer from); `time_operation` still runs and measures the operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetrics;

const NOOP: &str = "noop";

fn unsupported(operation: &'static str) -> MetricsError {
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
        TimerId(uuid::Uuid::nil())
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
        let start_time = Utc::now();
        let start = Instant::now();
        operation.run();
        let duration = start.elapsed();
        Ok(TimingResult {
            operation_name: operation_name.to_owned(),
            duration,
            start_time,
            end_time: Utc::now(),
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

impl ResourceMonitor for NoopMetrics {
    fn get_memory_usage(&self) -> Result<MemoryUsage, MetricsError> {
        Err(unsupported("get_memory_usage"))
    }
    fn get_cpu_usage(&self) -> Result<CpuUsage, MetricsError> {
        Err(unsupported("get_cpu_usage"))
    }
    fn get_disk_usage(&self, _path: &Path) -> Result<DiskUsage, MetricsError> {
        Err(unsupported("get_disk_usage"))
    }
    fn get_all_disk_usage(&self) -> Result<Vec<DiskUsage>, MetricsError> {
        Err(unsupported("get_all_disk_usage"))
    }
    fn get_network_stats(&self) -> Result<NetworkStats, MetricsError> {
        Err(unsupported("get_network_stats"))
    }
    fn get_process_usage(&self) -> Result<ProcessUsage, MetricsError> {
        Err(unsupported("get_process_usage"))
    }
    fn start_resource_monitoring(&self, _interval: Duration) -> Result<(), MetricsError> {
        Err(unsupported("start_resource_monitoring"))
    }
    fn stop_resource_monitoring(&self) {}
    fn is_monitoring(&self) -> bool {
        false
    }
}

impl MetricsAggregator for NoopMetrics {
    fn get_metric_summary(
        &self,
        _metric_name: &str,
        _time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        Err(unsupported("get_metric_summary"))
    }
    fn get_metrics_by_tag<'a>(
        &self,
        _tag_filter: Tags<'a>,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("get_metrics_by_tag"))
    }
    fn export_metrics(&self, _format: ExportFormat) -> Result<String, MetricsError> {
        Err(unsupported("export_metrics"))
    }
    fn get_top_metrics(
        &self,
        _metric_type: MetricType,
        _limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("get_top_metrics"))
    }
}

impl MetricsSystem for NoopMetrics {
    fn collector(&self) -> Arc<dyn MetricCollector> {
        Arc::new(NoopMetrics)
    }
    fn timer(&self) -> Arc<dyn PerformanceTimer> {
        Arc::new(NoopMetrics)
    }
    fn tracker(&self) -> Arc<dyn SuccessFailureTracker> {
        Arc::new(NoopMetrics)
    }
    fn resource_monitor(&self) -> Arc<dyn ResourceMonitor> {
        Arc::new(NoopMetrics)
    }
    fn aggregator(&self) -> Arc<dyn MetricsAggregator> {
        Arc::new(NoopMetrics)
    }
    fn initialize_metrics(&self, config: &MetricsConfig) -> Result<(), MetricsError> {
        config.validate()
    }
    fn shutdown_metrics(&self) -> Result<(), MetricsError> {
        Ok(())
    }
    fn get_system_health(&self) -> HealthReport {
        HealthReport::from_parts(MetricCollector::health(self), Vec::new(), 0.0)
    }
    fn create_dashboard_data(&self, _kind: DashboardKind) -> Result<DashboardData, MetricsError> {
        Err(unsupported("create_dashboard_data"))
    }
}

/// A stream that ends at once.
struct EmptyStream;

impl futures_core::Stream for EmptyStream {
    type Item = crate::system::StreamEvent;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(None)
    }
}

#[async_trait::async_trait]
impl AsyncMetricsSystem for NoopMetrics {
    async fn collect_metrics_async(&self) -> Result<(), MetricsError> {
        Ok(())
    }
    async fn export_metrics_async(&self, endpoints: &[String]) -> EndpointResults {
        endpoints
            .iter()
            .map(|e| (e.clone(), Err(unsupported("export_metrics_async"))))
            .collect()
    }
    fn metrics_stream(&self, _filter: MetricFilter) -> MetricStream {
        Box::pin(EmptyStream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::PerformanceTimerExt;

    #[test]
    fn noop_records_nothing_and_refuses_queries() {
        let n = NoopMetrics;
        n.record_counter("c", 1.0, &[("a", "b")]);
        n.increment("c", &[]);
        n.decrement("g", &[]);
        assert!(matches!(
            n.get_metric_summary("c", None),
            Err(MetricsError::Unsupported { .. })
        ));
        assert!(matches!(
            n.export_metrics(ExportFormat::Json),
            Err(MetricsError::Unsupported { .. })
        ));
        assert!(n.get_success_rate("op", None).is_err());
        assert!(n.get_memory_usage().is_err());
        assert!(!n.is_monitoring());
        assert!(n.get_system_health().healthy);
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
        assert_eq!(NoopMetrics.time("op", &[], || 7), 7);
    }
}
