//! [`RunningTimers`]: the bounded table of running timers behind
//! `start_timer`/`stop_timer`, and [`record_stopped_timer`], what stopping one records.

use std::time::Duration;

use metrics_protocol::{
    MetricCollector, MetricsError, SuccessFailureTracker, Tags, TimerId, TimingResult,
};

use crate::DropCounters;

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
    B: MetricCollector + SuccessFailureTracker + ?Sized,
{
    backend.record_timer(operation_name, duration, tags);
    if success {
        backend.record_success(operation_name, tags);
    } else {
        backend.record_failure(operation_name, "timer", tags);
    }
}

/// The bounded table of running timers every [`PerformanceTimer`](metrics_protocol::PerformanceTimer) needs,
/// written once: at most `capacity` timers run; starting one more evicts
/// the oldest (its caller counts a
/// [`DropReason::TimerEvicted`](metrics_protocol::DropReason::TimerEvicted)).
///
/// ```
/// use metrics_kit::RunningTimers;
/// let timers = RunningTimers::new(2);
/// let (a, evicted) = timers.start("a", &[("k", "v")]);
/// assert_eq!(evicted, 0);
/// timers.start("b", &[]);
/// let (_, evicted) = timers.start("c", &[]); // `a` is the oldest
/// assert_eq!(evicted, 1);
/// assert!(timers.stop(a).is_err());
/// assert_eq!(timers.len(), 2);
/// ```
pub struct RunningTimers {
    clock: std::sync::Arc<dyn TimerClock>,
    capacity: usize,
    next_id: std::sync::atomic::AtomicU64,
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
    /// Monotonic start, on the table's [`TimerClock`].
    pub started: Duration,
    /// Wall-clock start.
    pub start_time: std::time::SystemTime,
}

/// Where a [`RunningTimers`] table reads time: the process clocks by default
/// ([`StdTimerClock`]), or a backend's injectable clock, so that a test
/// clock advanced 5 s times 5 s.
pub trait TimerClock: Send + Sync {
    /// A monotonic reading, from any fixed origin.
    fn monotonic(&self) -> Duration;
    /// The wall-clock time now.
    fn wall(&self) -> std::time::SystemTime;
}

/// The process clocks: `Instant` (from the table's creation) and `SystemTime`.
#[derive(Debug)]
pub struct StdTimerClock(std::time::Instant);

impl Default for StdTimerClock {
    fn default() -> Self {
        StdTimerClock(std::time::Instant::now())
    }
}

impl TimerClock for StdTimerClock {
    fn monotonic(&self) -> Duration {
        self.0.elapsed()
    }
    fn wall(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
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
            end_time: self.start_time + duration,
            success,
            metadata: self.tags.into_iter().collect(),
        }
    }
}

impl std::fmt::Debug for RunningTimers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTimers")
            .field("capacity", &self.capacity)
            .field("running", &self.len())
            .finish()
    }
}

impl RunningTimers {
    /// A table of at most `capacity` running timers (at least 1), on the
    /// process clocks.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, std::sync::Arc::new(StdTimerClock::default()))
    }

    /// A table of at most `capacity` running timers (at least 1), reading
    /// time from `clock`.
    pub fn with_clock(capacity: usize, clock: std::sync::Arc<dyn TimerClock>) -> Self {
        RunningTimers {
            clock,
            capacity: capacity.max(1),
            next_id: std::sync::atomic::AtomicU64::new(1),
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
        let id = TimerId(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let timer = StartedTimer {
            name: operation_name.to_owned(),
            tags: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            started: self.clock.monotonic(),
            start_time: self.clock.wall(),
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
        let elapsed = self.clock.monotonic().saturating_sub(t.started);
        Ok((t, elapsed))
    }

    /// [`start`](Self::start), counting an eviction in `drops`: a backend's
    /// whole `start_timer`.
    pub fn start_counted(
        &self,
        operation_name: &str,
        metadata: Tags<'_>,
        drops: &DropCounters,
    ) -> TimerId {
        let (id, evicted) = self.start(operation_name, metadata);
        if evicted > 0 {
            drops.add(metrics_protocol::DropReason::TimerEvicted, evicted);
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
        B: MetricCollector + SuccessFailureTracker + ?Sized,
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

/// The `start_timer` and `stop_timer` of a
/// [`PerformanceTimer`](metrics_protocol::PerformanceTimer) impl whose
/// running timers live in a [`RunningTimers`] table, written once: start
/// with [`RunningTimers::start_counted`] (an eviction counted in the
/// [`DropCounters`]), stop with [`RunningTimers::stop_into`] the
/// implementing type itself. Inside the impl, name `self` and say where the
/// table and the drop counters are; `get_timing_stats` stays the backend's.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use metrics_kit::{DropCounters, RunningTimers, running_timer_methods};
/// use metrics_protocol::testing::Capture;
/// use metrics_protocol::*;
///
/// struct Backend { capture: Arc<Capture>, timers: RunningTimers, drops: DropCounters }
///
/// impl MetricCollector for Backend {
///     fn record_counter<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) { self.capture.record_counter(n, v, t) }
///     fn record_gauge<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) { self.capture.record_gauge(n, v, t) }
///     fn adjust_gauge<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) { self.capture.adjust_gauge(n, v, t) }
///     fn record_histogram<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) { self.capture.record_histogram(n, v, t) }
///     fn record_timer<'a>(&self, n: &'a str, d: Duration, t: Tags<'a>) { self.capture.record_timer(n, d, t) }
/// }
/// impl SuccessFailureTracker for Backend {
///     fn record_success<'a>(&self, op: &'a str, t: Tags<'a>) { self.capture.record_success(op, t) }
///     fn record_failure<'a>(&self, op: &'a str, e: &'a str, t: Tags<'a>) { self.capture.record_failure(op, e, t) }
///     fn get_success_rate(&self, op: &str, w: Option<Duration>) -> Result<f64, MetricsError> {
///         self.capture.get_success_rate(op, w)
///     }
///     fn get_failure_breakdown(&self, op: &str, w: Option<Duration>) -> Result<BTreeMap<String, u64>, MetricsError> {
///         self.capture.get_failure_breakdown(op, w)
///     }
/// }
/// impl PerformanceTimer for Backend {
///     running_timer_methods!(|b| &b.timers, &b.drops);
///     fn get_timing_stats(&self, _: &str, _: Option<Duration>) -> Result<TimingStats, MetricsError> {
///         Err(MetricsError::NoData("kept nowhere".into()))
///     }
/// }
///
/// let b = Backend { capture: Capture::new(), timers: RunningTimers::new(8), drops: DropCounters::new() };
/// let id = b.start_timer("job", &[]);
/// b.stop_timer(id, true)?;
/// assert_eq!(b.capture.successes("job", &[]), 1);
/// # Ok::<(), MetricsError>(())
/// ```
#[macro_export]
macro_rules! running_timer_methods {
    (|$s:ident| $timers:expr, $drops:expr) => {
        fn start_timer<'a>(
            &self,
            operation_name: &'a str,
            metadata: $crate::__protocol::Tags<'a>,
        ) -> $crate::__protocol::TimerId {
            let $s = self;
            $timers.start_counted(operation_name, metadata, $drops)
        }

        fn stop_timer(
            &self,
            timer_id: $crate::__protocol::TimerId,
            success: bool,
        ) -> ::std::result::Result<$crate::__protocol::TimingResult, $crate::__protocol::MetricsError>
        {
            let $s = self;
            $timers.stop_into(self, timer_id, success)
        }
    };
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
