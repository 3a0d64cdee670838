//! Bound instruments (see [`InstrumentExt`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collector::MetricCollector;
use crate::types::Tags;
use crate::validate::MAX_TAGS;

/// What a backend implements to record into one counter series, handed out
/// from [`MetricCollector::register_counter`] wrapped in a [`Counter`].
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use metrics_protocol::Counter;
/// use metrics_protocol::backend::CounterFn;
///
/// /// A series that counts whole increments in an atomic.
/// struct Cell(AtomicU64);
/// impl CounterFn for Cell {
///     fn increment(&self, value: f64) {
///         if value >= 0.0 && value.fract() == 0.0 {
///             self.0.fetch_add(value as u64, Ordering::Relaxed);
///         }
///     }
/// }
/// let cell = Arc::new(Cell(AtomicU64::new(0)));
/// let counter = Counter::from_arc(cell.clone());
/// counter.inc();
/// counter.increment(2.0);
/// assert_eq!(cell.0.load(Ordering::Relaxed), 3);
/// ```
pub trait CounterFn: Send + Sync {
    /// Adds `value` (validated by the backend: non-negative and finite).
    fn increment(&self, value: f64);
}

/// What a backend implements to record into one gauge series, wrapped in
/// a [`Gauge`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use metrics_protocol::Gauge;
/// use metrics_protocol::backend::GaugeFn;
///
/// struct Cell(Mutex<f64>);
/// impl GaugeFn for Cell {
///     fn set(&self, value: f64) { *self.0.lock().unwrap() = value; }
///     fn adjust(&self, delta: f64) { *self.0.lock().unwrap() += delta; }
/// }
/// let cell = Arc::new(Cell(Mutex::new(0.0)));
/// let gauge = Gauge::from_arc(cell.clone());
/// gauge.set(5.0);
/// gauge.decrement();
/// assert_eq!(*cell.0.lock().unwrap(), 4.0);
/// ```
pub trait GaugeFn: Send + Sync {
    /// Sets the gauge to `value`.
    fn set(&self, value: f64);
    /// Adds `delta` (negative to decrease) to the gauge.
    fn adjust(&self, delta: f64);
}

/// What a backend implements to record into one histogram series, wrapped
/// in a [`Histogram`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use metrics_protocol::Histogram;
/// use metrics_protocol::backend::HistogramFn;
///
/// struct Samples(Mutex<Vec<f64>>);
/// impl HistogramFn for Samples {
///     fn record(&self, value: f64) { self.0.lock().unwrap().push(value); }
/// }
/// let samples = Arc::new(Samples(Mutex::new(Vec::new())));
/// Histogram::from_arc(samples.clone()).record(1.5);
/// assert_eq!(*samples.0.lock().unwrap(), [1.5]);
/// ```
pub trait HistogramFn: Send + Sync {
    /// Records one sample.
    fn record(&self, value: f64);
}

/// What a backend implements to record into one timer series, wrapped in
/// a [`Timer`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use metrics_protocol::Timer;
/// use metrics_protocol::backend::TimerFn;
///
/// struct Durations(Mutex<Vec<Duration>>);
/// impl TimerFn for Durations {
///     fn record(&self, duration: Duration) { self.0.lock().unwrap().push(duration); }
/// }
/// let durations = Arc::new(Durations(Mutex::new(Vec::new())));
/// let timer = Timer::from_arc(durations.clone());
/// assert_eq!(timer.time(|| 7), 7);
/// assert_eq!(durations.0.lock().unwrap().len(), 1);
/// ```
pub trait TimerFn: Send + Sync {
    /// Records one duration.
    fn record(&self, duration: Duration);
}

/// A bound counter. Cheap to clone; all clones record into the same series.
#[derive(Clone)]
pub struct Counter(Arc<dyn CounterFn>);

/// A bound gauge. Cheap to clone; all clones record into the same series.
#[derive(Clone)]
pub struct Gauge(Arc<dyn GaugeFn>);

/// A bound histogram. Cheap to clone; all clones record into the same series.
#[derive(Clone)]
pub struct Histogram(Arc<dyn HistogramFn>);

