//! The protocol's two traits for [`Agent`]: [`MetricsSystem`] (the
//! trait objects, reconfiguration, health, dashboards) and
//! `AsyncMetricsSystem` (collection, exports, streams).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::app::{
    DashboardData, DashboardKind, EndpointResults, HealthReport, MetricFilter, MetricStream,
    MetricSummary, MetricValue, MetricsAggregator, MetricsConfig, MetricsSystem, ResourceMonitor,
    TimingStats,
};
use metrics_protocol::{
    MetricCollector, MetricType, Metrics, MetricsError, PerformanceTimer, SuccessFailureTracker,
    Tags,
};

use super::Agent;
use super::lifecycle::{shut_down_error, shutdown_inner};
use crate::error::AgentError;

/// How long one HTTP export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The queries of an agent without the memory backend: StatsD keeps
/// nothing to answer from.
struct NoQueries;

fn no_queries(operation: &'static str) -> MetricsError {
    MetricsError::Unsupported {
        operation,
        backend: "statsd",
    }
}

impl MetricsAggregator for NoQueries {
    fn metric_summary(&self, _: &str, _: Option<Duration>) -> Result<MetricSummary, MetricsError> {
        Err(no_queries("metric_summary"))
    }
    fn metrics_by_tag<'a>(&self, _: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        Err(no_queries("metrics_by_tag"))
    }
    fn top_metrics(&self, _: MetricType, _: usize) -> Result<Vec<MetricValue>, MetricsError> {
        Err(no_queries("top_metrics"))
    }
    fn success_rate(&self, _: &str, _: Option<Duration>) -> Result<f64, MetricsError> {
        Err(no_queries("success_rate"))
    }
    fn failure_breakdown(
        &self,
        _: &str,
        _: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        Err(no_queries("failure_breakdown"))
    }
    fn timing_stats(&self, _: &str, _: Option<Duration>) -> Result<TimingStats, MetricsError> {
        Err(no_queries("timing_stats"))
    }
}

impl MetricsSystem for Agent {
    fn metrics(&self) -> Metrics {
        self.inner.rec.metrics()
    }

    /// The top of the agent's stack: the fan-out over its backends, under
    /// the tap of the streams, aggregations and error-rate window.
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.inner.rec.top.clone()
    }

    /// Running timers (at most 10000; past it the oldest is evicted and
    /// counted in the `agent` health entry), recorded into the collector.
    fn performance_timer(&self) -> Arc<dyn PerformanceTimer> {
        self.inner.rec.timers.clone()
    }

    /// The collector, counting outcomes (it only writes: rates and
    /// breakdowns are read from the [`aggregator`](MetricsSystem::aggregator)).
    fn tracker(&self) -> Arc<dyn SuccessFailureTracker> {
        self.inner.rec.top.clone()
    }

    fn resource_monitor(&self) -> Arc<dyn ResourceMonitor> {
        match &self.inner.monitor {
            Some(m) => m.clone(),
            // Why is in the health report's `system` entry.
            None => Arc::new(metrics_protocol::NoopMetrics),
        }
    }

    /// The memory backend; without it, queries answer
    /// [`MetricsError::Unsupported`].
    fn aggregator(&self) -> Arc<dyn MetricsAggregator> {
        match &self.inner.rec.memory {
            Some(m) => m.clone(),
            None => Arc::new(NoQueries),
        }
    }

    /// Applies what can change on a running agent: the collection
    /// interval (the poller restarts at it) and the export endpoints.
    /// Retention is fixed when the memory backend is built: a different
    /// `retention_days` is a [`MetricsError::InvalidArgument`] naming it.
    fn initialize_metrics(&self, config: &MetricsConfig) -> Result<(), MetricsError> {
        config.validate()?;
        if self.is_shut_down() {
            return Err(shut_down_error("initialize_metrics"));
        }
        let mut next = self.inner.settings.lock().config.clone();
        if (next.retention_days - config.retention_days).abs() > 1e-9 {
            return Err(AgentError::config(
                "retention_days",
                config.retention_days.to_string(),
                format!(
                    "retention is fixed when the agent is built (it is {} days here); set it in the agent configuration",
                    next.retention_days
                ),
            )
            .into());
        }
        next.collection_interval = config.collection_interval;
        next.export_endpoints = config.export_endpoints.clone();
        next.validate()?;
        self.inner.settings.lock().config = next;
        self.apply_polling()
    }

    fn shutdown_metrics(&self) -> Result<(), MetricsError> {
        shutdown_inner(&self.inner)
    }

    /// Backends (memory, StatsD, streams, aggregations, the resource
    /// poller, the agent itself), the registered checks (run now, each
    /// with the configured timeout), and the error rate over the
    /// configured window, as the check `error_rate`.
    fn system_health(&self) -> HealthReport {
        // One reading of the window, so the agent's counts and the rate agree.
        let rec = &self.inner.rec;
        let outcomes = rec.outcomes.counts();
        let mut backends = rec.top.health();
        backends.push(rec.hub.report());
        backends.extend(rec.aggregations.report());
        backends.push(self.monitor_health());
        backends.push(self.agent_health(outcomes));
        let mut checks = self.inner.checks.run_all();
        let (rate, check) = self.error_rate_check(outcomes);
        checks.push(check);
        HealthReport::from_parts(backends, checks, rate)
    }

    fn create_dashboard_data(&self, kind: DashboardKind) -> Result<DashboardData, MetricsError> {
        let rec = &self.inner.rec;
        let m = rec
            .memory
            .as_ref()
            .ok_or_else(|| no_queries("create_dashboard_data"))?;
        crate::dashboard::build(m, kind, rec.clock.now_millis())
    }
}

#[async_trait::async_trait]
impl metrics_protocol::app::AsyncMetricsSystem for Agent {
    /// Publishes one resource poll now (when polling is configured) and
    /// closes every aggregation batch that is over.
    async fn collect_metrics_async(&self) -> Result<(), MetricsError> {
        if self.is_shut_down() {
            return Err(shut_down_error("collect_metrics_async"));
        }
        self.inner.rec.aggregations.tick();
        let polling = self.inner.settings.lock().config.system_polling;
        let Some(m) = self.inner.monitor.clone().filter(|_| polling) else {
            return Ok(());
        };
        // On the agent's runtime's blocking pool; the handle is awaited on
        // whatever executor the caller runs.
        self.runtime()
            .spawn_blocking(move || m.publish_once())
            .await
            .unwrap_or_else(|_| {
                Err(MetricsError::io(
                    "collecting a resource poll",
                    std::io::Error::other("the resource poll panicked"),
                ))
            })
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
        let Some(exporter) = self.exporter().cloned() else {
            return endpoints
                .iter()
                .map(|e| (e.clone(), Err(no_queries("export"))))
                .collect();
        };
        crate::export::export_to_endpoints(self.runtime(), exporter, endpoints, EXPORT_TIMEOUT)
            .await
    }

    fn metrics_stream(&self, filter: MetricFilter) -> MetricStream {
        self.inner.rec.hub.subscribe(filter)
    }
}
