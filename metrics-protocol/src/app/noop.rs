//! [`NoopMetrics`] as a whole system: no resources, no queries, no exports.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{
    AsyncMetricsSystem, CpuUsage, DashboardData, DashboardKind, DiskUsage, EndpointResults,
    HealthReport, MemoryUsage, MetricFilter, MetricStream, MetricSummary, MetricValue,
    MetricsAggregator, MetricsConfig, MetricsSystem, NetworkStats, ProcessUsage, ResourceMonitor,
    TimingStats,
};
use crate::noop::unsupported;
use crate::{
    MetricCollector, MetricType, Metrics, MetricsError, NoopMetrics, PerformanceTimer,
    SuccessFailureTracker, Tags,
};

impl ResourceMonitor for NoopMetrics {
    fn memory_usage(&self) -> Result<MemoryUsage, MetricsError> {
        Err(unsupported("memory_usage"))
    }
    fn cpu_usage(&self) -> Result<CpuUsage, MetricsError> {
        Err(unsupported("cpu_usage"))
    }
    fn disk_usage(&self, _path: &Path) -> Result<DiskUsage, MetricsError> {
        Err(unsupported("disk_usage"))
    }
    fn all_disk_usage(&self) -> Result<Vec<DiskUsage>, MetricsError> {
        Err(unsupported("all_disk_usage"))
    }
    fn network_stats(&self) -> Result<NetworkStats, MetricsError> {
        Err(unsupported("network_stats"))
    }
    fn process_usage(&self) -> Result<ProcessUsage, MetricsError> {
        Err(unsupported("process_usage"))
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
    fn metric_summary(
        &self,
        _metric_name: &str,
        _time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        Err(unsupported("metric_summary"))
    }
    fn metrics_by_tag<'a>(&self, _tag_filter: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("metrics_by_tag"))
    }
    fn top_metrics(
        &self,
        _metric_type: MetricType,
        _limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("top_metrics"))
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
    fn performance_timer(&self) -> Arc<dyn PerformanceTimer> {
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
    fn system_health(&self) -> HealthReport {
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
            n.metric_summary("c", None),
            Err(MetricsError::Unsupported { .. })
        ));
        assert!(n.memory_usage().is_err());
        assert!(!n.is_monitoring());
        assert!(n.system_health().healthy);
    }
}
