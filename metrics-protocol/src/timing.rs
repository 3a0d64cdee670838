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

/// The bounded table of running timers every [`PerformanceTimer`] needs,
/// written once: at most `capacity` timers run; starting one more evicts
/// the oldest (its caller counts a
/// [`DropReason::TimerEvicted`](crate::DropReason::TimerEvicted)).
///
/// ```
/// use metrics_protocol::RunningTimers;
/// let timers = RunningTimers::new(2);
/// let (a, evicted) = timers.start("a", &[("k", "v")]);
/// assert_eq!(evicted, 0);
/// timers.start("b", &[]);
/// let (_, evicted) = timers.start("c", &[]); // `a` is the oldest
/// assert_eq!(evicted, 1);
/// assert!(timers.stop(a).is_err());
/// assert_eq!(timers.len(), 2);
/// ```
#[derive(Debug)]
pub struct RunningTimers {
    capacity: usize,
    inner: std::sync::Mutex<TimerSlots>,
}

#[derive(Debug, Default)]
struct TimerSlots {
    running: std::collections::HashMap<TimerId, StartedTimer>,
    /// Start order, for eviction; ids of stopped timers linger until the
    /// next compaction.
    order: std::collections::VecDeque<TimerId>,
}

/// A timer as it was started, taken out of a [`RunningTimers`] table by
/// [`stop`](RunningTimers::stop): what the backend records.
#[derive(Debug, Clone)]
pub struct StartedTimer {
    /// The operation (the timer series' name).
    pub name: String,
    /// The start metadata (the series' tags).
    pub tags: Vec<(String, String)>,
    /// Monotonic start.
    pub started: std::time::Instant,
    /// Wall-clock start.
    pub start_time: chrono::DateTime<chrono::Utc>,
}

impl StartedTimer {
    /// The tags as the borrowed slice the recording methods take.
    pub fn tag_refs(&self) -> Vec<(&str, &str)> {
        self.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The result `stop_timer` returns, for a run of `duration`.
    pub fn into_result(self, duration: Duration, success: bool) -> TimingResult {
        TimingResult {
            operation_name: self.name,
            duration,
            start_time: self.start_time,
            end_time: chrono::Utc::now(),
            success,
            metadata: self.tags.into_iter().collect(),
        }
    }
}

impl RunningTimers {
    /// A table of at most `capacity` running timers (at least 1).
    pub fn new(capacity: usize) -> Self {
        RunningTimers {
            capacity: capacity.max(1),
            inner: std::sync::Mutex::new(TimerSlots::default()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, TimerSlots> {
        // A panic while holding the lock leaves the table consistent (every
        // operation is a few map calls): keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a timer now; returns its id and how many running timers were
    /// evicted to make room (0 or 1).
    pub fn start(&self, operation_name: &str, metadata: Tags<'_>) -> (TimerId, u64) {
        let id = TimerId::new();
        let timer = StartedTimer {
            name: operation_name.to_owned(),
            tags: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            started: std::time::Instant::now(),
            start_time: chrono::Utc::now(),
        };
        let mut g = self.slots();
        let slots = &mut *g;
        let mut evicted = 0;
        while slots.running.len() >= self.capacity {
            match slots.order.pop_front() {
                Some(old) => evicted += u64::from(slots.running.remove(&old).is_some()),
                None => break,
            }
        }
        slots.running.insert(id, timer);
        slots.order.push_back(id);
        if slots.order.len() > 2 * self.capacity {
            let TimerSlots { running, order } = slots;
            order.retain(|i| running.contains_key(i));
        }
        (id, evicted)
    }

    /// Takes a running timer out of the table, with the time it ran.
    /// [`MetricsError::UnknownTimer`] if it was never started, was already
    /// stopped, or was evicted.
    pub fn stop(&self, id: TimerId) -> Result<(StartedTimer, Duration), MetricsError> {
        let t = self
            .slots()
            .running
            .remove(&id)
            .ok_or(MetricsError::UnknownTimer(id))?;
        let elapsed = t.started.elapsed();
        Ok((t, elapsed))
    }

    /// [`start`](Self::start), counting an eviction in `drops`: a backend's
    /// whole `start_timer`.
    pub fn start_counted(
        &self,
        operation_name: &str,
        metadata: Tags<'_>,
        drops: &crate::DropCounters,
    ) -> TimerId {
        let (id, evicted) = self.start(operation_name, metadata);
        if evicted > 0 {
            drops.add(crate::DropReason::TimerEvicted, evicted);
        }
        id
    }

    /// [`stop`](Self::stop), then [`record_stopped_timer`] into `backend`:
    /// a backend's whole `stop_timer`.
    pub fn stop_into<B>(
        &self,
        backend: &B,
        id: TimerId,
        success: bool,
    ) -> Result<TimingResult, MetricsError>
    where
        B: crate::MetricCollector + crate::SuccessFailureTracker + ?Sized,
    {
        let (t, duration) = self.stop(id)?;
        record_stopped_timer(backend, &t.name, duration, &t.tag_refs(), success);
        Ok(t.into_result(duration, success))
    }

    /// Timers running now.
    pub fn len(&self) -> usize {
        self.slots().running.len()
    }

    /// Whether no timer runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_ids_neither_count_nor_evict_and_the_table_stays_bounded() {
        let t = RunningTimers::new(3);
        // Many short-lived timers: stopped ids linger in the start order
        // until compaction, and must never count as running.
        for _ in 0..10_000 {
            let (id, evicted) = t.start("op", &[]);
            assert_eq!(evicted, 0);
            t.stop(id).unwrap();
        }
        assert!(t.is_empty());
        assert!(t.slots().order.len() <= 6 + 1);
        let ids: Vec<TimerId> = (0..3).map(|_| t.start("op", &[("k", "v")]).0).collect();
        let (_, evicted) = t.start("op", &[]);
        assert_eq!(evicted, 1, "the fourth running timer evicts the oldest");
        assert!(matches!(t.stop(ids[0]), Err(MetricsError::UnknownTimer(_))));
        let (started, duration) = t.stop(ids[1]).unwrap();
        assert_eq!(started.tag_refs(), [("k", "v")]);
        let r = started.into_result(duration, false);
        assert_eq!((r.operation_name.as_str(), r.success), ("op", false));
        assert_eq!(r.metadata["k"], "v");
        assert!(r.end_time >= r.start_time);
    }
}
