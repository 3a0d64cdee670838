//! Bound instruments that write straight into a series' storage.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_protocol::backend::{CounterFn, GaugeFn, HistogramFn, TimerFn};
use metrics_protocol::validate;
use metrics_protocol::{DropReason, MetricType, Tags};

use crate::registry::{Op, Refused, Series};
use crate::{MemoryMetrics, Shared};

/// A handle to one series, or (for a name or tags that break the rules) a
/// handle that counts every use as a drop.
pub(crate) enum Bound {
    Series {
        shared: Arc<Shared>,
        series: Arc<Series>,
    },
    Invalid {
        shared: Arc<Shared>,
        reason: Refused,
    },
}

impl Bound {
    #[inline]
    fn record(&self, value: f64, op: Op, check: impl Fn(f64) -> Result<(), DropReason>) {
        match self {
            Bound::Series { shared, series } => match check(value) {
                Ok(()) => series.record(shared.now_ms(), value, op, shared.keep_samples),
                Err(r) => shared.drops.record(r),
            },
            Bound::Invalid { shared, reason } => shared.refused(*reason),
        }
    }
}

impl Drop for Bound {
    /// Releases the pin, so idle expiry applies again once no handle lives.
    fn drop(&mut self) {
        if let Bound::Series { series, .. } = self {
            series.pins.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl CounterFn for Bound {
    fn increment(&self, value: f64) {
        self.record(value, Op::Add, validate::check_counter_increment);
    }
}

impl GaugeFn for Bound {
    fn set(&self, value: f64) {
        self.record(value, Op::Set, validate::check_value);
    }
    fn adjust(&self, delta: f64) {
        self.record(delta, Op::Adjust, validate::check_value);
    }
}

impl HistogramFn for Bound {
    fn record(&self, value: f64) {
        Bound::record(self, value, Op::Add, validate::check_value);
    }
}

impl TimerFn for Bound {
    fn record(&self, duration: Duration) {
        Bound::record(
            self,
            duration.as_secs_f64() * 1e3,
            Op::Add,
            validate::check_value,
        );
    }
}

impl MemoryMetrics {
    pub(crate) fn bind(&self, name: &str, tags: Tags<'_>, kind: MetricType) -> Arc<Bound> {
        let shared = self.shared.clone();
        // Validated by the registry when the series is created.
        let series = self.registry.get_arc(name, tags, kind);
        Arc::new(match series {
            Ok(series) => {
                series.pins.fetch_add(1, Ordering::AcqRel);
                Bound::Series { shared, series }
            }
            Err(reason) => Bound::Invalid { shared, reason },
        })
    }
}
