//! Registered health checks, run on the runtime's blocking pool with a
//! timeout and a panic guard, and the windowed error rate of the agent's
//! operations.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics_memory::Clock;
use metrics_protocol::app::HealthCheckResult;
use metrics_protocol::backend::HealthStatus;
use parking_lot::{Mutex, RwLock};

/// What one health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Healthy, degraded or unhealthy.
    pub status: HealthStatus,
    /// Why (expected for anything but healthy).
    pub message: Option<String>,
}

impl CheckOutcome {
    /// All is well.
    pub fn healthy() -> Self {
        CheckOutcome {
            status: HealthStatus::Healthy,
            message: None,
        }
    }

    /// Working, but close to a limit or losing data.
    pub fn degraded(message: impl Into<String>) -> Self {
        CheckOutcome {
            status: HealthStatus::Degraded,
            message: Some(message.into()),
        }
    }

    /// Not working.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        CheckOutcome {
            status: HealthStatus::Unhealthy,
            message: Some(message.into()),
        }
    }
}

/// A health check an application registers with the agent, as in the
/// usual service checks (database reachable, disk not full, ...).
///
/// # For implementors
///
/// `check` may block (it runs on the runtime's blocking pool) and may even
/// panic or hang:
/// a panic counts as unhealthy, and so does a check that has not answered
/// within the agent's `health.check_timeout_ms`. A check still running from
/// an earlier report is not started again; it is reported unhealthy until
/// it returns.
pub trait HealthCheck: Send + Sync {
    /// A short, unique name (`database`, `disk`).
    fn name(&self) -> &str;
    /// Looks and reports.
    fn check(&self) -> CheckOutcome;
}

/// A [`HealthCheck`] from a closure.
///
/// ```
/// use metrics_sdk::{CheckOutcome, FnCheck, HealthCheck};
/// let c = FnCheck::new("always-fine", CheckOutcome::healthy);
/// assert_eq!(c.name(), "always-fine");
/// assert_eq!(c.check(), CheckOutcome::healthy());
/// ```
pub struct FnCheck<F> {
    name: String,
    f: F,
}

impl<F: Fn() -> CheckOutcome + Send + Sync> FnCheck<F> {
    /// A check named `name` that calls `f`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnCheck {
            name: name.into(),
            f,
        }
    }
}

impl<F: Fn() -> CheckOutcome + Send + Sync> HealthCheck for FnCheck<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self) -> CheckOutcome {
        (self.f)()
    }
}

struct Registered {
    check: Arc<dyn HealthCheck>,
    running: Arc<AtomicBool>,
}

/// The registered checks of an agent.
pub struct HealthChecks {
    timeout: Duration,
    checks: RwLock<Vec<Registered>>,
    /// Checks run on its blocking pool. A check still running from an
    /// earlier report is not run again, so a hung check holds at most one
    /// of its threads, and a report waits at most the timeout.
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecks")
            .field("timeout", &self.timeout)
            .field("checks", &self.checks.read().len())
            .finish()
    }
}

impl HealthChecks {
    /// No checks yet; each will run on `runtime`'s blocking pool and get
    /// `timeout` to answer.
    pub fn new(timeout: Duration, runtime: tokio::runtime::Handle) -> Self {
        HealthChecks {
            timeout,
            checks: RwLock::new(Vec::new()),
            runtime,
        }
    }

    /// Adds a check.
    pub fn register(&self, check: Arc<dyn HealthCheck>) {
        self.checks.write().push(Registered {
            check,
            running: Arc::new(AtomicBool::new(false)),
        });
    }