/// A bound timer. Cheap to clone; all clones record into the same series.
#[derive(Clone)]
pub struct Timer(Arc<dyn TimerFn>);

impl Counter {
    /// Wraps a backend's series handle.
    pub fn from_arc(inner: Arc<dyn CounterFn>) -> Self {
        Counter(inner)
    }
    /// Adds `value`.
    #[inline]
    pub fn increment(&self, value: f64) {
        self.0.increment(value)
    }
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.increment(1.0)
    }
}

impl Gauge {
    /// Wraps a backend's series handle.
    pub fn from_arc(inner: Arc<dyn GaugeFn>) -> Self {
        Gauge(inner)
    }
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.set(value)
    }
    /// Adds `delta`.
    #[inline]
    pub fn adjust(&self, delta: f64) {
        self.0.adjust(delta)
    }
    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.0.adjust(1.0)
    }
    /// Subtracts one.
    #[inline]
    pub fn decrement(&self) {
        self.0.adjust(-1.0)
    }
}

impl Histogram {
    /// Wraps a backend's series handle.
    pub fn from_arc(inner: Arc<dyn HistogramFn>) -> Self {
        Histogram(inner)
    }
    /// Records one sample.
    #[inline]
    pub fn record(&self, value: f64) {
        self.0.record(value)
    }
}

impl Timer {
    /// Wraps a backend's series handle.
    pub fn from_arc(inner: Arc<dyn TimerFn>) -> Self {
        Timer(inner)
    }
    /// Records one duration.
    #[inline]
    pub fn record(&self, duration: Duration) {
        self.0.record(duration)
    }
    /// Runs `f`, records how long it took, and returns its result.
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let out = f();
        self.0.record(start.elapsed());
        out
    }
}

macro_rules! impl_debug {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(..)"))
            }
        }
    )*};
}
impl_debug!(Counter, Gauge, Histogram, Timer);

/// Handles for backends that do not override `register_*`: they keep the
/// name and tags and call the by-name methods.
pub(crate) struct ByName {
    collector: Arc<dyn MetricCollector>,
    name: String,
    tags: Vec<(String, String)>,
}

