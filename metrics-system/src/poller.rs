//! The background poller thread: one poll-and-publish per interval.

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

/// A running poller: dropping `stop` wakes the thread at once.
pub(crate) struct Poller {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Poller {
    /// Spawns the thread; it polls at once, then every `interval`.
    pub(crate) fn spawn(shared: Arc<Shared>, interval: Duration) -> Result<Poller, MetricsError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || run(&shared, interval, &stopped))
            .map_err(|e| MetricsError::io("spawning the resource poller thread", e))?;
        Ok(Poller { stop, handle })
    }

    /// Whether the thread is still running.
    pub(crate) fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }

    /// Wakes the thread, and waits until it has exited.
    pub(crate) fn stop(self) {
        drop(self.stop);
        if self.handle.join().is_err() {
            tracing::error!("the resource poller thread panicked outside a poll");
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
