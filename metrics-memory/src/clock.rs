//! Injectable time: the system clock in production, a manual clock in tests
//! so window, retention and expiry tests run in microseconds; and the
//! recording timeline the backend builds from a clock's wall and monotonic
//! readings, which never runs backwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// The backend does not place samples at the wall clock's reading itself
/// but on its recording timeline (see the crate docs, "Time"), which it
/// builds from both readings of the clock: [`now_millis`](Self::now_millis)
/// says where the timeline should be, [`monotonic_nanos`](Self::monotonic_nanos)
/// how fast it goes on while the wall clock is behind it (after the wall
/// clock stepped back).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// A reading in nanoseconds for measuring durations (timers), and the
    /// rate of the backend's timeline while the wall clock is behind it:
    /// only the difference of two readings means anything, and it must not
    /// move when the wall clock is set or stepped. The default is
    /// [`now_millis`](Self::now_millis) in nanoseconds, which cannot tell a
    /// step from time passing: with it, the timeline stands still after the
    /// wall clock steps back, until the wall clock passes it again.
    /// [`SystemClock`] reads a monotonic clock, [`ManualClock`] its own
    /// nanoseconds, which only [`ManualClock::advance`] moves.
    fn monotonic_nanos(&self) -> i64 {
        self.now_millis().saturating_mul(1_000_000)
    }

    /// Whether this is the [`SystemClock`], which the backend then reads
    /// without a virtual call. Other clocks keep the default, `false`.
    fn is_system_clock(&self) -> bool {
        false
    }
}

const NANOS_PER_MS: i64 = 1_000_000;

/// A timeline that never runs backwards, built from a wall clock and a
/// monotonic clock (the rule of the crate docs, "Time"):
///
/// - it follows the wall clock, forward steps included (followed at once);
/// - when the wall clock steps back (reads earlier than the timeline's
///   latest reading), the timeline goes on from where it was at the rate of
///   the monotonic clock, until the wall clock passes it again; from then
///   on it follows the wall clock.
///
/// A wall clock that runs slower than the monotonic clock without stepping
/// (slewed by NTP, never reading earlier than the latest reading) is
/// followed: only a reading earlier than the latest one is a step back.
///
/// Lock-free: any number of threads may read it; each reading costs a few
/// relaxed loads, and a store only when the wall clock stepped or the
/// wall clock's distance to the timeline changed.
#[derive(Debug)]
pub(crate) struct Timeline {
    /// The timeline minus the monotonic reading, nanoseconds: while the
    /// wall clock is behind, the timeline is `monotonic + line_ns`; while
    /// it is followed, `wall - monotonic` at the latest reading.
    line_ns: AtomicI64,
    /// The latest reading handed out, ms (`i64::MIN` before the first).
    latest_ms: AtomicI64,
    /// How far the wall clock was behind the timeline at the latest
    /// reading, ms (`0`: the timeline follows the wall clock).
    behind_ms: AtomicI64,
}

impl Timeline {
    /// A timeline that follows the wall clock until its first step back.
    pub(crate) const fn new() -> Self {
        Timeline {
            line_ns: AtomicI64::new(0),
            latest_ms: AtomicI64::new(i64::MIN),
            behind_ms: AtomicI64::new(0),
        }
    }

