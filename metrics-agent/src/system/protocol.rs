//! The protocol's system traits for [`Agent`]: [`MetricsSystem`] (the
//! trait objects, reconfiguration, health, dashboards) and
//! `AsyncMetricsSystem` (collection, exports, streams).

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::system::{
    DashboardData, DashboardKind, EndpointResults, HealthReport, MetricFilter, MetricStream,
    MetricsAggregator, MetricsConfig, MetricsSystem, ResourceMonitor,
};
use metrics_protocol::{
    MetricCollector, Metrics, MetricsError, PerformanceTimer, SuccessFailureTracker,
};

use super::Agent;
use super::lifecycle::{shut_down_error, shutdown_inner};

/// How long one HTTP export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl MetricsSystem for Agent {
    fn metrics(&self) -> Metrics {
        Metrics::new(self.inner.core.clone())
    }

    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.inner.core.clone()
    }

    fn timer(&self) -> Arc<dyn PerformanceTimer> {
        self.inner.core.clone()
    }

    fn tracker(&self) -> Arc<dyn SuccessFailureTracker> {
        self.inner.core.clone()
    }

    fn resource_monitor(&self) -> Arc<dyn ResourceMonitor> {
        match &self.inner.monitor {
            Some(m) => m.clone(),
            // Why is in the health report's `system` entry.
            None => Arc::new(metrics_protocol::NoopMetrics),
        }
    }

    fn aggregator(&self) -> Arc<dyn MetricsAggregator> {
        self.inner.core.query.clone()
    }

    /// Applies what can change on a running system: the collection
    /// interval (the sampler restarts at it) and the export endpoints.
    /// Retention is fixed when the memory backend is built: a different
    /// `retention_days` is a [`MetricsError::Config`].
    fn initialize_metrics(&self, config: &MetricsConfig) -> Result<(), MetricsError> {
        config.validate()?;
        if self.is_shut_down() {
            return Err(shut_down_error("initialize_metrics"));
        }
        let mut next = self.inner.settings.lock().config.clone();
        if (next.retention_days - config.retention_days).abs() > 1e-9 {
            return Err(MetricsError::config(
                "retention_days",
                config.retention_days.to_string(),
                format!(
                    "retention is fixed when the system is built (it is {} days here); set it in the agent configuration",
                    next.retention_days
                ),
            ));
        }
        next.collection_interval = config.collection_interval;
        next.export_endpoints = config.export_endpoints.clone();
        next.validate()?;
        self.inner.settings.lock().config = next;
        self.apply_sampling()
    }

    fn shutdown_metrics(&self) -> Result<(), MetricsError> {
        shutdown_inner(&self.inner)
    }

    /// Backends (memory, StatsD, streams, aggregations, the resource
    /// sampler, the agent itself), the registered checks (run now, each
    /// with the configured timeout), and the error rate over the
    /// configured window, as the check `error_rate`.
    fn get_system_health(&self) -> HealthReport {
        // One reading of the window, so the agent's counts and the rate agree.
        let outcomes = self.inner.core.outcomes.counts();
        let mut backends = self.inner.core.health();
        backends.push(self.system_health());
        backends.push(self.agent_health(outcomes));
        let mut checks = self.inner.checks.run_all();
        let (rate, check) = self.error_rate_check(outcomes);
        checks.push(check);
        HealthReport::from_parts(backends, checks, rate)
    }

    fn create_dashboard_data(&self, kind: DashboardKind) -> Result<DashboardData, MetricsError> {
        let core = &self.inner.core;
        let m = core.memory.as_ref().ok_or(MetricsError::Unsupported {
            operation: "create_dashboard_data",
            backend: "statsd",
        })?;
        crate::dashboard::build(m, kind, core.clock.now_millis())
    }
}

#[async_trait::async_trait]
impl metrics_protocol::system::AsyncMetricsSystem for Agent {
    /// Publishes one resource sample now (when sampling is configured) and
    /// closes every aggregation window that is over.
    async fn collect_metrics_async(&self) -> Result<(), MetricsError> {
        if self.is_shut_down() {
            return Err(shut_down_error("collect_metrics_async"));
        }
        self.inner.core.aggregations.tick();
        let sampling = self.inner.settings.lock().config.system_sampling;
        let Some(m) = self.inner.monitor.clone().filter(|_| sampling) else {
            return Ok(());
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        crate::pool::shared()?.run(move || {
            let _ = tx.send(m.publish_once());
        })?;
        rx.await
            .unwrap_or_else(|_| Err(MetricsError::Export("the resource sample panicked".into())))
    }

    /// Exports to `endpoints`; with none given, to the configured
    /// `export_endpoints`.
    async fn export_metrics_async(&self, endpoints: &[String]) -> EndpointResults {
        let configured;
        let endpoints = if endpoints.is_empty() {
            configured = self.inner.settings.lock().config.export_endpoints.clone();
            &configured[..]
        } else {
            endpoints
        };
        crate::export::export_to_endpoints(self.inner.core.query.clone(), endpoints, EXPORT_TIMEOUT)
            .await
    }

    fn metrics_stream(&self, filter: MetricFilter) -> MetricStream {
        self.inner.core.hub.subscribe(filter)
    }
}
