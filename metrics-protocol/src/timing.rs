//! [`PerformanceTimer`]: timings that start and stop in different calls.

use std::time::Duration;

use crate::error::MetricsError;
use crate::types::{Tags, TimerId};

/// Timings that start in one call and stop in another, by id: the guard
/// of [`Metrics::start`](crate::Metrics::start) for when no value can be
/// carried from start to stop (an id kept in a request table, a handle
/// passed through a foreign API). Stopping records what a guard records:
/// the duration into the timer series named after the operation, then one
/// outcome of it (a failure has error type `"timer"`).
///
/// ```
/// use metrics_protocol::{MetricsError, NoopMetrics, PerformanceTimer};
///
/// fn render(timer: &dyn PerformanceTimer) -> Result<(), MetricsError> {
///     let id = timer.start_timer("report.render", &[("format", "pdf")]);
///     // ... the work, finished from another call ...
///     timer.stop_timer(id, true).map(drop)
/// }
/// // The no-op keeps no table, so it knows no id.
/// assert!(matches!(render(&NoopMetrics), Err(MetricsError::UnknownTimer(_))));
/// ```
///
/// # For implementors
///
/// Keep running timers in a bounded table (`metrics-kit`'s `RunningTimers`
/// does it over any [`MetricCollector`](crate::MetricCollector)): when it is
/// full, evict the oldest and count a `DropReason::TimerEvicted`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait PerformanceTimer: Send + Sync {
    /// Starts timing `operation_name`; `metadata` becomes the tags of the
    /// recorded series.
    fn start_timer<'a>(&self, operation_name: &'a str, metadata: Tags<'a>) -> TimerId;

    /// Stops a running timer, records its duration and outcome, and returns
    /// the duration.
    ///
    /// Errors with [`MetricsError::UnknownTimer`] for an id that was never
    /// started, was already stopped, or was evicted.
    fn stop_timer(&self, timer_id: TimerId, success: bool) -> Result<Duration, MetricsError>;
}