    /// The timeline's time (ms since the epoch) for the wall clock reading
    /// `wall_ms` and the monotonic reading `mono_ns` taken together: never
    /// earlier than a reading handed out before.
    pub(crate) fn now(&self, wall_ms: i64, mono_ns: i64) -> i64 {
        let latest = self.latest_ms.load(Ordering::Relaxed);
        let line = self.line_ns.load(Ordering::Relaxed);
        let wall_ns = wall_ms.saturating_mul(NANOS_PER_MS);
        let on_line = mono_ns.saturating_add(line);
        let following = self.behind_ms.load(Ordering::Relaxed) == 0;
        let t = if latest == i64::MIN || wall_ns >= on_line || (following && wall_ms >= latest) {
            // The wall clock has not stepped back (or has passed the
            // timeline again): follow it.
            let d = wall_ns.saturating_sub(mono_ns);
            if d != line {
                self.line_ns.store(d, Ordering::Relaxed);
            }
            wall_ms
        } else {
            on_line.div_euclid(NANOS_PER_MS)
        };
        // Never backwards, even for a clock whose monotonic reading is its
        // wall reading (or goes back itself).
        let t = if t > latest {
            self.latest_ms.fetch_max(t, Ordering::Relaxed);
            t
        } else {
            latest
        };
        let behind = t.saturating_sub(wall_ms).max(0);
        if self.behind_ms.load(Ordering::Relaxed) != behind {
            self.behind_ms.store(behind, Ordering::Relaxed);
        }
        t
    }

    /// How far the wall clock was behind the timeline at the latest
    /// reading, ms: `0` while the timeline follows the wall clock.
    pub(crate) fn behind_ms(&self) -> i64 {
        self.behind_ms.load(Ordering::Relaxed)
    }
}

/// The operating system's clock, read coarsely: a background thread
/// (started on first use, one per process) refreshes a shared timestamp
/// every millisecond, so reading the time on the recording path is one
/// atomic load instead of a system call. Readings are at most about 2 ms
/// behind; time bins are seconds wide. If the thread cannot be started,
/// every reading asks the OS.
///
/// [`now_millis`](Clock::now_millis) is the process's recording timeline
/// (crate docs, "Time"), kept by that thread: the OS wall clock while it
/// runs forward, forward steps included; after a step back, the time it
/// showed before going on at the rate of the OS monotonic clock, until the
/// wall clock passes it again. It never runs backwards.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

static COARSE_NOW: AtomicI64 = AtomicI64::new(0);
static TICKER: std::sync::Once = std::sync::Once::new();
/// The process's recording timeline over the OS clocks: read by the coarse
/// clock's thread, or by every reading when that thread is not running.
static SYSTEM_TIMELINE: Timeline = Timeline::new();

