//! The background poller: one poll-and-publish per interval, on a thread
//! of its own, or (feature `tokio`) as a task on a runtime the monitor was
//! given, each poll on that runtime's blocking pool.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics_protocol::MetricsError;

use crate::monitor::Shared;

/// Name of the poller thread (at most 15 bytes: what Linux shows).
pub(crate) const THREAD_NAME: &str = "metrics-poller";

/// What the poller did so far, over the monitor's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollStats {
    /// Polls run (each one `publish_once`), whatever their outcome.
    pub polls: u64,
    /// Polls in which some reading failed (the rest was still published).
    pub failures: u64,
    /// Polls that panicked (in sysinfo or in the collector); caught,
    /// logged, and the next poll runs as usual.
    pub panics: u64,
}

/// Counters behind [`PollStats`].
#[derive(Debug, Default)]
pub(crate) struct StatCounters {
    polls: AtomicU64,
    failures: AtomicU64,
    panics: AtomicU64,
}

impl StatCounters {
    pub(crate) fn get(&self) -> PollStats {
        PollStats {
            polls: self.polls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
        }
    }
}

/// A running poller.
pub(crate) enum Poller {
    /// On its own thread: dropping `stop` wakes it at once.
    Thread {
        stop: Sender<()>,
        handle: JoinHandle<()>,
    },
    /// A task on a runtime; aborted to stop (a poll already on the
    /// blocking pool finishes, its result is still counted).
    #[cfg(feature = "tokio")]
    Task(tokio::task::JoinHandle<()>),
}

impl Poller {
    /// Spawns the thread; it polls at once, then every `interval`.
    pub(crate) fn spawn(shared: Arc<Shared>, interval: Duration) -> Result<Poller, MetricsError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || run(&shared, interval, &stopped))
            .map_err(|e| MetricsError::io("spawning the resource poller thread", e))?;
        Ok(Poller::Thread { stop, handle })
    }

    /// Spawns the polling task on `runtime`; it polls at once, then every
    /// `interval`, each poll on the runtime's blocking pool.
    #[cfg(feature = "tokio")]
    pub(crate) fn spawn_on(
        runtime: &tokio::runtime::Handle,
        shared: Arc<Shared>,
        interval: Duration,
    ) -> Poller {
        let blocking = runtime.clone();
        Poller::Task(runtime.spawn(async move {
            tracing::debug!(?interval, "resource poller task started");
            let mut ticks = tokio::time::interval(interval);
            // Fell behind (a slow poll, a suspended machine): skip, do not burst.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                let shared = shared.clone();
                // A panic is caught inside `poll`; a join error means the
                // runtime is shutting down.
                if blocking
                    .spawn_blocking(move || poll(&shared))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }))
    }

    /// Whether the poller is still running.
    pub(crate) fn is_running(&self) -> bool {
        match self {
            Poller::Thread { handle, .. } => !handle.is_finished(),
            #[cfg(feature = "tokio")]
            Poller::Task(task) => !task.is_finished(),
        }
    }

    /// Stops the poller: wakes and joins the thread, or aborts the task.
    pub(crate) fn stop(self) {
        match self {
            Poller::Thread { stop, handle } => {
                drop(stop);
                if handle.join().is_err() {
                    tracing::error!("the resource poller thread panicked outside a poll");
                }
            }
            #[cfg(feature = "tokio")]
            Poller::Task(task) => task.abort(),
        }
    }
}

fn run(shared: &Shared, interval: Duration, stopped: &mpsc::Receiver<()>) {
    tracing::debug!(?interval, "resource poller started");
    let mut next = Instant::now();
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            // A message or a dropped sender: stop.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
        poll(shared);
        next += interval;
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow poll, a suspended machine): skip, do not burst.
            next = now + interval;
        }
    }
    tracing::debug!("resource poller stopped");
}

/// One poll, with a panic caught and counted.
fn poll(shared: &Shared) {
    shared.stats.polls.fetch_add(1, Ordering::Relaxed);
    match catch_unwind(AssertUnwindSafe(|| shared.publish_once())) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            shared.stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%err, "resource poll incomplete");
        }
        Err(panic) => {
            shared.stats.panics.fetch_add(1, Ordering::Relaxed);
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            tracing::error!(panic = %msg, "resource poll panicked; polling continues");
        }
    }
}
