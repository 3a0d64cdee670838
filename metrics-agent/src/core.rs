//! [`Core`]: the recording side of an [`Agent`](crate::Agent), and the one
//! way a sample travels it.
//!
//! A recording call reaches each backend (memory, StatsD) as the same call,
//! and each applies the protocol's rules and counts its own drops. Then,
//! only if a stream subscriber or an aggregation wants the name (a
//! lock-free check), the call is validated once, its tags sorted once, and
//! handed to the taps. Results of aggregations come back through
//! [`Derived`]: they reach the backends and the streams, never the
//! aggregations again.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics_kit::{DropCounters, RunningTimers, with_outcome_counter};
use metrics_memory::{Clock, MemoryMetrics};
use metrics_protocol::backend::{CounterFn, GaugeFn, HistogramFn, TimerFn};
use metrics_protocol::system::{ExportFormat, MetricSummary, MetricValue, MetricsAggregator};
use metrics_protocol::validate::MAX_TAGS;
use metrics_protocol::{
    BackendHealth, Counter, Gauge, Histogram, InstrumentExt, MetricCollector, MetricType,
    MetricUnit, MetricsBackend, MetricsError, PerformanceTimer, SuccessFailureTracker, Tags, Timer,
    TimingStats, outcome,
};
use metrics_statsd::StatsdMetrics;

use crate::aggregate::AggregationSet;
use crate::health::ErrorRateWindow;
use crate::recorded::{RecordKind, Recorded, collector_via_take};
use crate::stream::StreamHub;

/// Where a sample comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Recorded by the application.
    Recorded,
    /// A result of an aggregation: not aggregated again.
    Derived,
}

/// The shared recording side: one value that is the system's collector,
/// timer, tracker and query answerer.
pub(crate) struct Core {
    /// Memory and/or StatsD, in that order (the same as `memory` and
    /// `statsd`: recording calls those directly).
    pub backends: Vec<Arc<dyn MetricsBackend>>,
    pub memory: Option<Arc<MemoryMetrics>>,
    pub statsd: Option<Arc<StatsdMetrics>>,
    pub hub: StreamHub,
    pub aggregations: Arc<AggregationSet>,
    pub outcomes: ErrorRateWindow,
    pub timers: RunningTimers,
    pub drops: DropCounters,
    pub query: Arc<dyn MetricsAggregator>,
    pub query_timer: Arc<dyn PerformanceTimer>,
    pub query_tracker: Arc<dyn SuccessFailureTracker>,
    pub clock: Arc<dyn Clock>,
}

impl Core {
    /// Passes a description on to every backend (they keep it for their
    /// exports).
    fn describe(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>, text: &str) {
        for b in &self.backends {
            b.describe(name, kind, unit, text);
        }
    }

    /// The one path of a recording call. Always inlined, so each
    /// recording method gets its own copy with the kind known: no dispatch
    /// on the kind, no `Recorded` built unless a tap may want the sample.
    ///
    /// The taps' one-word filters are read first, so a sample no tap may
    /// want ends in the memory backend's call with nothing kept across it.
    /// (Reading the filters before the backends record changes nothing a
    /// caller can see: a tap added meanwhile races with the call either way.)
    #[inline(always)]
    pub fn record(&self, sample: Recorded<'_>, origin: Origin) {
        if self.may_tap(sample.name, origin) {
            self.record_and_tap(
                sample.kind,
                sample.name,
                sample.value,
                sample.duration,
                sample.tags,
                origin,
            );
            return;
        }
        // The concrete backends, called directly (the same ones as `backends`).
        if let Some(s) = &self.statsd {
            sample.record_into(&**s);
        }
        if let Some(m) = &self.memory {
            sample.record_into(&**m);
        }
    }

    /// [`record`](Self::record) of a sample that a tap may want.
    #[cold]
    #[inline(never)]
    fn record_and_tap(
        &self,
        kind: RecordKind,
        name: &str,
        value: f64,
        duration: Duration,
        tags: Tags<'_>,
        origin: Origin,
    ) {
        let sample = Recorded {
            kind,
            name,
            value,
            duration,
            tags,
        };
        if let Some(s) = &self.statsd {
            sample.record_into(&**s);
        }
        if let Some(m) = &self.memory {
            sample.record_into(&**m);
        }
        self.tap_wanted(sample, origin);
    }