fn precise_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The OS monotonic clock in nanoseconds since its first reading.
fn monotonic_now() -> i64 {
    static ANCHOR: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let anchor = *ANCHOR.get_or_init(std::time::Instant::now);
    i64::try_from(anchor.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// The process's recording timeline now, from the OS wall and monotonic
/// clocks.
fn system_timeline_now() -> i64 {
    let mono = monotonic_now();
    SYSTEM_TIMELINE.now(precise_now(), mono)
}

/// How far the OS wall clock is behind the process's recording timeline,
/// ms (`0`: the timeline follows it).
pub(crate) fn system_behind_ms() -> i64 {
    if !coarse_clock_running() {
        // No thread refreshes the timeline: take a reading.
        system_timeline_now();
    }
    SYSTEM_TIMELINE.behind_ms()
}

fn start_ticker() {
    COARSE_NOW.store(system_timeline_now(), Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("metrics-memory-clock".into())
        .spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(1));
                COARSE_NOW.store(system_timeline_now(), Ordering::Relaxed);
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

/// [`system_timeline_now`] out of line, so the callers of
/// [`coarse_now_ms`] stay small.
#[cold]
#[inline(never)]
fn precise_now_cold() -> i64 {
    system_timeline_now()
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
        monotonic_now()
    }
}

/// A clock that moves only when told to, with nanosecond resolution for
/// timers. It keeps a wall clock and a monotonic clock, so a test can model
/// time passing ([`advance`](Self::advance): both move) apart from the wall
/// clock being stepped or set ([`step`](Self::step), [`set`](Self::set):
/// the wall clock alone moves, as an NTP step or an operator would move
/// it).
///
/// ```
/// use std::time::Duration;
/// use metrics_memory::{Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// c.advance(Duration::from_secs(2));
/// assert_eq!(c.now_millis(), 3_000);
/// c.step(-1_000); // the wall clock steps back a second...
/// assert_eq!(c.now_millis(), 2_000);
/// assert_eq!(c.monotonic_nanos(), 3_000_000_000); // ...no time passed
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    /// Monotonic time, nanoseconds: moved by [`advance`](Self::advance)
    /// alone.
    mono: AtomicI64,
    /// The wall clock minus monotonic time, nanoseconds: moved by
    /// [`step`](Self::step) and [`set`](Self::set).
    wall_offset: AtomicI64,
}

impl ManualClock {
    /// A clock showing `millis` since the epoch (wall and monotonic time
    /// start equal).
    pub fn new(millis: i64) -> Self {
        ManualClock {
            mono: AtomicI64::new(millis.saturating_mul(NANOS_PER_MS)),
            wall_offset: AtomicI64::new(0),
        }
    }

    /// A clock showing `t`.
    pub fn at(t: DateTime<Utc>) -> Self {
        Self::new(t.timestamp_millis())
    }

    /// Lets `d` pass: the wall clock and monotonic time move forward
    /// together.
    pub fn advance(&self, d: Duration) {
        let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let _ = self
            .mono
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(nanos))
            });
    }

    /// Steps the wall clock by `delta_ms` (back when negative), as an NTP
    /// step would: no time passes, so monotonic time (timers) does not
    /// move.
    pub fn step(&self, delta_ms: i64) {
        let delta = delta_ms.saturating_mul(NANOS_PER_MS);
        let _ = self
            .wall_offset
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
                Some(o.saturating_add(delta))
            });
    }

    /// Sets the wall clock to `millis` since the epoch, as an operator
    /// would: a [`step`](Self::step) to that reading, so monotonic time
    /// (timers) does not move. A backend follows a set forward at once;
    /// after a set backward its timeline goes on from where it was (see
    /// the crate docs, "Time"). To let time pass, use
    /// [`advance`](Self::advance).
    pub fn set(&self, millis: i64) {
        let mono = self.mono.load(Ordering::SeqCst);
        self.wall_offset.store(
            millis.saturating_mul(NANOS_PER_MS).saturating_sub(mono),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        let offset = self.wall_offset.load(Ordering::SeqCst);
        self.mono
            .load(Ordering::SeqCst)
            .saturating_add(offset)
            .div_euclid(NANOS_PER_MS)
    }

    fn monotonic_nanos(&self) -> i64 {
        self.mono.load(Ordering::SeqCst)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = NANOS_PER_MS;

    /// Readings of a timeline over a wall clock and a monotonic clock that
    /// the test moves by hand (ms).
    struct Sim {
        t: Timeline,
        wall: i64,
        mono: i64,
    }

    impl Sim {
        fn new(at: i64) -> Self {
            Sim {
                t: Timeline::new(),
                wall: at,
                mono: 0,
            }
        }
        fn pass(&mut self, ms: i64) -> i64 {
            self.wall += ms;
            self.mono += ms;
            self.read()
        }
        fn step(&mut self, ms: i64) -> i64 {
            self.wall += ms;
            self.read()
        }
        fn read(&self) -> i64 {
            self.t.now(self.wall, self.mono * MS)
        }
    }

    #[test]
    fn the_timeline_follows_the_wall_clock_and_goes_on_after_a_step_back() {
        let mut s = Sim::new(1_000_000);
        assert_eq!(s.read(), 1_000_000);
        assert_eq!(s.pass(500), 1_000_500);
        assert_eq!(s.t.behind_ms(), 0);
        // Back an hour: the timeline goes on from where it was.
        assert_eq!(s.step(-3_600_000), 1_000_500);
        assert_eq!(s.t.behind_ms(), 3_600_000);
        assert_eq!(s.pass(10_000), 1_010_500);
        assert_eq!(s.t.behind_ms(), 3_600_000);
        // Forward half an hour: still behind, the timeline goes on.
        assert_eq!(s.step(1_800_000), 1_010_500);
        assert_eq!(s.pass(1), 1_010_501);
        assert_eq!(s.t.behind_ms(), 1_800_000);
        // The wall clock passes the timeline: followed again.
        assert_eq!(s.step(1_800_000 + 60_000), 1_070_501);
        assert_eq!(s.t.behind_ms(), 0);
        assert_eq!(s.pass(1_000), 1_071_501);
        // A step forward is followed at once.
        assert_eq!(s.step(3_600_000), 4_671_501);
        assert_eq!(s.t.behind_ms(), 0);
    }

    #[test]
    fn where_the_timeline_is_does_not_depend_on_how_often_it_is_read() {
        // Back an hour, then 10 minutes pass unread, then the wall clock
        // steps forward 55 minutes: 5 minutes behind the timeline still.
        let mut s = Sim::new(10_000_000);
        s.read();
        s.step(-3_600_000);
        s.wall += 600_000;
        s.mono += 600_000;
        assert_eq!(s.step(3_300_000), 10_600_000);
        assert_eq!(s.t.behind_ms(), 300_000);
    }

    #[test]
    fn a_wall_clock_slower_than_the_monotonic_clock_is_followed_without_drift() {
        // Slewed: 999 ms of wall time per 1000 ms of monotonic time, read
        // every millisecond (a wall reading never goes back).
        let mut s = Sim::new(5_000_000);
        let mut wall_ns = s.wall * MS;
        for _ in 0..100_000 {
            wall_ns += 999_000;
            s.mono += 1;
            s.wall = wall_ns.div_euclid(MS);
            assert_eq!(s.read(), s.wall);
        }
        assert_eq!(s.t.behind_ms(), 0);
    }

    #[test]
    fn without_a_monotonic_clock_the_timeline_stands_still_until_the_wall_clock_passes_it() {
        // A clock whose monotonic reading is its wall reading (the trait's
        // default) cannot tell a step from time passing.
        let t = Timeline::new();
        let read = |wall: i64| t.now(wall, wall * MS);
        assert_eq!(read(100_000), 100_000);
        assert_eq!(read(40_000), 100_000);
        assert_eq!(t.behind_ms(), 60_000);
        assert_eq!(read(99_999), 100_000);
        assert_eq!(read(100_001), 100_001);
        assert_eq!(t.behind_ms(), 0);
    }

    #[test]
    fn a_timeline_read_by_many_threads_never_runs_backwards_for_any_of_them() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let t = Arc::new(Timeline::new());
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (clock, t) = (clock.clone(), t.clone());
                std::thread::spawn(move || {
                    let mut last = i64::MIN;
                    for _ in 0..20_000 {
                        let now = t.now(clock.now_millis(), clock.monotonic_nanos());
                        assert!(now >= last, "{now} after {last}");
                        last = now;
                    }
                })
            })
            .collect();
        for i in 0..2_000 {
            clock.advance(Duration::from_millis(3));
            if i % 500 == 250 {
                clock.step(-60_000);
            } else if i % 500 == 499 {
                clock.step(60_000);
            }
        }
        for r in readers {
            r.join().unwrap();
        }
    }

    #[test]
    fn a_manual_clock_advances_wall_and_monotonic_time_and_steps_the_wall_clock_alone() {
        let c = ManualClock::new(10_000);
        c.advance(Duration::from_millis(1_500));
        assert_eq!((c.now_millis(), c.monotonic_nanos()), (11_500, 11_500 * MS));
        c.step(-5_000);
        assert_eq!((c.now_millis(), c.monotonic_nanos()), (6_500, 11_500 * MS));
        c.set(20_000);
        assert_eq!((c.now_millis(), c.monotonic_nanos()), (20_000, 11_500 * MS));
        c.advance(Duration::from_micros(2_500));
        assert_eq!(c.now_millis(), 20_002);
        assert_eq!(c.monotonic_nanos(), 11_502_500_000);
    }
}
