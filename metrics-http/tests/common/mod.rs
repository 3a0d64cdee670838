//! The one metrics system the tests (and the bench) serve: the memory
//! backend, with a health check, a stream and an aggregator the test sets.
//!
//! Each test file uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use metrics_exposition::Exporter;
use metrics_http::Source;
use metrics_memory::MemoryMetrics;
use metrics_protocol::app::{
    AsyncMetricsSystem, DashboardData, DashboardKind, EndpointResults, HealthCheckResult,
    HealthReport, MetricFilter, MetricStream, MetricsAggregator, MetricsConfig, MetricsSystem,
    ResourceMonitor, StreamEvent,
};
use metrics_protocol::backend::HealthStatus;
use metrics_protocol::{
    MetricCollector, Metrics, MetricsError, NoopMetrics, PerformanceTimer, SuccessFailureTracker,
};
use tokio::sync::mpsc;

/// A system over the memory backend.
///
/// - Health: the backend's, and one check whose status is `health`.
/// - Queries: `aggregator` when set, else the backend.
/// - Streams: each subscriber gets `events` (those its filter passes);
///   then the stream ends, or, when `live`, goes on with what
///   [`TestSystem::send`] sends until its reader drops it.
pub struct TestSystem {
    /// The backend everything is recorded into.
    pub mem: Arc<MemoryMetrics>,
    /// The status of the registered check.
    pub health: HealthStatus,
    /// What every subscriber gets first.
    pub events: Vec<StreamEvent>,
    /// Whether streams stay open for [`TestSystem::send`].
    pub live: bool,
    /// Answers queries instead of the backend.
    pub aggregator: Option<Arc<dyn MetricsAggregator>>,
    /// Subscriptions made so far.
    pub subscriptions: AtomicUsize,
    feeds: Mutex<Vec<mpsc::UnboundedSender<StreamEvent>>>,
}

impl TestSystem {
    /// An empty, healthy system whose streams end after `events` (none).
    pub fn new() -> Self {
        Self::over(Arc::new(MemoryMetrics::new()))
    }

    /// The same over the backend `mem`.
    pub fn over(mem: Arc<MemoryMetrics>) -> Self {
        TestSystem {
            mem,
            health: HealthStatus::Healthy,
            events: Vec::new(),
            live: false,
            aggregator: None,
            subscriptions: AtomicUsize::new(0),
            feeds: Mutex::new(Vec::new()),
        }
    }

    /// What the HTTP service serves of this system: it, and `/metrics`
    /// through an exporter over its backend.
    pub fn source(self) -> Source {
        let exporter = Exporter::new(self.mem.clone());
        Source::from_system(Arc::new(self)).with_exporter(exporter)
    }

    /// [`source`](Self::source) of a shared system.
    pub fn shared_source(self: &Arc<Self>) -> Source {
        Source::from_system(self.clone()).with_exporter(Exporter::new(self.mem.clone()))
    }

    /// Sends `event` to every live stream.
    pub fn send(&self, event: &StreamEvent) {
        for feed in self.feeds.lock().unwrap().iter() {
            let _ = feed.send(event.clone());
        }
    }

    /// Live streams still open (their reader not dropped).
    pub fn live_subscriptions(&self) -> usize {
        self.feeds
            .lock()
            .unwrap()
            .iter()
            .filter(|f| !f.is_closed())
            .count()
    }
}

impl MetricsSystem for TestSystem {
    fn metrics(&self) -> Metrics {
        Metrics::new(self.mem.clone())
    }
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.mem.clone()
    }
    fn performance_timer(&self) -> Arc<dyn PerformanceTimer> {
        self.mem.clone()
    }
    fn tracker(&self) -> Arc<dyn SuccessFailureTracker> {
        self.mem.clone()
    }
    fn resource_monitor(&self) -> Arc<dyn ResourceMonitor> {
        Arc::new(NoopMetrics)
    }
    fn aggregator(&self) -> Arc<dyn MetricsAggregator> {
        self.aggregator.clone().unwrap_or_else(|| self.mem.clone())
    }
    fn initialize_metrics(&self, _config: &MetricsConfig) -> Result<(), MetricsError> {
        Ok(())
    }
    fn shutdown_metrics(&self) -> Result<(), MetricsError> {
        Ok(())
    }
    fn system_health(&self) -> HealthReport {
        let check = HealthCheckResult {
            name: "set by the test".into(),
            status: self.health,
            message: Some("as the test set it".into()),
            duration: Duration::ZERO,
        };
        HealthReport::from_parts(self.mem.health(), vec![check], 0.0)
    }
    fn create_dashboard_data(&self, kind: DashboardKind) -> Result<DashboardData, MetricsError> {
        Ok(DashboardData {
            kind,
            title: kind.to_string(),
            generated_at: chrono::DateTime::UNIX_EPOCH,
            panels: Vec::new(),
        })
    }
}

#[async_trait::async_trait]
impl AsyncMetricsSystem for TestSystem {
    async fn collect_metrics_async(&self) -> Result<(), MetricsError> {
        Ok(())
    }
    async fn export_metrics_async(&self, _endpoints: &[String]) -> EndpointResults {
        EndpointResults::new()
    }
    fn metrics_stream(&self, filter: MetricFilter) -> MetricStream {
        self.subscriptions.fetch_add(1, Ordering::SeqCst);
        let (tx, mut rx) = mpsc::unbounded_channel();
        for event in &self.events {
            let _ = tx.send(event.clone());
        }
        if self.live {
            self.feeds.lock().unwrap().push(tx);
        }
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Box::pin(stream.filter(move |e| {
            std::future::ready(match e {
                StreamEvent::Metric(v) => filter.matches(v),
                StreamEvent::Lagged { .. } => true,
            })
        }))
    }
}
