//! [`PerformanceTimer`]: timers started and stopped by id, and timing statistics.

use std::time::Duration;

use crate::error::MetricsError;
use crate::types::{Tags, TimerId, TimingResult, TimingStats};

/// Times operations and answers timing statistics.
///
/// # For callers
///
/// A library times work with a [`Metrics`](crate::Metrics) handle's guard
/// ([`Metrics::start`](crate::Metrics::start), `time`, `time_async`), which
/// needs no table and cannot forget to stop. This trait is for timings that
/// start and stop in different calls (by id), and for timing statistics.
///
/// ```
/// use metrics_protocol::{MetricsError, NoopMetrics, PerformanceTimer};
///
/// let timer = NoopMetrics;
/// let id = timer.start_timer("report.render", &[("format", "pdf")]);
/// // ... the work, possibly finished from another call ...
/// let stopped = timer.stop_timer(id, true);
/// assert!(matches!(stopped, Err(MetricsError::Unsupported { .. }))); // no-op backend
/// ```
///
/// # For implementors
///
/// - Keep running timers in a bounded table (`metrics-kit`'s
///   `RunningTimers`): when it is full, evict the oldest and count a
///   [`DropReason::TimerEvicted`](crate::DropReason::TimerEvicted).
/// - `stop_timer` records the duration into the timer series named after
///   the operation, with the start metadata as its tags. A backend that also
///   implements [`SuccessFailureTracker`](crate::SuccessFailureTracker)
///   counts the outcome as a success or a failure (error type `"timer"`).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait PerformanceTimer: Send + Sync {
    /// Starts timing `operation_name`; `metadata` becomes the tags of the
    /// recorded timer series.
    fn start_timer<'a>(&self, operation_name: &'a str, metadata: Tags<'a>) -> TimerId;

    /// Stops a running timer and records its duration.
    ///
    /// Errors with [`MetricsError::UnknownTimer`] for an id that was never
    /// started, was already stopped, or was evicted.
    fn stop_timer(&self, timer_id: TimerId, success: bool) -> Result<TimingResult, MetricsError>;

    /// Times `operation` and records it as a success (as a failure if it panics,
    /// in which case the panic goes on after the timer is stopped).
    ///
    /// The closure's own result is not returned here (that would break
    /// object safety): [`Metrics::time`](crate::Metrics::time) returns it.
    fn time_operation<'a>(
        &self,
        operation_name: &'a str,
        operation: &mut dyn Operation,
        metadata: Tags<'a>,
    ) -> Result<TimingResult, MetricsError> {
        let id = self.start_timer(operation_name, metadata);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| operation.run()));
        let stopped = self.stop_timer(id, run.is_ok());
        if let Err(panic) = run {
            std::panic::resume_unwind(panic);
        }
        stopped
    }

    /// Count, sum, mean, min, max and percentiles (as durations) of the
    /// timer `operation_name`, over all time (`None`) or the last `window`.
    ///
    /// Errors with [`MetricsError::NoData`] when nothing was recorded (in
    /// the window), and [`MetricsError::Unsupported`] on write-only backends.
    fn get_timing_stats(
        &self,
        operation_name: &str,
        window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError>;
}

/// A piece of work for [`PerformanceTimer::time_operation`]; every
/// `FnMut()` closure is one.
///
/// ```
/// use metrics_protocol::{NoopMetrics, PerformanceTimer};
/// let mut rows = 0;
/// let result = NoopMetrics.time_operation("load", &mut || rows += 10, &[]).unwrap();
/// assert_eq!((rows, result.success), (10, true));
/// ```
pub trait Operation {
    /// Does the work once.
    fn run(&mut self);
}

impl<F: FnMut()> Operation for F {
    fn run(&mut self) {
        self()
    }
}
