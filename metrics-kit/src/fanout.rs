//! [`Fanout`]: one backend that forwards every part of the protocol to several.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::backend::{CounterFn, GaugeFn, HistogramFn, TimerFn};
use metrics_protocol::{
    BackendHealth, Counter, Gauge, Histogram, InstrumentExt, MetricCollector, MetricType,
    MetricUnit, MetricsBackend, MetricsError, PerformanceTimer, SuccessFailureTracker, Tags, Timer,
    TimingStats,
};

use crate::{DropCounters, RunningTimers};

/// Forwards every record to each of its backends, with the same name,
/// value and tags: the memory backend for local queries and StatsD for the
/// fleet, say. It covers the whole recording side of the protocol:
///
/// - [`MetricCollector`]: every record, bound handles (each backend bound
///   once), descriptions; `flush` flushes all and returns the first error;
///   `health` lists every backend's report.
/// - [`SuccessFailureTracker`]: every outcome, with its tags.
/// - [`PerformanceTimer`]: `start_timer`/`stop_timer` through its own
///   bounded table, recording into every backend.
/// - Success-rate queries go to the backends in order; the first that does
///   not answer [`MetricsError::Unsupported`] answers. Other queries
///   (timing statistics, summaries, exports) belong to the backend that
///   keeps them: ask it directly.
///
/// ```
/// use std::sync::Arc;
/// use metrics_kit::Fanout;
/// use metrics_protocol::{MetricCollector, NoopMetrics};
///
/// let fanout = Fanout::new(vec![Arc::new(NoopMetrics), Arc::new(NoopMetrics)]);
/// fanout.record_counter("jobs.done", 1.0, &[("queue", "email")]);
/// assert_eq!(fanout.len(), 2);
/// ```
pub struct Fanout {
    backends: Vec<Arc<dyn MetricsBackend>>,
    timers: RunningTimers,
    drops: DropCounters,
}

/// Most timers a fan-out keeps running at once.
const RUNNING_TIMERS: usize = 10_000;

fn as_collector(b: &Arc<dyn MetricsBackend>) -> Arc<dyn MetricCollector> {
    b.clone()
}

impl Fanout {
    /// Forwards one call to every backend, in order.
    #[inline]
    fn each(&self, call: impl Fn(&Arc<dyn MetricsBackend>)) {
        self.backends.iter().for_each(call);
    }

    /// A fan-out to `backends`, in order.
    pub fn new(backends: Vec<Arc<dyn MetricsBackend>>) -> Self {
        Fanout {
            backends,
            timers: RunningTimers::new(RUNNING_TIMERS),
            drops: DropCounters::new(),
        }
    }

    /// Adds one more backend.
    pub fn with(mut self, backend: Arc<dyn MetricsBackend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// Number of backends.
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The backends, in order.
    pub fn backends(&self) -> &[Arc<dyn MetricsBackend>] {
        &self.backends
    }

    /// The first answer that is not `Unsupported`, else the last refusal.
    fn first_answer<T>(
        &self,
        operation: &'static str,
        mut ask: impl FnMut(&dyn MetricsBackend) -> Result<T, MetricsError>,
    ) -> Result<T, MetricsError> {
        let mut refusal = MetricsError::Unsupported {
            operation,
            backend: "fanout",
        };
        for b in &self.backends {
            match ask(&**b) {
                Err(e @ MetricsError::Unsupported { .. }) => refusal = e,
                answer => return answer,
            }
        }
        Err(refusal)
    }
}

/// Flushes every backend, all of them even when one fails: each failure is
/// logged, the first is returned. What a composite (a [`Fanout`], an
/// application's system) does in its own `flush`.
pub fn flush_all(backends: &[Arc<dyn MetricsBackend>]) -> Result<(), MetricsError> {
    let mut first = None;
    for b in backends {
        if let Err(e) = b.flush() {
            tracing::warn!(error = %e, "a backend failed to flush");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout::new(Vec::new())
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("backends", &self.backends.len())
            .field("running_timers", &self.timers.len())
            .finish()
    }
}

struct FanoutHandles<H>(Vec<H>);

impl<H> FanoutHandles<H> {
    /// One handle per backend, made by `bind` from the backend as a collector.
    fn bind(
        backends: &[Arc<dyn MetricsBackend>],
        bind: impl Fn(Arc<dyn MetricCollector>) -> H,
    ) -> Arc<Self> {
        Arc::new(FanoutHandles(
            backends.iter().map(|b| bind(as_collector(b))).collect(),
        ))
    }
}

impl CounterFn for FanoutHandles<Counter> {
    fn increment(&self, value: f64) {
        self.0.iter().for_each(|h| h.increment(value));
    }
}

impl GaugeFn for FanoutHandles<Gauge> {
    fn set(&self, value: f64) {
        self.0.iter().for_each(|h| h.set(value));
    }
    fn adjust(&self, delta: f64) {
        self.0.iter().for_each(|h| h.adjust(delta));
    }
}

impl HistogramFn for FanoutHandles<Histogram> {
    fn record(&self, value: f64) {
        self.0.iter().for_each(|h| h.record(value));
    }
}

impl TimerFn for FanoutHandles<Timer> {
    fn record(&self, duration: Duration) {
        self.0.iter().for_each(|h| h.record(duration));
    }
}

impl MetricCollector for Fanout {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.each(|c| c.record_counter(name, value, tags));
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.each(|c| c.record_gauge(name, value, tags));
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.each(|c| c.adjust_gauge(name, delta, tags));
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.each(|c| c.record_histogram(name, value, tags));
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.each(|c| c.record_timer(name, duration, tags));
    }
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        let hs = FanoutHandles::bind(&self.backends, |c| c.counter(name, tags));
        Some(Counter::from_arc(hs))
    }
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        let hs = FanoutHandles::bind(&self.backends, |c| c.gauge(name, tags));
        Some(Gauge::from_arc(hs))
    }
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        let hs = FanoutHandles::bind(&self.backends, |c| c.histogram(name, tags));
        Some(Histogram::from_arc(hs))
    }
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        let hs = FanoutHandles::bind(&self.backends, |c| c.timer(name, tags));
        Some(Timer::from_arc(hs))
    }
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        self.each(|c| c.describe(name, kind, unit, description));
    }
    fn flush(&self) -> Result<(), MetricsError> {
        flush_all(&self.backends)
    }
    fn health(&self) -> Vec<BackendHealth> {
        let mut all: Vec<BackendHealth> = self.backends.iter().flat_map(|c| c.health()).collect();
        if self.drops.total() > 0 {
            let mut own = BackendHealth::healthy("fanout");
            own.dropped = self.drops.snapshot();
            all.push(own);
        }
        all
    }
}

impl SuccessFailureTracker for Fanout {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        self.each(|b| b.record_success(operation, metadata));
    }
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        self.each(|b| b.record_failure(operation, error_type, metadata));
    }
    fn get_success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        self.first_answer("get_success_rate", |b| {
            b.get_success_rate(operation, time_window)
        })
    }
    fn get_failure_breakdown(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        self.first_answer("get_failure_breakdown", |b| {
            b.get_failure_breakdown(operation, time_window)
        })
    }
}

impl PerformanceTimer for Fanout {
    crate::running_timer_methods!(|f| &f.timers, &f.drops);
    /// `Unsupported`: the fan-out keeps no timings. Query the backend that
    /// does (the memory backend) directly.
    fn get_timing_stats(
        &self,
        _operation_name: &str,
        _window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        Err(MetricsError::Unsupported {
            operation: "get_timing_stats",
            backend: "fanout",
        })
    }
}