impl ByName {
    pub(crate) fn new(collector: Arc<dyn MetricCollector>, name: &str, tags: Tags<'_>) -> Self {
        ByName {
            collector,
            name: name.to_owned(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Calls `f` with the tags borrowed into a stack array (no allocation).
    /// More than `MAX_TAGS` tags are passed through as a too-long slice from
    /// the heap copy, so the backend drops and counts them as usual.
    #[inline]
    fn with_tags(&self, f: impl FnOnce(&dyn MetricCollector, &str, Tags<'_>)) {
        let mut buf: [(&str, &str); MAX_TAGS + 1] = [("", ""); MAX_TAGS + 1];
        let n = self.tags.len().min(MAX_TAGS + 1);
        for (slot, (k, v)) in buf.iter_mut().zip(&self.tags) {
            *slot = (k.as_str(), v.as_str());
        }
        f(&*self.collector, &self.name, &buf[..n]);
    }
}

impl CounterFn for ByName {
    fn increment(&self, value: f64) {
        self.with_tags(|c, n, t| c.record_counter(n, value, t));
    }
}

impl GaugeFn for ByName {
    fn set(&self, value: f64) {
        self.with_tags(|c, n, t| c.record_gauge(n, value, t));
    }
    fn adjust(&self, delta: f64) {
        self.with_tags(|c, n, t| c.adjust_gauge(n, delta, t));
    }
}

impl HistogramFn for ByName {
    fn record(&self, value: f64) {
        self.with_tags(|c, n, t| c.record_histogram(n, value, t));
    }
}

impl TimerFn for ByName {
    fn record(&self, duration: Duration) {
        self.with_tags(|c, n, t| c.record_timer(n, duration, t));
    }
}

/// Hands out bound instruments from an `Arc` of any collector: handles to
/// one series (a name and a tag set) that record without looking the series
/// up again, as Micrometer's stored meters, the `metrics` crate's `Counter`
/// and OpenTelemetry's bound instruments do. Keep one in a struct and record
/// through it on the hot path. ([`Metrics`](crate::Metrics) hands them out
/// too: [`Metrics::counter`](crate::Metrics::counter), ...)
///
/// ```
/// use std::sync::Arc;
/// use metrics_protocol::{InstrumentExt, MetricCollector, NoopMetrics};
///
/// let collector: Arc<dyn MetricCollector> = Arc::new(NoopMetrics);
/// let requests = collector.counter("http.requests", &[("method", "GET")]);
/// requests.increment(1.0);
/// let inflight = collector.gauge("http.inflight", &[]);
/// inflight.increment();
/// inflight.decrement();
/// ```
///
/// A backend that can write to a series' storage directly overrides
/// [`MetricCollector::register_counter`] (and the gauge, histogram and
/// timer siblings) and returns a handle over one of the
/// [`backend`](crate::backend) traits. For any other backend the handle
/// falls back to the by-name calls with the name and tags it keeps, so
/// every backend supports handles, and a mock sees the by-name calls.
///
/// Implemented for `Arc<dyn MetricCollector>` and `Arc<C>` for every concrete
/// collector `C`.
pub trait InstrumentExt {
    /// A counter bound to `name` and `tags`.
    fn counter(&self, name: &str, tags: Tags<'_>) -> Counter;
    /// A gauge bound to `name` and `tags`.
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Gauge;
    /// A histogram bound to `name` and `tags`.
    fn histogram(&self, name: &str, tags: Tags<'_>) -> Histogram;
    /// A timer bound to `name` and `tags`.
    fn timer(&self, name: &str, tags: Tags<'_>) -> Timer;
}

/// Binds through `collector`'s `register_*`, or falls back to the by-name calls.
pub(crate) fn bind_counter(c: &Arc<dyn MetricCollector>, name: &str, tags: Tags<'_>) -> Counter {
    c.register_counter(name, tags)
        .unwrap_or_else(|| Counter(Arc::new(ByName::new(c.clone(), name, tags))))
}

pub(crate) fn bind_gauge(c: &Arc<dyn MetricCollector>, name: &str, tags: Tags<'_>) -> Gauge {
    c.register_gauge(name, tags)
        .unwrap_or_else(|| Gauge(Arc::new(ByName::new(c.clone(), name, tags))))
}

pub(crate) fn bind_histogram(
    c: &Arc<dyn MetricCollector>,
    name: &str,
    tags: Tags<'_>,
) -> Histogram {
    c.register_histogram(name, tags)
        .unwrap_or_else(|| Histogram(Arc::new(ByName::new(c.clone(), name, tags))))
}

pub(crate) fn bind_timer(c: &Arc<dyn MetricCollector>, name: &str, tags: Tags<'_>) -> Timer {
    c.register_timer(name, tags)
        .unwrap_or_else(|| Timer(Arc::new(ByName::new(c.clone(), name, tags))))
}

impl InstrumentExt for Arc<dyn MetricCollector> {
    fn counter(&self, name: &str, tags: Tags<'_>) -> Counter {
        bind_counter(self, name, tags)
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Gauge {
        bind_gauge(self, name, tags)
    }
    fn histogram(&self, name: &str, tags: Tags<'_>) -> Histogram {
        bind_histogram(self, name, tags)
    }
    fn timer(&self, name: &str, tags: Tags<'_>) -> Timer {
        bind_timer(self, name, tags)
    }
}

impl<C: MetricCollector + 'static> InstrumentExt for Arc<C> {
    fn counter(&self, name: &str, tags: Tags<'_>) -> Counter {
        bind_counter(&(self.clone() as Arc<dyn MetricCollector>), name, tags)
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Gauge {
        bind_gauge(&(self.clone() as Arc<dyn MetricCollector>), name, tags)
    }
    fn histogram(&self, name: &str, tags: Tags<'_>) -> Histogram {
        bind_histogram(&(self.clone() as Arc<dyn MetricCollector>), name, tags)
    }
    fn timer(&self, name: &str, tags: Tags<'_>) -> Timer {
        bind_timer(&(self.clone() as Arc<dyn MetricCollector>), name, tags)
    }
}
