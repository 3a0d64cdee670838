//! [`PerformanceTimer`]: timing operations, and the RAII [`TimerGuard`].

use std::time::Duration;

use crate::error::MetricsError;
use crate::types::{Tags, TimerId, TimingResult, TimingStats};

/// Times operations and answers timing statistics.
///
/// # For callers
///
/// Prefer [`PerformanceTimerExt::start_guard`] (records on drop, also on an
/// early return or a panic) or [`PerformanceTimerExt::time`] over pairing
/// `start_timer` and `stop_timer` by hand.
///
/// # For implementors
///
/// - Keep running timers in a bounded table: when it is full, evict the
///   oldest and count a [`DropReason::TimerEvicted`](crate::DropReason::TimerEvicted).
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
    /// object safety): [`PerformanceTimerExt::time`] returns it.
    fn time_operation<'a>(
        &self,
        operation_name: &'a str,
        operation: &mut dyn Operation,
        metadata: Tags<'a>,
    ) -> Result<TimingResult, MetricsError> {
        let guard = TimerGuard::start(self, operation_name, metadata);
        operation.run();
        guard.stop()
    }

    /// Count, sum, mean, min, max and percentiles (milliseconds) of the
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
pub trait Operation {
    /// Does the work once.
    fn run(&mut self);
}

impl<F: FnMut()> Operation for F {
    fn run(&mut self) {
        self()
    }
}

/// A running timer that stops itself when dropped.
///
/// It records a success unless [`mark_failed`](Self::mark_failed) was called
/// or the thread is panicking.
///
/// ```
/// use metrics_protocol::{NoopMetrics, PerformanceTimerExt};
/// fn handle(ok: bool) -> Result<(), &'static str> {
///     let mut timer = NoopMetrics.start_guard("request", &[("route", "/")]);
///     if !ok {
///         timer.mark_failed();
///         return Err("bad request"); // recorded as a failure here
///     }
///     Ok(()) // recorded as a success here
/// }
/// assert!(handle(false).is_err());
/// ```
#[must_use = "the timer stops as soon as the guard is dropped"]
pub struct TimerGuard<'t, T: PerformanceTimer + ?Sized> {
    timer: &'t T,
    id: Option<TimerId>,
    success: bool,
}

impl<'t, T: PerformanceTimer + ?Sized> TimerGuard<'t, T> {
    /// Starts a timer on `timer`.
    pub fn start(timer: &'t T, operation_name: &str, metadata: Tags<'_>) -> Self {
        TimerGuard {
            id: Some(timer.start_timer(operation_name, metadata)),
            timer,
            success: true,
        }
    }

    /// The id of the running timer.
    pub fn id(&self) -> Option<TimerId> {
        self.id
    }

    /// Records the operation as failed when the guard stops.
    pub fn mark_failed(&mut self) {
        self.success = false;
    }

    /// Sets the outcome recorded when the guard stops.
    pub fn set_success(&mut self, success: bool) {
        self.success = success;
    }

    /// Stops now and returns the result.
    pub fn stop(mut self) -> Result<TimingResult, MetricsError> {
        let id = self.id.take();
        match id {
            Some(id) => self.timer.stop_timer(id, self.success),
            None => Err(MetricsError::InvalidArgument(
                "timer guard already stopped".into(),
            )),
        }
    }
}

impl<T: PerformanceTimer + ?Sized> Drop for TimerGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let success = self.success && !std::thread::panicking();
            if let Err(e) = self.timer.stop_timer(id, success) {
                tracing::debug!(error = %e, "timer guard could not stop its timer");
            }
        }
    }
}

/// What `stop_timer` records, written once for every backend: the duration
/// into the timer series `operation_name` (with `tags`), then a success, or a
/// failure of error type `"timer"`, of the operation.
pub fn record_stopped_timer<B>(
    backend: &B,
    operation_name: &str,
    duration: Duration,
    tags: Tags<'_>,
    success: bool,
) where
    B: crate::MetricCollector + crate::SuccessFailureTracker + ?Sized,
{
    backend.record_timer(operation_name, duration, tags);
    if success {
        backend.record_success(operation_name, tags);
    } else {
        backend.record_failure(operation_name, "timer", tags);
    }
}

/// Conveniences on every [`PerformanceTimer`] that would break object safety.
pub trait PerformanceTimerExt: PerformanceTimer {
    /// Starts a timer that stops (and records) when the guard is dropped.
    fn start_guard<'t>(&'t self, operation_name: &str, metadata: Tags<'_>) -> TimerGuard<'t, Self> {
        TimerGuard::start(self, operation_name, metadata)
    }

    /// Runs `f`, records it as a success, and returns its result.
    fn time<R>(&self, operation_name: &str, metadata: Tags<'_>, f: impl FnOnce() -> R) -> R {
        let _guard = TimerGuard::start(self, operation_name, metadata);
        f()
    }

    /// Runs `f`, records a success for `Ok` and a failure for `Err`, and
    /// returns its result.
    ///
    /// ```
    /// use metrics_protocol::{NoopMetrics, PerformanceTimerExt};
    /// let r: Result<u32, String> = NoopMetrics.time_result("parse", &[], || "42".parse().map_err(|_| "nan".into()));
    /// assert_eq!(r, Ok(42));
    /// ```
    fn time_result<T, E>(
        &self,
        operation_name: &str,
        metadata: Tags<'_>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = TimerGuard::start(self, operation_name, metadata);
        let out = f();
        guard.set_success(out.is_ok());
        out
    }
}

impl<T: PerformanceTimer + ?Sized> PerformanceTimerExt for T {}