    /// Number of checks.
    pub fn len(&self) -> usize {
        self.checks.read().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs every check on the runtime's blocking pool, and waits at most
    /// the timeout for all of them (on the caller's thread: call it from
    /// blocking code, not from an async task). The checks run one after
    /// another on one blocking thread; a check that holds it for over a
    /// quarter of the timeout (100 ms at most) leaves the rest to another,
    /// so a slow or hung check delays the others by no more than that.
    /// Results are in registration order.
    pub fn run_all(&self) -> Vec<HealthCheckResult> {
        let checks: Vec<(Arc<dyn HealthCheck>, Arc<AtomicBool>)> = self
            .checks
            .read()
            .iter()
            .map(|r| (r.check.clone(), r.running.clone()))
            .collect();
        let started = Instant::now();
        let deadline = started + self.timeout;
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut results: Vec<Option<HealthCheckResult>> = vec![None; checks.len()];
        // The checks to run now, in order; each claimed by one job.
        let mut queue = Vec::new();
        for (i, (check, running)) in checks.iter().enumerate() {
            if running.swap(true, Ordering::SeqCst) {
                results[i] = Some(result(
                    check.name().to_owned(),
                    CheckOutcome::unhealthy("still running from an earlier report (timed out)"),
                    Duration::ZERO,
                ));
                continue;
            }
            queue.push((i, check.clone(), Running(running.clone())));
        }
        // One blocking job runs the checks one after another; while a
        // check keeps it longer than `stall`, another job takes the rest,
        // so a slow or hung check delays no other by more than that. Quick
        // checks (the usual case) take one thread per report, not one each.
        let stall = (self.timeout / 4).min(STALL);
        let jobs = Arc::new(CheckQueue {
            queue: Mutex::new(queue.into_iter()),
        });
        let spawn_job = || {
            let (jobs, tx) = (jobs.clone(), tx.clone());
            // The handle is not awaited: the job reports on the channel,
            // and one that outlives the timeout is left to finish.
            drop(self.runtime.spawn_blocking(move || jobs.run(&tx)));
        };
        spawn_job();
        while results.iter().any(Option::is_none) {
            let wait = deadline.min(Instant::now() + stall);
            match rx.recv_deadline(wait) {
                Ok((i, outcome, took)) => {
                    let name = checks[i].0.name().to_owned();
                    let outcome = match outcome {
                        Ok(o) => o,
                        Err(msg) => CheckOutcome::unhealthy(format!("panicked: {msg}")),
                    };
                    results[i] = Some(result(name, outcome, took));
                }
                Err(_) if Instant::now() >= deadline => break,
                // Stalled: a job is held by a check; another takes the
                // checks not started yet (if any).
                Err(_) if jobs.has_more() => spawn_job(),
                Err(_) => {}
            }
        }
        drop(tx);
        results
            .into_iter()
            .zip(&checks)
            .map(|(r, (check, _))| {
                r.unwrap_or_else(|| {
                    tracing::warn!(check = check.name(), timeout = ?self.timeout, "health check timed out");
                    result(
                        check.name().to_owned(),
                        CheckOutcome::unhealthy(format!("timed out after {:?}", self.timeout)),
                        self.timeout,
                    )
                })
            })
            .collect()
    }
}

/// How long a report lets one check hold the job running the checks
/// before another job takes the ones after it (at most a quarter of the
/// timeout).
const STALL: Duration = Duration::from_millis(100);

/// The checks of one report not started yet, shared by the blocking jobs
/// running them.
struct CheckQueue {
    queue: Mutex<std::vec::IntoIter<Queued>>,
}

/// A check waiting for a job: its index, the check, its running mark.
type Queued = (usize, Arc<dyn HealthCheck>, Running);

/// What a job sends per check: its index, its outcome (or panic message)
/// and how long it took.
type CheckSent = (usize, Result<CheckOutcome, String>, Duration);

impl CheckQueue {
    /// Runs checks, each as soon as this job is free, until none is left.
    fn run(&self, tx: &crossbeam_channel::Sender<CheckSent>) {
        loop {
            let Some((i, check, running)) = self.queue.lock().next() else {
                return;
            };
            let t = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| check.check()));
            drop(running);
            let _ = tx.send((i, outcome.map_err(panic_message), t.elapsed()));
        }
    }

    fn has_more(&self) -> bool {
        self.queue.lock().len() > 0
    }
}

/// A check's running mark, cleared on drop.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn result(name: String, o: CheckOutcome, duration: Duration) -> HealthCheckResult {
    let message = match (o.status, o.message) {
        (HealthStatus::Healthy, m) => m,
        (_, Some(m)) => Some(m),
        (_, None) => Some("(the check gave no reason)".into()),
    };
    HealthCheckResult {
        name,
        status: o.status,
        message,
        duration,
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Successes and failures of every operation, in bins over a sliding
/// window, for the error rate of a health report.
pub struct ErrorRateWindow {
    clock: Arc<dyn Clock>,
    span_ms: i64,
    bin_ms: i64,
    bins: Mutex<VecDeque<(i64, u64, u64)>>,
}

impl std::fmt::Debug for ErrorRateWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorRateWindow")
            .field("span_ms", &self.span_ms)
            .finish()
    }
}

impl ErrorRateWindow {
    /// Sixty bins over `span`.
    pub fn new(span: Duration, clock: Arc<dyn Clock>) -> Self {
        let span_ms = (span.as_millis() as i64).max(1);
        ErrorRateWindow {
            clock,
            span_ms,
            bin_ms: (span_ms / 60).max(1),
            bins: Mutex::new(VecDeque::new()),
        }
    }

    /// Counts one outcome now.
    pub fn record(&self, success: bool) {
        let now = self.clock.now_millis();
        let start = now.div_euclid(self.bin_ms) * self.bin_ms;
        let mut bins = self.bins.lock();
        match bins.back_mut() {
            Some(b) if b.0 >= start => {
                if success {
                    b.1 += 1
                } else {
                    b.2 += 1
                }
            }
            _ => bins.push_back((start, u64::from(success), u64::from(!success))),
        }
        let oldest = now - self.span_ms - self.bin_ms;
        while bins.front().is_some_and(|b| b.0 < oldest) {
            bins.pop_front();
        }
    }

