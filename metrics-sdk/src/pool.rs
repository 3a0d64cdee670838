//! [`WorkerPool`]: a few long-lived threads for the agent's blocking work
//! (health checks, exports, a resource poll on demand), instead of one
//! new OS thread per call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};
use metrics_protocol::MetricsError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads taking jobs from a bounded queue. A job that
/// panics is caught (its thread goes on); a full queue refuses the job
/// rather than growing. Dropping the pool lets its threads finish the
/// queued jobs and exit.
pub(crate) struct WorkerPool {
    tx: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// `size` threads named `name`, and room for `queue` waiting jobs.
    pub fn new(name: &str, size: usize, queue: usize) -> Result<Self, MetricsError> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue.max(1));
        let mut threads = Vec::new();
        for i in 0..size.max(1) {
            let rx = rx.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::warn!("a job of the agent's worker pool panicked");
                        }
                    }
                })
                .map_err(|e| MetricsError::io(format!("starting the {name} pool"), e))?;
            threads.push(t);
        }
        Ok(WorkerPool {
            tx: Some(tx),
            threads,
        })
    }

    /// Queues `job`; an error when the queue is full.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), MetricsError> {
        let Some(tx) = &self.tx else {
            return Err(MetricsError::InvalidArgument(
                "the worker pool is closed".into(),
            ));
        };
        tx.try_send(Box::new(job)).map_err(|e| match e {
            TrySendError::Full(_) => MetricsError::InvalidArgument(
                "too many jobs are waiting for the worker pool".into(),
            ),
            TrySendError::Disconnected(_) => {
                MetricsError::InvalidArgument("the worker pool is closed".into())
            }
        })
    }
}

/// Threads of the process-wide pool (exports, resource polls on demand).
const SHARED_THREADS: usize = 4;

/// The process-wide pool for the agent's blocking work other than health
/// checks, started on first use.
pub(crate) fn shared() -> Result<&'static WorkerPool, MetricsError> {
    static POOL: std::sync::OnceLock<Result<WorkerPool, String>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        WorkerPool::new("metrics-work", SHARED_THREADS, 256).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| MetricsError::io("starting the worker pool", std::io::Error::other(e.clone())))
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.tx = None;
        // Threads stuck in a job that never returns are left behind rather
        // than blocking the drop.
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jobs_run_a_panic_is_survived_and_a_full_queue_refuses() {
        let pool = WorkerPool::new("test", 1, 2).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        pool.run(|| panic!("a bad job")).unwrap();
        let t = tx.clone();
        pool.run(move || t.send(1).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(1));
        // Block the only thread, fill the queue of 2, and the next is refused.
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        pool.run(move || {
            let _ = gate_rx.recv();
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut queued = 0;
        while pool.run(|| ()).is_ok() {
            queued += 1;
            assert!(queued <= 3, "the queue is bounded");
        }
        assert!(queued >= 1);
        drop(gate_tx);
    }
}