    /// Whether a stream or (unless derived) an aggregation may want `name`:
    /// the one-word filters, two loads and two bit tests.
    #[inline(always)]
    fn may_tap(&self, name: &str, origin: Origin) -> bool {
        self.hub.may_want(name) || (origin == Origin::Recorded && self.aggregations.may_want(name))
    }

    /// Hands a sample to the streams and (unless derived) the aggregations
    /// that want it, validating it once.
    #[inline(always)]
    fn tap(&self, sample: &Recorded<'_>, origin: Origin) {
        if self.may_tap(sample.name, origin) {
            // By value: the sample is copied out only on this branch.
            self.tap_wanted(*sample, origin);
        }
    }

    /// [`tap`](Self::tap) past the filters: the full checks, out of line.
    #[inline(never)]
    fn tap_wanted(&self, sample: Recorded<'_>, origin: Origin) {
        let sample = &sample;
        let to_streams = self.hub.wants(sample.name, sample.metric_type());
        let to_aggregations = origin == Origin::Recorded && self.aggregations.wants(sample.name);
        if !(to_streams || to_aggregations) {
            return;
        }
        // What a backend drops (and counts) is neither streamed nor aggregated.
        let Ok(tags) = sample.check() else {
            return;
        };
        if to_streams {
            self.hub.publish_sample(sample, &tags);
        }
        if to_aggregations {
            self.aggregations.offer(sample, &tags);
        }
    }

    /// Streams see an outcome as the counter `<op>.success`, or
    /// `<op>.failure` tagged `error_type`.
    fn tap_outcome(&self, operation: &str, failure: Option<&str>, tags: Tags<'_>) {
        let suffix = match failure {
            None => outcome::SUCCESS_SUFFIX,
            Some(_) => outcome::FAILURE_SUFFIX,
        };
        // Cheap check first: the counter is only built when a stream may want it.
        if !self
            .hub
            .wants_joined(operation, suffix, MetricType::Counter)
        {
            return;
        }
        with_outcome_counter(operation, failure, tags, |name, tags| {
            let sample = Recorded::new(RecordKind::Counter, name, 1.0, tags);
            self.tap(&sample, Origin::Derived);
        });
    }

    fn handle(self: &Arc<Self>, name: &str, tags: Tags<'_>) -> TapHandle {
        TapHandle {
            core: Arc::downgrade(self),
            name: name.to_owned(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// The backends' bound handles of one series plus the taps: a record goes
/// to each backend's series directly, then to the taps that want it.
struct Bound<H> {
    backends: Vec<H>,
    taps: TapHandle,
}

/// The name and tags of a bound series, for the taps.
struct TapHandle {
    core: Weak<Core>,
    name: String,
    tags: Vec<(String, String)>,
}

impl TapHandle {
    #[inline]
    fn tap(&self, kind: RecordKind, value: f64, duration: Duration) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let mut buf: [(&str, &str); MAX_TAGS + 1] = [("", ""); MAX_TAGS + 1];
        let n = self.tags.len().min(MAX_TAGS + 1);
        for (slot, (k, v)) in buf.iter_mut().zip(&self.tags) {
            *slot = (k.as_str(), v.as_str());
        }
        let mut sample = Recorded::new(kind, &self.name, value, &buf[..n]);
        if kind == RecordKind::Timer {
            sample = Recorded::timer(&self.name, duration, &buf[..n]);
        }
        core.tap(&sample, Origin::Recorded);
    }
}

impl<H> Bound<H> {
    /// One record of a value: `each` on every backend's handle, then the taps.
    #[inline]
    fn fan(&self, each: impl Fn(&H), kind: RecordKind, value: f64) {
        self.backends.iter().for_each(each);
        self.taps.tap(kind, value, Duration::ZERO);
    }
}

impl CounterFn for Bound<Counter> {
    fn increment(&self, v: f64) {
        self.fan(|h| h.increment(v), RecordKind::Counter, v);
    }
}

impl GaugeFn for Bound<Gauge> {
    fn set(&self, v: f64) {
        self.fan(|h| h.set(v), RecordKind::Gauge, v);
    }
    fn adjust(&self, d: f64) {
        self.fan(|h| h.adjust(d), RecordKind::GaugeDelta, d);
    }
}

impl HistogramFn for Bound<Histogram> {
    fn record(&self, v: f64) {
        self.fan(|h| h.record(v), RecordKind::Histogram, v);
    }
}

impl TimerFn for Bound<Timer> {
    fn record(&self, duration: Duration) {
        self.backends.iter().for_each(|h| h.record(duration));
        self.taps.tap(RecordKind::Timer, 0.0, duration);
    }
}

/// `Arc<Core>` as the system's collector, tracker, timer and aggregator; it
/// hands out handles (which keep a weak reference for the taps).
pub(crate) struct CoreCollector(pub Arc<Core>);

impl std::ops::Deref for CoreCollector {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

impl CoreCollector {
    fn bound<H>(
        &self,
        name: &str,
        tags: Tags<'_>,
        bind: impl Fn(Arc<dyn MetricCollector>) -> H,
    ) -> Bound<H> {
        Bound {
            backends: self.0.backends.iter().map(|b| bind(b.clone())).collect(),
            taps: self.0.handle(name, tags),
        }
    }
}

impl CoreCollector {
    #[inline(always)]
    fn take(&self, sample: Recorded<'_>) {
        self.0.record(sample, Origin::Recorded);
    }
}

collector_via_take! {
    CoreCollector;
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        let b = self.bound(name, tags, |c| c.counter(name, tags));
        Some(Counter::from_arc(Arc::new(b)))
    }
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        let b = self.bound(name, tags, |c| c.gauge(name, tags));
        Some(Gauge::from_arc(Arc::new(b)))
    }
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        let b = self.bound(name, tags, |c| c.histogram(name, tags));
        Some(Histogram::from_arc(Arc::new(b)))
    }
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        let b = self.bound(name, tags, |c| c.timer(name, tags));
        Some(Timer::from_arc(Arc::new(b)))
    }
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        self.0.describe(name, kind, unit, description);
    }
    fn flush(&self) -> Result<(), MetricsError> {
        metrics_kit::flush_all(&self.0.backends)
    }
    fn health(&self) -> Vec<BackendHealth> {
        let core = &self.0;
        let mut all: Vec<BackendHealth> = core.backends.iter().flat_map(|b| b.health()).collect();
        all.push(core.hub.report());
        all.extend(core.aggregations.report());
        all
    }
}