    /// Successes and failures within the window (bins that started after
    /// now minus the span).
    pub fn counts(&self) -> (u64, u64) {
        let since = self.clock.now_millis() - self.span_ms;
        self.bins
            .lock()
            .iter()
            .filter(|b| b.0 >= since)
            .fold((0, 0), |(s, f), b| (s + b.1, f + b.2))
    }

    /// Failures / (successes + failures) in the window; 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        let (s, f) = self.counts();
        error_rate(s, f)
    }
}

/// `failures / (successes + failures)`; 0 when there were none.
pub fn error_rate(successes: u64, failures: u64) -> f64 {
    let total = successes + failures;
    if total == 0 {
        0.0
    } else {
        failures as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_memory::ManualClock;

    #[test]
    fn failing_panicking_and_hanging_checks_do_not_stop_the_others() {
        let rt = crate::test_util::test_runtime();
        let checks = HealthChecks::new(Duration::from_millis(300), rt.handle().clone());
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        checks.register(Arc::new(FnCheck::new("ok", CheckOutcome::healthy)));
        checks.register(Arc::new(FnCheck::new("db", || {
            CheckOutcome::unhealthy("connection refused")
        })));
        checks.register(Arc::new(FnCheck::new("disk", || {
            CheckOutcome::degraded("91% full")
        })));
        checks.register(Arc::new(FnCheck::new("boom", || -> CheckOutcome {
            panic!("kaboom")
        })));
        checks.register(Arc::new(FnCheck::new("hang", move || {
            // Blocks until the test drops the sender: far past the timeout.
            let _ = release_rx.recv();
            CheckOutcome::healthy()
        })));
        let r = checks.run_all();
        let by = |n: &str| r.iter().find(|c| c.name == n).unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(by("ok").status, HealthStatus::Healthy);
        assert_eq!(by("db").status, HealthStatus::Unhealthy);
        assert_eq!(by("db").message.as_deref(), Some("connection refused"));
        assert_eq!(by("disk").status, HealthStatus::Degraded);
        assert_eq!(by("boom").status, HealthStatus::Unhealthy);
        assert!(by("boom").message.as_deref().unwrap().contains("kaboom"));
        assert_eq!(by("hang").status, HealthStatus::Unhealthy);
        assert!(by("hang").message.as_deref().unwrap().contains("timed out"));
        // While it still hangs, a new report does not start it again.
        let again = checks.run_all();
        assert!(
            again[4]
                .message
                .as_deref()
                .unwrap()
                .contains("still running")
        );
        assert_eq!(again[0].status, HealthStatus::Healthy);
        // Once it returns, it is run (and healthy) again.
        drop(release_tx); // from now on `recv` returns at once
        let mut tries = 0;
        loop {
            let r = checks.run_all();
            if r[4].status == HealthStatus::Healthy {
                break;
            }
            tries += 1;
            assert!(tries < 100, "the released check never came back");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Quick checks share a blocking thread instead of one thread each: a
    /// report costs the application's runtime one thread, not one per
    /// check.
    #[test]
    fn quick_checks_share_one_blocking_thread() {
        let rt = crate::test_util::test_runtime();
        let checks = HealthChecks::new(Duration::from_secs(5), rt.handle().clone());
        let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
        for i in 0..8 {
            let seen = seen.clone();
            checks.register(Arc::new(FnCheck::new(format!("c{i}"), move || {
                seen.lock().insert(std::thread::current().id());
                // Long enough that jobs started at once would overlap.
                std::thread::sleep(Duration::from_millis(2));
                CheckOutcome::healthy()
            })));
        }
        let r = checks.run_all();
        assert!(r.iter().all(|c| c.status == HealthStatus::Healthy), "{r:?}");
        // One thread, or a few where a loaded machine stalled one check
        // for 100 ms; never one per check.
        let threads = seen.lock().len();
        assert!(threads <= 3, "{threads} threads for 8 checks");
    }

    #[test]
    fn a_non_healthy_check_without_a_message_gets_one() {
        let rt = crate::test_util::test_runtime();
        let checks = HealthChecks::new(Duration::from_secs(5), rt.handle().clone());
        checks.register(Arc::new(FnCheck::new("mute", || CheckOutcome {
            status: HealthStatus::Degraded,
            message: None,
        })));
        assert!(checks.run_all()[0].message.is_some());
    }

    #[test]
    fn error_rate_slides_with_the_clock() {
        let clock = Arc::new(ManualClock::new(0));
        let w = ErrorRateWindow::new(Duration::from_secs(60), clock.clone());
        assert_eq!(w.error_rate(), 0.0);
        for _ in 0..3 {
            w.record(true);
        }
        w.record(false);
        assert_eq!(w.counts(), (3, 1));
        assert_eq!(w.error_rate(), 0.25);
        clock.advance(Duration::from_secs(30));
        w.record(false);
        assert_eq!(w.counts(), (3, 2));
        clock.advance(Duration::from_secs(45));
        assert_eq!(w.counts(), (0, 1), "the first outcomes aged out");
        assert_eq!(w.error_rate(), 1.0);
    }
}
