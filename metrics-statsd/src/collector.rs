//! The protocol's traits for [`StatsdMetrics`]: the recording calls,
//! flush and health; timers and outcomes (sent as samples); and the query
//! traits, which StatsD does not answer.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use metrics_kit::with_outcome_counter;
use metrics_protocol::system::{ExportFormat, MetricSummary, MetricValue, MetricsAggregator};
use metrics_protocol::{
    BackendHealth, HealthStatus, MetricCollector, MetricType, MetricsError, PerformanceTimer,
    SuccessFailureTracker, Tags, TimingStats,
};

use crate::{BACKEND, Kind, StatsdMetrics, sender};

fn unsupported(operation: &'static str) -> MetricsError {
    MetricsError::Unsupported {
        operation,
        backend: BACKEND,
    }
}

impl MetricCollector for StatsdMetrics {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(Kind::Counter, name, value, tags);
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(Kind::Gauge, name, value, tags);
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.record(Kind::GaugeDelta, name, delta, tags);
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(Kind::Histogram, name, value, tags);
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.record(Kind::Timer, name, duration.as_secs_f64() * 1e3, tags);
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
    metrics_kit::running_timer_methods!(|s| &s.timers, &s.shared.drops);

    fn get_timing_stats(
        &self,
        _name: &str,
        _window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        Err(unsupported("get_timing_stats"))
    }
}

impl SuccessFailureTracker for StatsdMetrics {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        with_outcome_counter(operation, None, metadata, |name, tags| {
            self.record(Kind::Counter, name, 1.0, tags)
        });
    }

    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        with_outcome_counter(operation, Some(error_type), metadata, |name, tags| {
            self.record(Kind::Counter, name, 1.0, tags)
        });
    }

    fn get_success_rate(&self, _op: &str, _w: Option<Duration>) -> Result<f64, MetricsError> {
        Err(unsupported("get_success_rate"))
    }

    fn get_failure_breakdown(
        &self,
        _op: &str,
        _w: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        Err(unsupported("get_failure_breakdown"))
    }
}

impl MetricsAggregator for StatsdMetrics {
    fn get_metric_summary(
        &self,
        _name: &str,
        _w: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        Err(unsupported("get_metric_summary"))
    }
    fn get_metrics_by_tag<'a>(&self, _filter: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("get_metrics_by_tag"))
    }
    fn export_metrics(&self, _format: ExportFormat) -> Result<String, MetricsError> {
        Err(unsupported("export_metrics"))
    }
    fn get_top_metrics(
        &self,
        _t: MetricType,
        _limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("get_top_metrics"))
    }
}
