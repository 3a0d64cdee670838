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

/// A handle to one counter series: the hot path is the `+1` check, the
/// clock reading (one atomic load of the running coarse clock when
/// `SYSTEM_CLOCK`),
/// the bin check and one atomic add, each slow case a call out of line, so
/// the path needs no stack frame. The clock choice is the type's, made when
/// the handle is bound (no branch on it per increment).
pub(crate) struct BoundCounter<const SYSTEM_CLOCK: bool> {
    series: Arc<Series>,
    shared: Arc<Shared>,
}

impl<const SYSTEM_CLOCK: bool> BoundCounter<SYSTEM_CLOCK> {
    #[inline(always)]
    fn now_ms(&self) -> i64 {
        if SYSTEM_CLOCK {
            // The coarse clock's thread keeps the recording timeline.
            crate::clock::coarse_now_running_ms()
        } else {
            self.shared.now_ms()
        }
    }

    /// Any other increment: checked, out of line.
    #[inline(never)]
    fn increment_checked(&self, value: f64) {
        match validate::check_counter_increment(value) {
            Ok(()) => self.series.add_counter(self.now_ms(), value),
            Err(r) => self.shared.drops.record(r),
        }
    }
}

impl<const SYSTEM_CLOCK: bool> CounterFn for BoundCounter<SYSTEM_CLOCK> {
    #[inline]
    fn increment(&self, value: f64) {
        // `+1`, the usual increment, is valid: no check.
        if value == 1.0 {
            self.series.add_counter(self.now_ms(), 1.0);
        } else {
            self.increment_checked(value);
        }
    }
}

impl<const SYSTEM_CLOCK: bool> Drop for BoundCounter<SYSTEM_CLOCK> {
    /// Releases the pin, so idle expiry applies again once no handle lives.
    fn drop(&mut self) {
        self.series.pins.fetch_sub(1, Ordering::AcqRel);
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
    /// A counter handle: [`BoundCounter`] for a series, else a handle that
    /// counts every use as a drop.
    pub(crate) fn bind_counter(&self, name: &str, tags: Tags<'_>) -> Arc<dyn CounterFn> {
        match self.registry.get_arc(name, tags, MetricType::Counter) {
            Ok(series) => {
                series.pins.fetch_add(1, Ordering::AcqRel);
                let shared = self.shared.clone();
                // The coarse clock's thread never stops once running.
                if self.shared.system_clock && crate::clock::coarse_clock_running() {
                    Arc::new(BoundCounter::<true> { series, shared })
                } else {
                    Arc::new(BoundCounter::<false> { series, shared })
                }
            }
            Err(reason) => Arc::new(Bound::Invalid {
                shared: self.shared.clone(),
                reason,
            }),
        }
    }

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
