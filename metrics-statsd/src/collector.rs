//! The protocol's traits for [`StatsdMetrics`]: the one recording call,
//! bound handles, refusals, flush and health; and timers by id. StatsD is
//! write-only: it implements no query trait.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use metrics_protocol::backend::{
    self, BackendHealth, DropReason, HealthStatus, InstrumentFn, Measurement, Value,
};
use metrics_protocol::{
    Key, MetricCollector, MetricType, MetricsError, PerformanceTimer, Tags, TimerId,
};

use crate::{BACKEND, StatsdMetrics, sender};

impl MetricCollector for StatsdMetrics {
    #[inline]
    fn record(&self, m: &Measurement<'_>) {
        self.record_measurement(m);
    }

    /// Finds a series the table already holds by the borrowed name and
    /// tags (hashed, not checked: a match proves them valid); anything else
    /// takes the default path through a key.
    #[inline]
    fn record_by_name(&self, name: &str, tags: Tags<'_>, value: &Value) {
        if !self.record_existing(name, tags, value) {
            backend::record_with_key(self, name, tags, *value);
        }
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        self.bind_series(key, kind)
    }

    fn reject(&self, reason: DropReason) {
        self.shared.drops.record(reason);
    }

    fn flush(&self) -> Result<(), MetricsError> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = self.ctrl.send(sender::Ctrl::Flush(tx));
        rx.recv_timeout(Duration::from_millis(
            self.shared.config.shutdown_timeout_ms,
        ))
        .map_err(|_| {
            MetricsError::io(
                "flushing the StatsD sender",
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the sender did not answer"),
            )
        })
    }

    fn health(&self) -> Vec<BackendHealth> {
        let sh = &self.shared;
        let st = &sh.stats;
        let mut h = BackendHealth::healthy(BACKEND);
        h.dropped = sh.drops.snapshot();
        let reachable = st.reachable.load(Ordering::Relaxed);
        let alive = self
            .thread
            .lock()
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        let now = Instant::now();
        let last_error = st.last_error.lock().clone();
        for (k, v) in [
            ("series", sh.table.len() as f64),
            ("series_max", sh.config.max_series as f64),
            (
                "series_overflowed_samples",
                sh.table.overflowed.load(Ordering::Relaxed) as f64,
            ),
            (
                "series_evicted",
                sh.table.evicted.load(Ordering::Relaxed) as f64,
            ),
            ("queue_depth", self.queue.len() as f64),
            ("queue_capacity", sh.config.queue_capacity as f64),
            (
                "sent_datagrams",
                st.datagrams.load(Ordering::Relaxed) as f64,
            ),
            ("sent_lines", st.lines.load(Ordering::Relaxed) as f64),
            ("lost_lines", st.lost_lines.load(Ordering::Relaxed) as f64),
            (
                "retry_pending_samples",
                st.retry_pending.load(Ordering::Relaxed) as f64,
            ),
            ("send_errors", st.send_errors.load(Ordering::Relaxed) as f64),
            ("reachable", f64::from(u8::from(reachable))),
            ("sender_alive", f64::from(u8::from(alive))),
        ] {
            h.details.insert(k.into(), v);
        }
        h.overflowed_metrics = sh.table.overflow_names();
        if let Some((msg, at)) = &last_error {
            let age = now.saturating_duration_since(*at).as_secs_f64();
            h.details.insert("last_error_age_s".into(), age);
            h.message = Some(format!("last send error {age:.1} s ago: {msg}"));
        }
        // Degraded while drops, losses or errors are recent (the last ten
        // flush intervals); history stays in the counters and the message.
        let window = Duration::from_millis(sh.config.flush_interval_ms.saturating_mul(10));
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < window);
        let total = h.total_dropped() + st.lost_lines.load(Ordering::Relaxed);
        let drops_at = {
            let mut seen = sh.drops_seen.lock();
            if seen.0 != total {
                *seen = (total, Some(now));
            }
            seen.1
        };
        h.status = if !alive && !sh.closed.load(Ordering::Relaxed) || !reachable {
            HealthStatus::Unhealthy
        } else if recent(drops_at) || recent(last_error.map(|e| e.1)) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        vec![h]
    }
}

impl PerformanceTimer for StatsdMetrics {
    /// Starts a timer in the backend's bounded table; a timer evicted to
    /// make room is counted as `timer_evicted`.
    fn start_timer<'a>(&self, operation_name: &'a str, metadata: Tags<'a>) -> TimerId {
        self.timers
            .start_counted(operation_name, metadata, &self.shared.drops)
    }

    /// Records the duration (a timer sample) and the outcome (a
    /// `.success`/`.failure` counter) of a running timer.
    fn stop_timer(&self, timer_id: TimerId, success: bool) -> Result<Duration, MetricsError> {
        self.timers.stop_into(self, timer_id, success)
    }
}