impl SuccessFailureTracker for CoreCollector {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        let core = &self.0;
        for b in &core.backends {
            b.record_success(operation, metadata);
        }
        core.outcomes.record(true);
        core.tap_outcome(operation, None, metadata);
    }

    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        let core = &self.0;
        for b in &core.backends {
            b.record_failure(operation, error_type, metadata);
        }
        core.outcomes.record(false);
        core.tap_outcome(operation, Some(error_type), metadata);
    }

    fn get_success_rate(
        &self,
        operation: &str,
        window: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        self.0.query_tracker.get_success_rate(operation, window)
    }

    fn get_failure_breakdown(
        &self,
        operation: &str,
        window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        self.0
            .query_tracker
            .get_failure_breakdown(operation, window)
    }
}

impl PerformanceTimer for CoreCollector {
    metrics_kit::running_timer_methods!(|c| &c.0.timers, &c.0.drops);

    fn get_timing_stats(
        &self,
        operation_name: &str,
        window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        self.0.query_timer.get_timing_stats(operation_name, window)
    }
}

impl MetricsAggregator for CoreCollector {
    fn get_metric_summary(
        &self,
        name: &str,
        window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        self.0.query.get_metric_summary(name, window)
    }
    fn get_metrics_by_tag<'a>(&self, filter: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        self.0.query.get_metrics_by_tag(filter)
    }
    fn export_metrics(&self, format: ExportFormat) -> Result<String, MetricsError> {
        self.0.query.export_metrics(format)
    }
    fn get_top_metrics(
        &self,
        metric_type: MetricType,
        limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        self.0.query.get_top_metrics(metric_type, limit)
    }
}

/// Where the system's own aggregations send their results: into the
/// backends and streams, not the aggregations (a result is never
/// aggregated again). Holds the core weakly, so there is no cycle.
pub(crate) struct Derived(pub Weak<Core>);

impl Derived {
    fn take(&self, sample: Recorded<'_>) {
        if let Some(core) = self.0.upgrade() {
            core.record(sample, Origin::Derived);
        }
    }
}

collector_via_take!(Derived;
    /// An aggregation describes its results (their source's unit): the
    /// backends keep it for their exports.
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        if let Some(core) = self.0.upgrade() {
            core.describe(name, kind, unit, description);
        }
    }
);
