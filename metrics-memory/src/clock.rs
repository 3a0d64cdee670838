//! Injectable time: the system clock in production, a manual clock in tests
//! so window, retention and expiry tests run in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// A reading in nanoseconds for measuring durations (timers): only the
    /// difference of two readings means anything. The default is
    /// [`now_millis`](Self::now_millis) in nanoseconds; [`SystemClock`]
    /// reads a monotonic clock, [`ManualClock`] its own nanoseconds.
    fn monotonic_nanos(&self) -> i64 {
        self.now_millis().saturating_mul(1_000_000)
    }

    /// Whether this is the [`SystemClock`], which the backend then reads
    /// without a virtual call. Other clocks keep the default, `false`.
    fn is_system_clock(&self) -> bool {
        false
    }
}

/// The operating system's clock, read coarsely: a background thread
/// (started on first use, one per process) refreshes a shared timestamp
/// every millisecond, so reading the time on the recording path is one
/// atomic load instead of a system call. Readings are at most about 2 ms
/// behind; time bins are seconds wide. If the thread cannot be started,
/// every reading asks the OS.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

static COARSE_NOW: AtomicI64 = AtomicI64::new(0);
static TICKER: std::sync::Once = std::sync::Once::new();

fn precise_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn start_ticker() {
    COARSE_NOW.store(precise_now(), Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("metrics-memory-clock".into())
        .spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(1));
                COARSE_NOW.store(precise_now(), Ordering::Relaxed);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "coarse clock thread not started; reading the OS clock on every sample");
        COARSE_NOW.store(0, Ordering::Relaxed);
    }
}

/// Starts the thread behind [`coarse_now_ms`] (once per process).
pub(crate) fn start_coarse_clock() {
    TICKER.call_once(start_ticker);
}

/// [`SystemClock::now_millis`] for callers that called
/// [`start_coarse_clock`] before: one atomic load.
#[inline]
pub(crate) fn coarse_now_ms() -> i64 {
    match COARSE_NOW.load(Ordering::Relaxed) {
        0 => precise_now_cold(),
        t => t,
    }
}

/// [`precise_now`] out of line, so the callers of [`coarse_now_ms`] stay
/// small.
#[cold]
#[inline(never)]
fn precise_now_cold() -> i64 {
    precise_now()
}

/// Whether the thread behind [`coarse_now_ms`] runs (it was started and
/// has stored a reading): then [`coarse_now_running_ms`] may be read.
pub(crate) fn coarse_clock_running() -> bool {
    COARSE_NOW.load(Ordering::Relaxed) != 0
}

/// [`coarse_now_ms`] for callers that saw [`coarse_clock_running`]: the
/// thread never stops, so the reading is never the `0` of "not started".
#[inline(always)]
pub(crate) fn coarse_now_running_ms() -> i64 {
    COARSE_NOW.load(Ordering::Relaxed)
}

impl Clock for SystemClock {
    #[inline]
    fn now_millis(&self) -> i64 {
        start_coarse_clock();
        coarse_now_ms()
    }

    fn is_system_clock(&self) -> bool {
        true
    }

    fn monotonic_nanos(&self) -> i64 {
        static ANCHOR: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let anchor = *ANCHOR.get_or_init(std::time::Instant::now);
        i64::try_from(anchor.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told to, with nanosecond resolution for
/// timers.
///
/// ```
/// use std::time::Duration;
/// use metrics_memory::{Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// c.advance(Duration::from_secs(2));
/// assert_eq!(c.now_millis(), 3_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(
    /// Nanoseconds since the epoch.
    AtomicI64,
);

const NANOS_PER_MS: i64 = 1_000_000;

impl ManualClock {
    /// A clock showing `millis` since the epoch.
    pub fn new(millis: i64) -> Self {
        ManualClock(AtomicI64::new(millis.saturating_mul(NANOS_PER_MS)))
    }

    /// A clock showing `t`.
    pub fn at(t: DateTime<Utc>) -> Self {
        Self::new(t.timestamp_millis())
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: Duration) {
        let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(nanos))
            });
    }

    /// Sets the clock, in milliseconds since the epoch.
    pub fn set(&self, millis: i64) {
        self.0
            .store(millis.saturating_mul(NANOS_PER_MS), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst).div_euclid(NANOS_PER_MS)
    }

    fn monotonic_nanos(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the epoch as a UTC time (the epoch if out of range).
pub fn to_datetime(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// A backend's [`Clock`] as the timer table's clock, so timers started
/// through the backend last what its clock says.
pub(crate) struct BackendTimerClock(pub Arc<dyn Clock>);

impl metrics_kit::TimerClock for BackendTimerClock {
    fn monotonic(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0.monotonic_nanos()).unwrap_or(0))
    }
    fn wall(&self) -> std::time::SystemTime {
        let ms = self.0.now_millis();
        let offset = std::time::Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            std::time::UNIX_EPOCH + offset
        } else {
            std::time::UNIX_EPOCH - offset
        }
    }
}
