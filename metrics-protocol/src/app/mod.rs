//! The application side of the protocol (feature `app`): what an
//! application asks of its metrics as a whole, and the read side.
//!
//! - [`MetricsSystem`] and [`AsyncMetricsSystem`]: the whole protocol behind
//!   one value (life cycle, health, dashboards, streams, exports).
//! - [`ResourceMonitor`]: memory, CPU, disk, network and process readings.
//! - [`MetricsAggregator`]: queries, with the values they answer
//!   ([`MetricSummary`], [`MetricValue`]); the exposition formats are the
//!   `metrics-exposition` crate's, over a backend's snapshot.
//! - [`HealthReport`], [`DashboardData`], [`MetricsConfig`].
//!
//! A library that only records needs none of this; it holds a
//! [`Metrics`] handle (see the crate root).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    MetricCollector, MetricType, Metrics, MetricsError, PerformanceTimer, SuccessFailureTracker,
};

mod config;
mod dashboard;
mod monitor;
mod noop;
mod query;
mod report;
mod resources;
mod values;

pub use crate::types::TimingStats;
pub use config::MetricsConfig;
pub use dashboard::{ChartType, DashboardData, DashboardKind, Panel, PanelSeries, Point};
pub use monitor::ResourceMonitor;
pub use query::{MetricsAggregator, rate_from_counts};
pub use report::{HealthCheckResult, HealthReport};
pub use resources::{
    CpuUsage, DiskUsage, InterfaceStats, LoadAverage, MemoryUsage, NetworkStats, ProcessUsage,
};
pub use values::{MetricSummary, MetricValue};

#[cfg(any(test, feature = "mock"))]
pub use monitor::MockResourceMonitor;
#[cfg(any(test, feature = "mock"))]
pub use query::MockMetricsAggregator;

/// A complete metrics system: the five parts, life cycle, health and dashboards.
///
/// The parts are methods returning shared handles; most callers want
/// [`metrics`](MetricsSystem::metrics), the one handle a library holds.
///
/// ```
/// use metrics_protocol::app::{DashboardKind, MetricsSystem};
/// use metrics_protocol::NoopMetrics;
///
/// fn start(system: &dyn MetricsSystem) {
///     let metrics = system.metrics(); // hand this to libraries
///     metrics.increment("app.started", &[]);
///     let health = system.system_health();
///     println!("{} ({} backends)", health.status, health.backends.len());
///     let _ = system.create_dashboard_data(DashboardKind::Overview);
/// }
/// start(&NoopMetrics);
/// ```
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait MetricsSystem: Send + Sync {
    /// The handle libraries record through: collector and tracker in one.
    fn metrics(&self) -> Metrics;
    /// Where samples are recorded.
    fn collector(&self) -> Arc<dyn MetricCollector>;
    /// Running timers by id ([`PerformanceTimer`]: `start_timer`, then
    /// `stop_timer`), for timings that cross threads or callbacks. Not
    /// [`Metrics::timer`], which binds a timer series to record durations
    /// into.
    fn performance_timer(&self) -> Arc<dyn PerformanceTimer>;
    /// Success and failure tracking.
    fn tracker(&self) -> Arc<dyn SuccessFailureTracker>;
    /// System resources.
    fn resource_monitor(&self) -> Arc<dyn ResourceMonitor>;
    /// Queries and exports.
    fn aggregator(&self) -> Arc<dyn MetricsAggregator>;

    /// Applies `config` (checked with [`MetricsConfig::validate`]) and starts
    /// what it asks for.
    fn initialize_metrics(&self, config: &MetricsConfig) -> Result<(), MetricsError>;

    /// Stops pollers, flushes every backend, closes streams. Idempotent.
    fn shutdown_metrics(&self) -> Result<(), MetricsError>;

    /// Health of every backend and registered check.
    fn system_health(&self) -> HealthReport;

    /// Data for one dashboard.
    fn create_dashboard_data(&self, kind: DashboardKind) -> Result<DashboardData, MetricsError>;
}

/// Which recorded values a [`AsyncMetricsSystem::metrics_stream`] subscriber gets.
///
/// ```
/// use metrics_protocol::{MetricType, MetricUnit};
/// use metrics_protocol::app::{MetricFilter, MetricValue};
/// let f = MetricFilter::default().name_prefix("http.").tag("method", "GET");
/// let v = MetricValue::new("http.requests", 1.0, MetricType::Counter, MetricUnit::Count, &[("method", "GET")]);
/// assert!(f.matches(&v));
/// assert!(!f.clone().metric_type(MetricType::Gauge).matches(&v));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricFilter {
    /// Only names starting with this.
    pub name_prefix: Option<String>,
    /// Only these kinds (empty: all).
    pub metric_types: Vec<MetricType>,
    /// Only series whose tags contain all of these.
    pub tags: BTreeMap<String, String>,
}

impl MetricFilter {
    /// Keeps names starting with `prefix`.
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Keeps values of `t` (call again to allow several kinds).
    pub fn metric_type(mut self, t: MetricType) -> Self {
        self.metric_types.push(t);
        self
    }

    /// Keeps series tagged `key=value`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Whether `value` passes the filter.
    pub fn matches(&self, value: &MetricValue) -> bool {
        self.name_prefix
            .as_deref()
            .is_none_or(|p| value.name.starts_with(p))
            && (self.metric_types.is_empty() || self.metric_types.contains(&value.metric_type))
            && self
                .tags
                .iter()
                .all(|(k, v)| value.tags.get(k).is_some_and(|x| x == v))
    }
}

/// One item of a metrics stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A recorded value that passed the filter.
    Metric(MetricValue),
    /// The subscriber fell behind and lost this many of the oldest values.
    Lagged {
        /// Values lost since the previous event.
        missed: u64,
    },
}

/// A stream of [`StreamEvent`]s.
pub type MetricStream = Pin<Box<dyn futures_core::Stream<Item = StreamEvent> + Send>>;

/// The outcome of an export to each endpoint.
pub type EndpointResults = BTreeMap<String, Result<(), MetricsError>>;

/// The asynchronous side of a metrics system: collection, exports to
/// endpoints and live streams, on any executor.
///
/// ```
/// use std::task::{Context, Poll, Waker};
/// use futures_core::Stream;
/// use metrics_protocol::NoopMetrics;
/// use metrics_protocol::app::{AsyncMetricsSystem, MetricFilter};
///
/// // Subscribe to failures; the no-op system's stream ends at once.
/// let mut failures = NoopMetrics.metrics_stream(MetricFilter::default().name_prefix("checkout.failure"));
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(matches!(failures.as_mut().poll_next(&mut cx), Poll::Ready(None)));
/// ```
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait AsyncMetricsSystem: Send + Sync {
    /// Collects everything that is collected periodically (resource
    /// readings, ...) once, now.
    async fn collect_metrics_async(&self) -> Result<(), MetricsError>;

    /// Sends the export to each endpoint (a file path, or an
    /// `http://127.0.0.1:PORT/...` URL receiving a POST); one failure does not
    /// stop the others.
    async fn export_metrics_async(&self, endpoints: &[String]) -> EndpointResults;

    /// Every value recorded from now on that matches `filter`. A slow
    /// subscriber never slows recording: it loses the oldest values and gets
    /// a [`StreamEvent::Lagged`] saying how many.
    fn metrics_stream(&self, filter: MetricFilter) -> MetricStream;
}
