//! The agent's lifecycle: the aggregation ticker's loop, and the shutdown
//! that stops the poller and the ticker, flushes partial batches, closes
//! the streams and flushes every backend (on request, or when the last
//! clone is dropped).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use metrics_protocol::{MetricCollector, MetricsError};

use super::{AgentInner, TICK};
use crate::aggregate::AggregationSet;

/// The aggregation ticker: every [`TICK`], closes the batches that are
/// over, until `stopped` is set or the set is gone.
pub(super) async fn tick_loop(set: Weak<AggregationSet>, stopped: Arc<Mutex<bool>>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let stopped = stopped.lock();
        if *stopped {
            return;
        }
        let Some(set) = set.upgrade() else {
            return;
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| set.tick()));
        if outcome.is_err() {
            tracing::error!("an aggregation tick panicked; ticking goes on");
        }
    }
}

pub(super) fn shut_down_error(what: &str) -> MetricsError {
    MetricsError::InvalidArgument(format!("{what}: the metrics system is shut down"))
}

impl Drop for AgentInner {
    fn drop(&mut self) {
        if !self.shut.load(Ordering::SeqCst)
            && let Err(e) = shutdown_inner(self)
        {
            tracing::warn!(error = %e, "metrics shutdown on drop failed");
        }
    }
}

/// Stops the poller and the ticker, flushes partial aggregation batches,
/// closes streams and flushes every backend. The first error is returned;
/// every step runs anyway.
pub(super) fn shutdown_inner(inner: &AgentInner) -> Result<(), MetricsError> {
    let _guard = inner.shutdown_lock.lock();
    if inner.shut.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let rec = &inner.rec;
    if let Some(m) = &inner.monitor {
        m.stop_resource_monitoring();
    }
    if let Some(t) = inner.ticker.lock().take() {
        // Waits for a tick in progress; none starts after.
        *t.stopped.lock() = true;
        t.task.abort();
    }
    let flushed = rec.aggregations.flush_partial();
    tracing::debug!(results = flushed, "partial aggregation batches flushed");
    rec.hub.close();
    let mut first = None;
    if let Some(m) = &rec.memory
        && let Err(e) = m.flush()
    {
        first.get_or_insert(e);
    }
    if let Some(s) = &rec.statsd
        && let Err(e) = s.shutdown()
    {
        tracing::warn!(error = %e, "StatsD shutdown failed");
        first.get_or_insert(e);
    }
    first.map_or(Ok(()), Err)
}
