//! The recording path: value checks (name and tags are validated by the
//! series table, only for a new series), in-place aggregation of counters and
//! gauges in the series table, sample rates, and the bounded queue of
//! timer and histogram samples (every drop counted).

use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::TrySendError;
use metrics_protocol::validate;
use metrics_protocol::{DropReason, Tags};

use crate::{Kind, StatsdMetrics, format, sender};

impl StatsdMetrics {
    pub(crate) fn render(&self, name: &str, tags: &[(&str, &str)]) -> format::Rendered {
        let c = &self.shared.config;
        format::render(
            &c.prefix,
            name,
            tags,
            &c.common_tags,
            c.flavor,
            c.fold_tags_into_name,
        )
    }

    pub(crate) fn record(&self, kind: Kind, name: &str, value: f64, tags: Tags<'_>) {
        let outcome = (|| {
            if self.shared.closed.load(Ordering::Relaxed) {
                return Err(DropReason::SendFailed);
            }
            if kind == Kind::Counter {
                validate::check_counter_increment(value)?;
            } else {
                validate::check_value(value)?;
            }
            // A timer line must not be negative (the daemon rejects it);
            // the wire type decides what goes out as one.
            if value < 0.0 && kind.wire(self.shared.config.flavor) == "ms" {
                return Err(DropReason::InvalidValue);
            }
            let series_kind = if kind == Kind::GaugeDelta {
                Kind::Gauge
            } else {
                kind
            };
            let table = &self.shared.table;
            let render = |n: &str, t: &[(&str, &str)]| self.render(n, t);
            // Counters and gauges: aggregate in place, under the shard's read lock.
            if self.shared.config.combine_counters
                && matches!(kind, Kind::Counter | Kind::Gauge | Kind::GaugeDelta)
            {
                table.with(series_kind, name, tags, render, |f| {
                    match kind {
                        Kind::Counter => f.entry.add_counter(value),
                        Kind::Gauge => f.entry.set_gauge(value),
                        _ => f.entry.adjust_gauge(value),
                    }
                    f.mark_dirty();
                })?;
                return Ok(());
            }
            let rate = match kind {
                Kind::Timer => self.shared.config.timer_sample_rate,
                Kind::Histogram => self.shared.config.histogram_sample_rate,
                _ => 1.0,
            };
            // The table validates the name and tags only for a new series (a
            // match with an existing one proves them valid), before the
            // sampling draw, so that invalid input is counted even when it
            // would have been sampled out.
            let series = table.with(series_kind, name, tags, render, |f| {
                (rate >= 1.0 || sampled(rate)).then(|| f.entry.clone())
            })?;
            let Some(series) = series else {
                return Ok(()); // sampled out: the daemon scales by 1/rate
            };
            match self.queue.try_send(sender::Sample {
                series,
                value,
                rate,
                op: kind,
            }) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(DropReason::QueueFull),
                Err(TrySendError::Disconnected(_)) => Err(DropReason::SendFailed),
            }
        })();
        if let Err(reason) = outcome {
            self.shared.drops.record(reason);
        }
    }
}

/// A cheap per-thread random draw for sample rates.
fn sampled(rate: f64) -> bool {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::thread::current().id().hash(&mut h);
            Instant::now().hash(&mut h);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < rate
    })
}
