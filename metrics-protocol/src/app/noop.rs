//! [`NoopMetrics`] as a whole system: no resources, no queries, no exports.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{
    AsyncMetricsSystem, CpuUsage, DashboardData, DashboardKind, DiskUsage, EndpointResults,
    ExportFormat, HealthReport, MemoryUsage, MetricFilter, MetricStream, MetricSummary,
    MetricValue, MetricsAggregator, MetricsConfig, MetricsSystem, NetworkStats, ProcessUsage,
    ResourceMonitor, TimingStats,
};
use crate::noop::unsupported;
use crate::{
    MetricCollector, MetricType, Metrics, MetricsError, NoopMetrics, PerformanceTimer,
    SuccessFailureTracker, Tags,
};

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
    fn success_rate(&self, _: &str, _: Option<Duration>) -> Result<f64, MetricsError> {
        Err(unsupported("success_rate"))
    }
    fn failure_breakdown(
        &self,
        _: &str,
        _: Option<Duration>,
    ) -> Result<std::collections::BTreeMap<String, u64>, MetricsError> {
        Err(unsupported("failure_breakdown"))
    }
    fn timing_stats(&self, _: &str, _: Option<Duration>) -> Result<TimingStats, MetricsError> {
        Err(unsupported("timing_stats"))
    }
}

impl MetricsSystem for NoopMetrics {
    fn metrics(&self) -> Metrics {
        Metrics::noop()
    }
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
    type Item = crate::app::StreamEvent;
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

    #[test]
    fn noop_system_refuses_queries_and_is_healthy() {
        let n = NoopMetrics;
        assert!(matches!(
            n.get_metric_summary("c", None),
            Err(MetricsError::Unsupported { .. })
        ));
        assert!(matches!(
            n.export_metrics(ExportFormat::Json),
            Err(MetricsError::Unsupported { .. })
        ));
        assert!(n.get_memory_usage().is_err());
        assert!(!n.is_monitoring());
        assert!(n.get_system_health().healthy);
    }
}
