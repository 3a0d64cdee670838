//! [`Fanout`]: one collector that forwards every record to several.

use std::sync::Arc;
use std::time::Duration;

use crate::collector::MetricCollector;
use crate::error::MetricsError;
use crate::health::BackendHealth;
use crate::instruments::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Timer, TimerFn, bind_counter,
    bind_gauge, bind_histogram, bind_timer,
};
use crate::types::{MetricType, MetricUnit, Tags};

/// Forwards every record to each of its collectors, with the same name,
/// value and tags: the memory backend for local queries and StatsD for the
/// fleet, say.
///
/// ```
/// use std::sync::Arc;
/// use metrics_protocol::{Fanout, MetricCollector, NoopMetrics};
///
/// let fanout = Fanout::new(vec![Arc::new(NoopMetrics), Arc::new(NoopMetrics)]);
/// fanout.record_counter("jobs.done", 1.0, &[("queue", "email")]);
/// assert_eq!(fanout.len(), 2);
/// ```
///
/// Bound handles from a `Fanout` bind each collector once and record into
/// all of them. `flush` flushes every collector and returns the first error;
/// `health` lists every collector's report.
#[derive(Clone, Default)]
pub struct Fanout {
    collectors: Vec<Arc<dyn MetricCollector>>,
}

impl Fanout {
    /// A fanout to `collectors`, in order.
    pub fn new(collectors: Vec<Arc<dyn MetricCollector>>) -> Self {
        Fanout { collectors }
    }

    /// Adds one more collector.
    pub fn with(mut self, collector: Arc<dyn MetricCollector>) -> Self {
        self.collectors.push(collector);
        self
    }

    /// Number of collectors.
    pub fn len(&self) -> usize {
        self.collectors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.collectors.is_empty()
    }

    /// The collectors, in order.
    pub fn collectors(&self) -> &[Arc<dyn MetricCollector>] {
        &self.collectors
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("collectors", &self.collectors.len())
            .finish()
    }
}

struct FanoutHandles<H>(Vec<H>);

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
        self.collectors
            .iter()
            .for_each(|c| c.record_counter(name, value, tags));
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.collectors
            .iter()
            .for_each(|c| c.record_gauge(name, value, tags));
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.collectors
            .iter()
            .for_each(|c| c.adjust_gauge(name, delta, tags));
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.collectors
            .iter()
            .for_each(|c| c.record_histogram(name, value, tags));
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.collectors
            .iter()
            .for_each(|c| c.record_timer(name, duration, tags));
    }
    fn increment<'a>(&self, name: &'a str, tags: Tags<'a>) {
        self.collectors.iter().for_each(|c| c.increment(name, tags));
    }
    fn decrement<'a>(&self, name: &'a str, tags: Tags<'a>) {
        self.collectors.iter().for_each(|c| c.decrement(name, tags));
    }
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        let hs = self
            .collectors
            .iter()
            .map(|c| bind_counter(c, name, tags))
            .collect();
        Some(Counter::from_arc(Arc::new(FanoutHandles(hs))))
    }
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        let hs = self
            .collectors
            .iter()
            .map(|c| bind_gauge(c, name, tags))
            .collect();
        Some(Gauge::from_arc(Arc::new(FanoutHandles(hs))))
    }
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        let hs = self
            .collectors
            .iter()
            .map(|c| bind_histogram(c, name, tags))
            .collect();
        Some(Histogram::from_arc(Arc::new(FanoutHandles(hs))))
    }
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        let hs = self
            .collectors
            .iter()
            .map(|c| bind_timer(c, name, tags))
            .collect();
        Some(Timer::from_arc(Arc::new(FanoutHandles(hs))))
    }
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        self.collectors
            .iter()
            .for_each(|c| c.describe(name, kind, unit, description));
    }
    fn flush(&self) -> Result<(), MetricsError> {
        let mut first = None;
        for c in &self.collectors {
            if let Err(e) = c.flush() {
                tracing::warn!(error = %e, "a fanout collector failed to flush");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
    fn health(&self) -> Vec<BackendHealth> {
        self.collectors.iter().flat_map(|c| c.health()).collect()
    }
}
