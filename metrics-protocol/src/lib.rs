//! The protocol of the metrics facade: small, object-safe traits that any
//! library can instrument against, and the data types, errors and
//! validation rules every backend shares.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_protocol::{MetricCollector, NoopMetrics};
//!
//! // A library takes any collector...
//! struct Uploader { metrics: Arc<dyn MetricCollector> }
//!
//! impl Uploader {
//!     fn upload(&self, bytes: &[u8]) {
//!         self.metrics.increment("uploads.started", &[("kind", "blob")]);
//!         self.metrics.record_histogram("uploads.size", bytes.len() as f64, &[]);
//!     }
//! }
//!
//! // ...and the application chooses where the numbers go (here: nowhere).
//! let up = Uploader { metrics: Arc::new(NoopMetrics) };
//! up.upload(b"hello");
//! ```
//!
//! # In libraries
//!
//! Depend on this crate only. Take an `Arc<dyn MetricCollector>` (or the
//! other traits you need) and default to [`NoopMetrics`] when the
//! application gives you none. Tags are borrowed slices, so recording
//! allocates nothing at the call site; for a hot series, bind a handle once
//! with [`InstrumentExt`] and record through it. Time work with
//! [`CollectorExt::timed`], [`PerformanceTimerExt::time`] or the RAII
//! [`TimerGuard`].
//!
//! # In applications
//!
//! Pick backends at start-up: `metrics-memory` (queryable, also the test
//! double), `metrics-statsd` (a StatsD daemon), `metrics-system` (resource
//! sampling), or several at once through [`Fanout`].
//!
//! # In tests
//!
//! With the `mock` feature every trait has a mockall mock
//! (`MockMetricCollector`, `MockPerformanceTimer`, ...):
//!
//! ```
//! # #[cfg(feature = "mock")] {
//! use metrics_protocol::{MetricCollector, MockMetricCollector};
//!
//! fn checkout(metrics: &dyn MetricCollector, items: usize) {
//!     metrics.record_counter("cart.items", items as f64, &[("store", "eu")]);
//! }
//!
//! let mut mock = MockMetricCollector::new();
//! mock.expect_record_counter()
//!     .withf(|name, value, tags| name == "cart.items" && *value == 3.0 && *tags == [("store", "eu")])
//!     .times(1)
//!     .return_const(());
//! checkout(&mock, 3);
//! # }
//! ```
//!
//! # Bad input
//!
//! Recording never fails and never panics. The rules in [`validate`] decide
//! what is dropped (and counted under a [`DropReason`]) the same way in every
//! backend.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

mod collector;
mod config;
mod dashboard;
mod error;
mod fanout;
mod health;
mod instruments;
mod monitor;
mod noop;
mod query;
mod resources;
mod sample;
mod system;
mod timing;
mod tracking;
mod types;
pub mod validate;

pub use collector::{CollectorExt, MetricCollector};
pub use config::MetricsConfig;
pub use dashboard::{ChartType, DashboardData, DashboardKind, Panel, PanelSeries, Point};
pub use error::MetricsError;
pub use fanout::Fanout;
pub use health::{BackendHealth, HealthCheckResult, HealthReport, HealthStatus};
pub use instruments::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, InstrumentExt, Timer, TimerFn,
};
pub use monitor::ResourceMonitor;
pub use noop::NoopMetrics;
pub use query::MetricsAggregator;
pub use resources::{
    CpuUsage, DiskUsage, InterfaceStats, LoadAverage, MemoryUsage, NetworkStats, ProcessUsage,
};
pub use sample::{Sample, SampleKind, read_samples};
pub use system::{
    AsyncMetricsSystem, EndpointResults, MetricFilter, MetricStream, MetricsSystem, StreamEvent,
};
pub use timing::{
    Operation, PerformanceTimer, PerformanceTimerExt, RunningTimers, StartedTimer, TimerGuard,
    record_stopped_timer,
};
pub use tracking::SuccessFailureTracker;
pub use types::{
    ExportFormat, MetricSummary, MetricType, MetricUnit, MetricValue, Tags, TimerId, TimingResult,
    TimingStats, duration_ms, option_duration_ms,
};
pub use validate::{DropCounters, DropReason};

#[cfg(any(test, feature = "mock"))]
pub use collector::MockMetricCollector;
#[cfg(any(test, feature = "mock"))]
pub use monitor::MockResourceMonitor;
#[cfg(any(test, feature = "mock"))]
pub use query::MockMetricsAggregator;
#[cfg(any(test, feature = "mock"))]
pub use system::{MockAsyncMetricsSystem, MockMetricsSystem};
#[cfg(any(test, feature = "mock"))]
pub use timing::MockPerformanceTimer;
#[cfg(any(test, feature = "mock"))]
pub use tracking::MockSuccessFailureTracker;
