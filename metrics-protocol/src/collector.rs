//! [`MetricCollector`]: recording counters, gauges, histograms and timers.

use std::time::{Duration, Instant};

use crate::error::MetricsError;
use crate::health::BackendHealth;
use crate::instruments::{Counter, Gauge, Histogram, Timer};
use crate::types::{MetricType, MetricUnit, Tags};

/// Records metrics. The trait every library instruments against.
///
/// # For callers
///
/// - Recording never fails and never panics: a sample that breaks the
///   [validation rules](crate::validate) is dropped whole and counted in the
///   backend's [`health`](MetricCollector::health).
/// - Tags are a borrowed slice (`&[("k", "v")]`, `&[]` for none); their order
///   does not matter.
/// - For a series recorded on a hot path, bind a handle once with
///   [`InstrumentExt`](crate::InstrumentExt) and record through it.
/// - A library usually holds a [`Metrics`](crate::Metrics) handle, which
///   records through this trait and also times and tracks outcomes.
///
/// ```
/// use metrics_protocol::{CollectorExt, MetricCollector, NoopMetrics};
///
/// fn checkout(metrics: &dyn MetricCollector, items: usize, basket_eur: f64) {
///     metrics.increment("checkout.started", &[("store", "eu")]);
///     metrics.record_histogram("checkout.items", items as f64, &[]);
///     metrics.record_gauge("checkout.last_basket_eur", basket_eur, &[]);
/// }
/// checkout(&NoopMetrics, 3, 42.5);
/// ```
///
/// # For implementors
///
/// - Be cheap and non-blocking: no I/O on the caller's thread, no global lock.
/// - Apply the rules of [`crate::validate`] (use its functions) so every
///   backend accepts exactly the same inputs, and count every drop.
/// - Override `register_*` to hand out handles that write to a series'
///   storage directly; the defaults return `None` and handles then fall back
///   to the by-name methods.
pub trait MetricCollector: Send + Sync {
    /// Adds `value` (finite, not negative) to a counter.
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);

    /// Sets a gauge to `value` (finite).
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);

    /// Adds `delta` (finite, may be negative) to a gauge.
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>);

    /// Records one sample (finite) of a distribution.
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>);

    /// Records one duration of a timer.
    ///
    /// A [`Duration`] carries both the number and its unit. Convert with `Duration::from_secs_f64` or
    /// [`MetricUnit::convert`](crate::MetricUnit::convert) first.
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>);

    /// A handle that writes to the counter series directly, if the backend
    /// has one. Callers use [`InstrumentExt::counter`](crate::InstrumentExt::counter).
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        let _ = (name, tags);
        None
    }

    /// A handle that writes to the gauge series directly, if the backend has one.
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        let _ = (name, tags);
        None
    }

    /// A handle that writes to the histogram series directly, if the backend has one.
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        let _ = (name, tags);
        None
    }

    /// A handle that writes to the timer series directly, if the backend has one.
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        let _ = (name, tags);
        None
    }

    /// Describes a metric: its kind, unit and a one-line help text, for the
    /// exports that carry them (Prometheus `# HELP`, OpenMetrics `# UNIT`).
    /// Recording does not need it; a backend may keep it or ignore it. The
    /// last description of a name wins.
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        let _ = (name, kind, unit, description);
    }

    /// Pushes out anything buffered (StatsD datagrams, ...) and waits,
    /// bounded, until it is handed to the OS. In-memory backends have
    /// nothing to flush.
    fn flush(&self) -> Result<(), MetricsError> {
        Ok(())
    }

    /// What this collector (or each collector behind it) reports about
    /// itself: drops by reason, queue depths, errors.
    fn health(&self) -> Vec<BackendHealth> {
        Vec::new()
    }
}

/// Conveniences on every collector, written once on top of the five
/// recording methods: a backend or a mock sees them as the calls they make.
///
/// ```
/// use metrics_protocol::{CollectorExt, MetricCollector, NoopMetrics};
/// fn work(metrics: &dyn MetricCollector) -> u32 {
///     metrics.increment("work.started", &[]);
///     metrics.timed("work", &[], || 6 * 7)
/// }
/// assert_eq!(work(&NoopMetrics), 42);
/// ```
pub trait CollectorExt: MetricCollector {
    /// Adds one to the counter `name`: `record_counter(name, 1.0, tags)`.
    ///
    /// There is deliberately no `decrement`: a counter only goes up. For a
    /// value that goes up and down (requests in flight, open connections),
    /// use a gauge: [`adjust_gauge`](MetricCollector::adjust_gauge), or a
    /// bound [`Gauge`]'s `increment`/`decrement`.
    ///
    /// ```
    /// use metrics_protocol::{CollectorExt, NoopMetrics};
    /// NoopMetrics.increment("jobs.done", &[("queue", "email")]);
    /// ```
    #[inline]
    fn increment(&self, name: &str, tags: Tags<'_>) {
        self.record_counter(name, 1.0, tags);
    }

    /// Runs `f`, records how long it took into the timer `name`, and returns
    /// `f`'s result. Allocation-free: no timer table is involved.
    ///
    /// ```
    /// use metrics_protocol::{CollectorExt, NoopMetrics};
    /// let answer = NoopMetrics.timed("compute", &[], || 6 * 7);
    /// assert_eq!(answer, 42);
    /// ```
    fn timed<R>(&self, name: &str, tags: Tags<'_>, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let out = f();
        self.record_timer(name, start.elapsed(), tags);
        out
    }
}

impl<C: MetricCollector + ?Sized> CollectorExt for C {}

impl<C: MetricCollector + ?Sized> MetricCollector for std::sync::Arc<C> {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        (**self).record_counter(name, value, tags)
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        (**self).record_gauge(name, value, tags)
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        (**self).adjust_gauge(name, delta, tags)
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        (**self).record_histogram(name, value, tags)
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        (**self).record_timer(name, duration, tags)
    }
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        (**self).register_counter(name, tags)
    }
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        (**self).register_gauge(name, tags)
    }
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        (**self).register_histogram(name, tags)
    }
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        (**self).register_timer(name, tags)
    }
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        (**self).describe(name, kind, unit, description)
    }
    fn flush(&self) -> Result<(), MetricsError> {
        (**self).flush()
    }
    fn health(&self) -> Vec<BackendHealth> {
        (**self).health()
    }
}
