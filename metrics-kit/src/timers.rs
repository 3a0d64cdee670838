//! [`RunningTimers`]: the bounded table of running timers behind
//! `start_timer`/`stop_timer`, [`record_stopped_timer`], what stopping one
//! records, and [`Timers`], both as a [`PerformanceTimer`].

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::backend::{self, DropReason};
use metrics_protocol::{Key, MetricCollector, MetricsError, PerformanceTimer, Tags, TimerId};

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
    B: MetricCollector + ?Sized,
{
    let key = Key::new(operation_name, tags);
    let failure = (!success).then_some("timer");
    backend::record_timing(backend, key.as_ref(), duration, failure);
}

/// The bounded table of running timers every [`PerformanceTimer`](metrics_protocol::PerformanceTimer) needs,
/// written once: at most `capacity` timers run; starting one more evicts
/// the oldest (its caller counts a
/// [`DropReason::TimerEvicted`](metrics_protocol::backend::DropReason::TimerEvicted)).
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
            drops.add(DropReason::TimerEvicted, evicted);
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
    ) -> Result<Duration, MetricsError>
    where
        B: MetricCollector + ?Sized,
    {
        let (t, duration) = self.stop(id)?;
        record_stopped_timer(backend, &t.name, duration, &t.tag_refs(), success);
        Ok(duration)
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

/// [`PerformanceTimer`] over any collector: a bounded [`RunningTimers`]
/// table whose stopped timers are recorded into the collector, and whose
/// evictions are counted in its drops (reported by [`Timers::drops`]).
///
/// ```
/// use std::sync::Arc;
/// use metrics_kit::Timers;
/// use metrics_protocol::PerformanceTimer;
/// use metrics_protocol::testing::Capture;
///
/// let capture = Capture::new();
/// let timers = Timers::new(capture.clone(), 100);
/// let id = timers.start_timer("export", &[("format", "csv")]);
/// timers.stop_timer(id, false).unwrap();
/// assert_eq!(capture.failures("export", "timer", &[("format", "csv")]), 1);
/// assert!(timers.stop_timer(id, true).is_err()); // stopped twice
/// ```
pub struct Timers {
    collector: Arc<dyn MetricCollector>,
    table: RunningTimers,
    drops: DropCounters,
}

impl Timers {
    /// At most `capacity` timers running at once, recorded into `collector`.
    pub fn new(collector: Arc<dyn MetricCollector>, capacity: usize) -> Self {
        Self::with_table(collector, RunningTimers::new(capacity))
    }

    /// The same over a table of your own (with its own clock).
    pub fn with_table(collector: Arc<dyn MetricCollector>, table: RunningTimers) -> Self {
        Timers {
            collector,
            table,
            drops: DropCounters::new(),
        }
    }

    /// Timers evicted from the full table, by reason.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Timers running now.
    pub fn running(&self) -> usize {
        self.table.len()
    }
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl PerformanceTimer for Timers {
    fn start_timer<'a>(&self, operation_name: &'a str, metadata: Tags<'a>) -> TimerId {
        self.table
            .start_counted(operation_name, metadata, &self.drops)
    }

    fn stop_timer(&self, timer_id: TimerId, success: bool) -> Result<Duration, MetricsError> {
        self.table.stop_into(&*self.collector, timer_id, success)
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
        assert_eq!(started.name, "op");
        assert!(duration < std::time::Duration::from_secs(60));
    }

    #[test]
    fn a_full_table_counts_evictions_in_its_drops() {
        let capture = metrics_protocol::testing::Capture::new();
        let timers = Timers::new(capture.clone(), 2);
        let first = timers.start_timer("op", &[]);
        timers.start_timer("op", &[]);
        timers.start_timer("op", &[]);
        assert_eq!(timers.drops().get(DropReason::TimerEvicted), 1);
        assert!(timers.stop_timer(first, true).is_err());
        assert_eq!(timers.running(), 2);
    }

    #[test]
    fn a_bad_operation_name_is_refused_twice_not_recorded() {
        let capture = metrics_protocol::testing::Capture::new();
        record_stopped_timer(&*capture, "", std::time::Duration::ZERO, &[], true);
        assert!(capture.records().is_empty());
        assert_eq!(capture.dropped(DropReason::InvalidName), 2);
    }
}
