//! Bound instruments that write straight into a series' storage.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use metrics_protocol::backend::{DropReason, InstrumentFn, Value};
use metrics_protocol::{Key, MetricType};

use crate::registry::Series;
use crate::series::Stripes;
use crate::{MemoryMetrics, Shared};

/// A handle to one gauge, histogram or timer series. Values of another
/// kind (and outcomes, which are no series' values) are counted as
/// `type_mismatch` drops.
pub(crate) struct BoundSeries {
    shared: Arc<Shared>,
    series: Arc<Series>,
}

impl InstrumentFn for BoundSeries {
    #[inline]
    fn record(&self, value: Value) {
        // Never a counter series, so never an outcome (a counter's kind).
        if value.kind() == self.series.kind {
            self.series
                .record(self.shared.now_ms(), &value, self.shared.keep_samples);
        } else {
            self.shared.drops.record(DropReason::TypeMismatch);
        }
    }

    fn reject(&self, reason: DropReason) {
        self.shared.drops.record(reason);
    }
}

impl Drop for BoundSeries {
    /// Releases the pin, so idle expiry applies again once no handle lives.
    fn drop(&mut self) {
        self.series.pins.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A handle to one counter series: the hot path is the clock reading (one
/// atomic load of the running coarse clock when `SYSTEM_CLOCK`), the bin
/// check and one atomic add to the calling thread's stripe of the series
/// (threads incrementing one series write to different cache lines), each
/// slow case a call out of line. The clock choice is the type's, made when
/// the handle is bound (no branch on it per increment). The handle checked
/// the value already.
pub(crate) struct BoundCounter<const SYSTEM_CLOCK: bool> {
    series: Arc<Series>,
    /// The series' stripes (`series.stripes`), held here to skip a check
    /// per increment.
    stripes: Arc<Stripes>,
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

    /// A value that is no counter increment: counted, out of line.
    #[cold]
    #[inline(never)]
    fn mismatch(&self) {
        self.shared.drops.record(DropReason::TypeMismatch);
    }
}

impl<const SYSTEM_CLOCK: bool> InstrumentFn for BoundCounter<SYSTEM_CLOCK> {
    #[inline]
    fn record(&self, value: Value) {
        match value {
            Value::Counter(v) => self
                .series
                .add_counter_striped(self.now_ms(), v, &self.stripes),
            _ => self.mismatch(),
        }
    }

    fn reject(&self, reason: DropReason) {
        self.shared.drops.record(reason);
    }
}

impl<const SYSTEM_CLOCK: bool> Drop for BoundCounter<SYSTEM_CLOCK> {
    /// Releases the pin, so idle expiry applies again once no handle lives.
    fn drop(&mut self) {
        self.series.pins.fetch_sub(1, Ordering::AcqRel);
    }
}

impl MemoryMetrics {
    /// A handle to the series `key` of `kind`, pinned while it lives: a
    /// [`BoundCounter`] for a counter, else a [`BoundSeries`]. `None` when
    /// the series cannot be had (the name has another type, or is new past
    /// the name limit): the caller's handle then records by key, and each
    /// recording is dropped and counted as by name.
    pub(crate) fn bind_series(
        &self,
        key: &Key<'_>,
        kind: MetricType,
    ) -> Option<Arc<dyn InstrumentFn>> {
        if kind == MetricType::Rate {
            // Rates are derived, never recorded.
            return None;
        }
        let series = self.registry.series_arc(key, kind).ok()?;
        series.pins.fetch_add(1, Ordering::AcqRel);
        let shared = self.shared.clone();
        Some(if kind != MetricType::Counter {
            Arc::new(BoundSeries { shared, series })
        } else if self.shared.system_clock && crate::clock::coarse_clock_running() {
            // The coarse clock's thread never stops once running.
            let stripes = series.stripes();
            Arc::new(BoundCounter::<true> {
                series,
                stripes,
                shared,
            })
        } else {
            let stripes = series.stripes();
            Arc::new(BoundCounter::<false> {
                series,
                stripes,
                shared,
            })
        })
    }
}
