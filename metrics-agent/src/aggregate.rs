//! Stream aggregation, as the reference metric stream does it: tumbling
//! windows by time or by count, grouping by tag set, named aggregation
//! functions, default tags; results to a collector or a stream.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use metrics_memory::Clock;
use metrics_protocol::system::MetricValue;
use metrics_protocol::validate::SortedTags;
use metrics_protocol::{
    BackendHealth, HealthStatus, MetricCollector, MetricType, MetricUnit, MetricsError, Tags,
};
use parking_lot::Mutex;

use crate::recorded::{Interest, RecordKind, Recorded};
use crate::stream::StreamHub;

/// How samples are grouped before they are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Tumbling windows of this length, aligned to multiples of it since the
    /// Unix epoch (a 10 s window holds 12:00:00 to 12:00:10).
    Time(Duration),
    /// Tumbling batches of this many samples (over every tag set).
    Count(usize),
}

/// One named aggregation function.
///
/// ```
/// use metrics_agent::AggFn;
/// assert_eq!("p95".parse::<AggFn>().unwrap(), AggFn::Percentile(95.0));
/// assert_eq!(AggFn::Mean.name(), "mean");
/// assert!("median-ish".parse::<AggFn>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggFn {
    /// Sum of the values.
    Sum,
    /// Number of values.
    Count,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Arithmetic mean.
    Mean,
    /// The last value of the window.
    Last,
    /// Nearest-rank percentile, 0 < p ≤ 100 (`p50`, `p95`, `p99.9`).
    Percentile(f64),
}

impl AggFn {
    /// The name used in result names (`latency.p95`).
    pub fn name(&self) -> String {
        match self {
            AggFn::Sum => "sum".into(),
            AggFn::Count => "count".into(),
            AggFn::Min => "min".into(),
            AggFn::Max => "max".into(),
            AggFn::Mean => "mean".into(),
            AggFn::Last => "last".into(),
            AggFn::Percentile(p) => format!("p{p}"),
        }
    }
}

impl fmt::Display for AggFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for AggFn {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let f = match t.as_str() {
            "sum" => AggFn::Sum,
            "count" => AggFn::Count,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            "mean" | "avg" => AggFn::Mean,
            "last" => AggFn::Last,
            p if p.starts_with('p') => match p[1..].parse::<f64>() {
                Ok(q) if q > 0.0 && q <= 100.0 => AggFn::Percentile(q),
                _ => return Err(bad_fn(s)),
            },
            _ => return Err(bad_fn(s)),
        };
        Ok(f)
    }
}

fn bad_fn(s: &str) -> MetricsError {
    MetricsError::config(
        "functions",
        s,
        "expected sum, count, min, max, mean, last or a percentile like p95",
    )
}

/// What to aggregate and how: built with [`AggregationSpec::time`] or
/// [`AggregationSpec::count`], then functions and default tags.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationSpec {
    /// The metric whose samples are aggregated (exact name).
    pub metric: String,
    /// Time or count windows.
    pub window: Window,
    /// The functions; each result is named `<metric>.<function>`.
    pub functions: Vec<AggFn>,
    /// Tags every sample gets; a sample's own tag of the same key wins.
    pub default_tags: BTreeMap<String, String>,
    /// Values kept per tag set and window for percentiles; past it, a
    /// uniform reservoir sample of this size is kept (sum, count, min,
    /// max, mean and last stay exact). Default 10000.
    pub max_samples: usize,
}

impl AggregationSpec {
    /// Tumbling windows of `window` over `metric`.
    pub fn time(metric: impl Into<String>, window: Duration) -> Self {
        Self::new(metric.into(), Window::Time(window))
    }

    /// Batches of `n` samples of `metric`.
    pub fn count(metric: impl Into<String>, n: usize) -> Self {
        Self::new(metric.into(), Window::Count(n))
    }

    fn new(metric: String, window: Window) -> Self {
        AggregationSpec {
            metric,
            window,
            functions: Vec::new(),
            default_tags: BTreeMap::new(),
            max_samples: 10_000,
        }
    }

    /// Adds one function.
    pub fn function(mut self, f: AggFn) -> Self {
        self.functions.push(f);
        self
    }

    /// Adds functions by name (`["mean", "p95"]`); an unknown name is a
    /// [`MetricsError::Config`] naming it.
    pub fn functions<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, MetricsError> {
        for n in names {
            self.functions.push(n.as_ref().parse()?);
        }
        Ok(self)
    }

    /// Adds a default tag.
    pub fn default_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_tags.insert(key.into(), value.into());
        self
    }

    /// Checks the spec; errors name the field and the value.
    pub fn validate(&self) -> Result<(), MetricsError> {
        metrics_protocol::validate::check_name(&self.metric).map_err(|r| {
            MetricsError::config(
                "metric",
                &self.metric,
                format!("not a valid metric name ({})", r.as_str()),
            )
        })?;
        match self.window {
            Window::Time(d) if d.as_millis() == 0 => {
                return Err(MetricsError::config(
                    "window",
                    format!("{d:?}"),
                    "a time window must be at least 1 ms",
                ));
            }
            Window::Count(0) => {
                return Err(MetricsError::config(
                    "window",
                    "0",
                    "a count window must be at least 1",
                ));
            }
            _ => {}
        }
        if self.functions.is_empty() {
            return Err(MetricsError::config(
                "functions",
                "[]",
                "name at least one function",
            ));
        }
        for f in &self.functions {
            if let AggFn::Percentile(p) = f {
                if !(*p > 0.0 && *p <= 100.0) {
                    return Err(bad_fn(&f.name()));
                }
            }
        }
        if self.max_samples == 0 {
            return Err(MetricsError::config(
                "max_samples",
                "0",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Where results go.
#[derive(Clone)]
pub enum AggregateSink {
    /// Recorded as gauges (`<metric>.<function>`, the group's tags) into a
    /// collector: a backend, or the whole system.
    Collector(Arc<dyn MetricCollector>),
    /// Published to a [`StreamHub`]'s subscribers as gauge values with
    /// metadata `aggregation`, `window_start` and `samples`.
    Stream(StreamHub),
}

impl fmt::Debug for AggregateSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateSink::Collector(_) => f.write_str("Collector"),
            AggregateSink::Stream(h) => f.debug_tuple("Stream").field(h).finish(),
        }
    }
}

type GroupKey = Vec<(String, String)>;

#[derive(Debug, Default)]
struct Group {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    samples: Vec<f64>,
}

impl Group {
    fn add(&mut self, v: f64, cap: usize, rng: &mut fastrand::Rng) {
        if self.count == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
        self.last = v;
        if self.samples.len() < cap {
            self.samples.push(v);
        } else {
            // Algorithm R: keep each of the `count` values with equal chance.
            let j = rng.u64(..self.count);
            if (j as usize) < cap {
                self.samples[j as usize] = v;
            }
        }
    }

    fn value(&self, f: AggFn, sorted: &[f64]) -> f64 {
        match f {
            AggFn::Sum => self.sum,
            AggFn::Count => self.count as f64,
            AggFn::Min => self.min,
            AggFn::Max => self.max,
            AggFn::Mean => self.sum / self.count as f64,
            AggFn::Last => self.last,
            AggFn::Percentile(p) => {
                let n = sorted.len();
                let rank = ((p / 100.0) * n as f64).ceil() as usize;
                sorted[rank.clamp(1, n) - 1]
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    window_start_ms: Option<i64>,
    in_window: usize,
    groups: BTreeMap<GroupKey, Group>,
    unit: Option<MetricUnit>,
    rng: fastrand::Rng,
}

/// A closed window on its way to the sink.
struct Closed {
    start_ms: i64,
    end_ms: i64,
    unit: MetricUnit,
    groups: BTreeMap<GroupKey, Group>,
}

/// Aggregates the samples of one metric in tumbling windows and sends the
/// results to its sink.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use metrics_agent::{AggregateSink, AggregationSpec, StreamAggregator};
/// use metrics_memory::{ManualClock, MemoryMetrics};
///
/// let out = Arc::new(MemoryMetrics::new());
/// let clock = Arc::new(ManualClock::new(0));
/// let spec = AggregationSpec::time("latency", Duration::from_secs(10))
///     .functions(["max", "p50"])?
///     .default_tag("service", "api");
/// let agg = StreamAggregator::new(spec, AggregateSink::Collector(out.clone()), clock.clone())?;
/// for ms in [12.0, 30.0, 18.0] {
///     agg.send(ms, &[("route", "/a")]);
/// }
/// clock.advance(Duration::from_secs(10));
/// agg.tick(); // the window is over: results go out
/// let tags = [("route", "/a"), ("service", "api")];
/// assert_eq!(out.gauge_value("latency.max", &tags), Some(30.0));
/// assert_eq!(out.gauge_value("latency.p50", &tags), Some(18.0));
/// # Ok::<(), metrics_protocol::MetricsError>(())
/// ```
///
/// It is also a [`MetricCollector`]: counters, gauges (set), histograms and
/// timers (in ms) recorded under exactly `spec.metric` are its samples;
/// other names and `adjust_gauge` deltas are ignored. Windows close when a
/// sample of a later window arrives, on [`tick`](Self::tick) (the system
/// ticks every 100 ms), and on [`flush_partial`](Self::flush_partial), which sends the
/// partial window: at shutdown no sample is lost. A sink that panics is
/// caught, counted and logged; recording goes on.
pub struct StreamAggregator {
    spec: AggregationSpec,
    sink: AggregateSink,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    samples: AtomicU64,
    emitted: AtomicU64,
    sink_panics: AtomicU64,
}

impl fmt::Debug for StreamAggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamAggregator")
            .field("spec", &self.spec)
            .field("sink", &self.sink)
            .finish()
    }
}

impl StreamAggregator {
    /// An aggregator of `spec` (validated) into `sink`, with windows on `clock`.
    pub fn new(
        spec: AggregationSpec,
        sink: AggregateSink,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MetricsError> {
        spec.validate()?;
        Ok(StreamAggregator {
            spec,
            sink,
            clock,
            state: Mutex::new(State {
                rng: fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15),
                ..State::default()
            }),
            samples: AtomicU64::new(0),
            emitted: AtomicU64::new(0),
            sink_panics: AtomicU64::new(0),
        })
    }

    /// The spec.
    pub fn spec(&self) -> &AggregationSpec {
        &self.spec
    }

    /// Sends one sample with its tags (merged over the default tags).
    /// Non-finite values and samples with invalid tags are ignored.
    pub fn send(&self, value: f64, tags: Tags<'_>) {
        self.send_with_unit(value, tags, None);
    }

    fn send_with_unit(&self, value: f64, tags: Tags<'_>, unit: Option<MetricUnit>) {
        // Samples the backends drop as invalid are not aggregated either.
        if !value.is_finite() {
            return;
        }
        if let Ok(sorted) = SortedTags::new(tags) {
            self.offer(value, &sorted, unit);
        }
    }

    /// Adds one sample that was already validated (finite, tags sorted).
    pub(crate) fn offer(&self, value: f64, tags: &SortedTags<'_>, unit: Option<MetricUnit>) {
        let mut key: BTreeMap<&str, &str> = self
            .spec
            .default_tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        key.extend(tags.as_slice().iter().copied());
        let key: GroupKey = key
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.samples.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now_millis();
        let closed = {
            let mut st = self.state.lock();
            let mut closed = None;
            if let Window::Time(w) = self.spec.window {
                let w = w.as_millis().max(1) as i64;
                let start = now.div_euclid(w) * w;
                match st.window_start_ms {
                    Some(s) if start > s => {
                        closed = Self::take(&mut st, s, s + w);
                        st.window_start_ms = Some(start);
                    }
                    Some(_) => {}
                    None => st.window_start_ms = Some(start),
                }
            }
            if let Some(u) = unit {
                st.unit = Some(u);
            }
            let cap = self.spec.max_samples;
            let State { groups, rng, .. } = &mut *st;
            groups.entry(key).or_default().add(value, cap, rng);
            st.in_window += 1;
            if let Window::Count(n) = self.spec.window {
                if st.in_window >= n {
                    closed = Self::take(&mut st, now, now);
                }
            }
            closed
        };
        if let Some(c) = closed {
            self.emit(c);
        }
    }

    fn take(st: &mut State, start_ms: i64, end_ms: i64) -> Option<Closed> {
        st.in_window = 0;
        if st.groups.is_empty() {
            return None;
        }
        Some(Closed {
            start_ms,
            end_ms,
            unit: st.unit.unwrap_or(MetricUnit::Count),
            groups: std::mem::take(&mut st.groups),
        })
    }

    /// Closes the current time window if the clock has passed its end.
    /// Returns the number of result values sent.
    pub fn tick(&self) -> usize {
        let Window::Time(w) = self.spec.window else {
            return 0;
        };
        let w = w.as_millis().max(1) as i64;
        let now = self.clock.now_millis();
        let closed = {
            let mut st = self.state.lock();
            match st.window_start_ms {
                Some(s) if now >= s + w => {
                    st.window_start_ms = None;
                    Self::take(&mut st, s, s + w)
                }
                _ => None,
            }
        };
        closed.map_or(0, |c| self.emit(c))
    }

    /// Sends the current, partial window now (time windows end at the
    /// clock's now; count windows hold fewer than `n` samples). Returns the
    /// number of result values sent.
    pub fn flush_partial(&self) -> usize {
        let now = self.clock.now_millis();
        let closed = {
            let mut st = self.state.lock();
            let start = st.window_start_ms.take().unwrap_or(now);
            Self::take(&mut st, start, now)
        };
        closed.map_or(0, |c| self.emit(c))
    }

    /// Samples received, results sent, and sink panics caught so far.
    pub fn stats(&self) -> (u64, u64, u64) {
        (
            self.samples.load(Ordering::Relaxed),
            self.emitted.load(Ordering::Relaxed),
            self.sink_panics.load(Ordering::Relaxed),
        )
    }

    fn emit(&self, c: Closed) -> usize {
        let mut sent = 0;
        for (key, mut g) in c.groups {
            g.samples.sort_by(f64::total_cmp);
            let tags: Vec<(&str, &str)> =
                key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            for f in &self.spec.functions {
                let name = format!("{}.{}", self.spec.metric, f.name());
                let value = g.value(*f, &g.samples);
                let unit = match f {
                    AggFn::Count => MetricUnit::Count,
                    _ => c.unit,
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| match &self.sink {
                    AggregateSink::Collector(col) => col.record_gauge(&name, value, &tags),
                    AggregateSink::Stream(hub) => {
                        let mut v = MetricValue::new(&name, value, MetricType::Gauge, unit, &tags);
                        v.timestamp = to_datetime(c.end_ms);
                        v.metadata.insert("aggregation".into(), f.name());
                        v.metadata
                            .insert("window_start".into(), to_datetime(c.start_ms).to_rfc3339());
                        v.metadata.insert("samples".into(), g.count.to_string());
                        hub.publish(&v);
                    }
                }));
                match outcome {
                    Ok(()) => sent += 1,
                    Err(_) => {
                        self.sink_panics.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(metric = %name, "an aggregation sink panicked; result lost");
                    }
                }
            }
        }
        self.emitted.fetch_add(sent as u64, Ordering::Relaxed);
        sent
    }
}

fn to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl MetricCollector for StreamAggregator {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        if name == self.spec.metric {
            self.send_with_unit(value, tags, None);
        }
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        if name == self.spec.metric {
            self.send_with_unit(value, tags, None);
        }
    }
    fn adjust_gauge<'a>(&self, _name: &'a str, _delta: f64, _tags: Tags<'a>) {}
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        if name == self.spec.metric {
            self.send_with_unit(value, tags, None);
        }
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        if name == self.spec.metric {
            let ms = duration.as_secs_f64() * 1e3;
            self.send_with_unit(ms, tags, Some(MetricUnit::Milliseconds));
        }
    }
}

/// The aggregators of a system: a sample reaches each aggregator of its
/// name. The list is read on every recording without a lock (an atomic
/// snapshot); with none registered, recording costs that one load.
#[derive(Default)]
pub struct AggregationSet {
    list: ArcSwap<Vec<Arc<StreamAggregator>>>,
    /// Serialises additions.
    writers: Mutex<()>,
    /// First bytes of the aggregated names.
    interest: Interest,
}

impl fmt::Debug for AggregationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregationSet")
            .field("aggregators", &self.len())
            .finish()
    }
}

impl AggregationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an aggregator.
    pub fn add(&self, agg: Arc<StreamAggregator>) {
        let _w = self.writers.lock();
        let mut v = Vec::clone(&self.list.load());
        v.push(agg);
        self.interest
            .rebuild(v.iter().map(|a| Some(a.spec.metric.as_str())));
        self.list.store(Arc::new(v));
    }

    /// Number of aggregators.
    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    /// Whether some aggregator takes samples named `name`.
    #[inline]
    pub(crate) fn wants(&self, name: &str) -> bool {
        if !self.interest.may_want(name) {
            return false;
        }
        let list = self.list.load();
        !list.is_empty() && list.iter().any(|a| a.spec.metric == name)
    }

    /// Hands a validated sample (tags sorted) to each aggregator of its name.
    pub(crate) fn offer(&self, sample: &Recorded<'_>, tags: &SortedTags<'_>) {
        if sample.kind == RecordKind::GaugeDelta {
            return; // a delta is not a sample of the gauge's values
        }
        let unit = (sample.kind == RecordKind::Timer).then_some(MetricUnit::Milliseconds);
        for a in self
            .list
            .load()
            .iter()
            .filter(|a| a.spec.metric == sample.name)
        {
            a.offer(sample.value, tags, unit);
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Vec<Arc<StreamAggregator>>> {
        self.list.load_full()
    }

    /// Closes every time window that is over.
    pub fn tick(&self) -> usize {
        self.snapshot().iter().map(|a| a.tick()).sum()
    }

    /// Sends every partial window. An aggregator may feed another (its
    /// results recorded into a system holding both), so this repeats until
    /// nothing is left, at most once per aggregator plus one.
    pub fn flush_partial(&self) -> usize {
        let list = self.snapshot();
        let mut total = 0;
        for _ in 0..=list.len() {
            let n: usize = list.iter().map(|a| a.flush_partial()).sum();
            total += n;
            if n == 0 {
                break;
            }
        }
        total
    }

    /// What the set reports in a health report (`None` when empty).
    pub fn report(&self) -> Option<BackendHealth> {
        let list = self.snapshot();
        if list.is_empty() {
            return None;
        }
        let mut h = BackendHealth::healthy("aggregation");
        let (mut samples, mut emitted, mut panics) = (0, 0, 0);
        for a in list.iter() {
            let (s, e, p) = a.stats();
            (samples, emitted, panics) = (samples + s, emitted + e, panics + p);
        }
        h.details.insert("aggregators".into(), list.len() as f64);
        h.details.insert("samples".into(), samples as f64);
        h.details.insert("results".into(), emitted as f64);
        h.details.insert("sink_panics".into(), panics as f64);
        if panics > 0 {
            h.status = HealthStatus::Degraded;
            h.message = Some(format!("{panics} results lost to panicking sinks"));
        }
        Some(h)
    }
}

/// The set as a collector of its own: validates each call, then offers it.
impl MetricCollector for AggregationSet {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.take(Recorded::new(RecordKind::Counter, name, value, tags));
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.take(Recorded::new(RecordKind::Gauge, name, value, tags));
    }
    fn adjust_gauge<'a>(&self, _name: &'a str, _delta: f64, _tags: Tags<'a>) {}
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.take(Recorded::new(RecordKind::Histogram, name, value, tags));
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.take(Recorded::timer(name, duration, tags));
    }
    fn health(&self) -> Vec<BackendHealth> {
        self.report().into_iter().collect()
    }
}

impl AggregationSet {
    fn take(&self, sample: Recorded<'_>) {
        if self.wants(sample.name) {
            if let Ok(tags) = sample.check() {
                self.offer(&sample, &tags);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::block_on;
    use futures_util::StreamExt;
    use metrics_memory::{ManualClock, MemoryMetrics};
    use metrics_protocol::system::{MetricFilter, StreamEvent};

    fn setup(spec: AggregationSpec) -> (Arc<MemoryMetrics>, Arc<ManualClock>, StreamAggregator) {
        let out = Arc::new(MemoryMetrics::new());
        let clock = Arc::new(ManualClock::new(1_000_000));
        let agg = StreamAggregator::new(spec, AggregateSink::Collector(out.clone()), clock.clone())
            .unwrap();
        (out, clock, agg)
    }

    #[test]
    fn time_windows_group_by_tag_set_with_several_functions() {
        let spec = AggregationSpec::time("latency", Duration::from_secs(10))
            .functions(["sum", "count", "min", "max", "mean", "p50", "p95", "p99"])
            .unwrap();
        let (out, clock, agg) = setup(spec);
        for v in 1..=100 {
            agg.send(f64::from(v), &[("route", "/a")]);
        }
        agg.send(7.0, &[("route", "/b")]);
        // Still inside the window: nothing is out yet.
        clock.advance(Duration::from_secs(9));
        assert_eq!(agg.tick(), 0);
        assert_eq!(out.gauge_value("latency.sum", &[("route", "/a")]), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(agg.tick(), 16, "8 functions x 2 tag sets");
        let a = |f: &str| out.gauge_value(&format!("latency.{f}"), &[("route", "/a")]);
        assert_eq!(a("sum"), Some(5050.0));
        assert_eq!(a("count"), Some(100.0));
        assert_eq!((a("min"), a("max")), (Some(1.0), Some(100.0)));
        assert_eq!(a("mean"), Some(50.5));
        assert_eq!(
            (a("p50"), a("p95"), a("p99")),
            (Some(50.0), Some(95.0), Some(99.0))
        );
        assert_eq!(
            out.gauge_value("latency.max", &[("route", "/b")]),
            Some(7.0)
        );
    }

    #[test]
    fn a_sample_of_a_later_window_closes_the_previous_one() {
        let spec = AggregationSpec::time("q", Duration::from_secs(5)).function(AggFn::Sum);
        let (out, clock, agg) = setup(spec);
        agg.send(1.0, &[]);
        agg.send(2.0, &[]);
        clock.advance(Duration::from_secs(5));
        agg.send(10.0, &[]);
        assert_eq!(out.gauge_value("q.sum", &[]), Some(3.0));
        // The new window holds only the late sample; flushing sends it.
        assert_eq!(agg.flush_partial(), 1);
        assert_eq!(out.gauge_value("q.sum", &[]), Some(10.0));
        assert_eq!(agg.flush_partial(), 0, "nothing left");
    }

    #[test]
    fn count_windows_and_the_partial_flush_lose_nothing() {
        let spec = AggregationSpec::count("jobs", 3)
            .functions(["count", "sum"])
            .unwrap();
        let (out, _clock, agg) = setup(spec);
        let mut seen_sum = 0.0;
        for v in 1..=7 {
            agg.send(f64::from(v), &[]);
            if v % 3 == 0 {
                seen_sum += out.gauge_value("jobs.sum", &[]).unwrap();
                assert_eq!(out.gauge_value("jobs.count", &[]), Some(3.0));
            }
        }
        assert_eq!(seen_sum, 1.0 + 2.0 + 3.0 + 4.0 + 5.0 + 6.0);
        // One sample is still waiting: the flush at shutdown sends it.
        assert_eq!(agg.flush_partial(), 2);
        assert_eq!(out.gauge_value("jobs.count", &[]), Some(1.0));
        assert_eq!(out.gauge_value("jobs.sum", &[]), Some(7.0));
    }

    #[test]
    fn count_windows_span_tag_sets() {
        let spec = AggregationSpec::count("m", 4).function(AggFn::Count);
        let (out, _clock, agg) = setup(spec);
        for route in ["/a", "/b", "/a", "/a"] {
            agg.send(1.0, &[("route", route)]);
        }
        assert_eq!(out.gauge_value("m.count", &[("route", "/a")]), Some(3.0));
        assert_eq!(out.gauge_value("m.count", &[("route", "/b")]), Some(1.0));
    }

    #[test]
    fn default_tags_are_overridden_by_sample_tags() {
        let spec = AggregationSpec::count("m", 2)
            .function(AggFn::Sum)
            .default_tag("env", "prod")
            .default_tag("service", "api");
        let (out, _clock, agg) = setup(spec);
        agg.send(1.0, &[]);
        agg.send(2.0, &[("env", "dev")]);
        assert_eq!(
            out.gauge_value("m.sum", &[("env", "prod"), ("service", "api")]),
            Some(1.0)
        );
        assert_eq!(
            out.gauge_value("m.sum", &[("env", "dev"), ("service", "api")]),
            Some(2.0)
        );
    }

    #[test]
    fn results_can_go_to_a_stream() {
        let hub = StreamHub::new(16);
        let stream = hub.subscribe(MetricFilter::default());
        let clock = Arc::new(ManualClock::new(0));
        let spec = AggregationSpec::time("lat", Duration::from_secs(1))
            .functions(["p95"])
            .unwrap();
        let agg =
            StreamAggregator::new(spec, AggregateSink::Stream(hub.clone()), clock.clone()).unwrap();
        agg.record_timer("lat", Duration::from_millis(40), &[]);
        agg.record_timer("other", Duration::from_millis(1), &[]);
        clock.advance(Duration::from_secs(1));
        agg.tick();
        hub.close();
        let events: Vec<StreamEvent> = block_on(stream.collect());
        let [StreamEvent::Metric(v)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (v.name.as_str(), v.value, v.unit),
            ("lat.p95", 40.0, MetricUnit::Milliseconds)
        );
        assert_eq!(v.metadata["samples"], "1");
        assert_eq!(v.timestamp.timestamp_millis(), 1000);
    }

    #[test]
    fn a_panicking_sink_is_counted_and_recording_goes_on() {
        struct Boom;
        impl MetricCollector for Boom {
            fn record_counter<'a>(&self, _: &'a str, _: f64, _: Tags<'a>) {}
            fn record_gauge<'a>(&self, _: &'a str, _: f64, _: Tags<'a>) {
                panic!("sink down")
            }
            fn adjust_gauge<'a>(&self, _: &'a str, _: f64, _: Tags<'a>) {}
            fn record_histogram<'a>(&self, _: &'a str, _: f64, _: Tags<'a>) {}
            fn record_timer<'a>(&self, _: &'a str, _: Duration, _: Tags<'a>) {}
        }
        let clock = Arc::new(ManualClock::new(0));
        let spec = AggregationSpec::count("m", 1).function(AggFn::Sum);
        let agg =
            StreamAggregator::new(spec, AggregateSink::Collector(Arc::new(Boom)), clock).unwrap();
        agg.send(1.0, &[]);
        agg.send(2.0, &[]);
        assert_eq!(agg.stats(), (2, 0, 2));
    }

    #[test]
    fn reservoir_keeps_exact_totals_past_the_cap() {
        let mut spec = AggregationSpec::count("m", 1000)
            .functions(["count", "sum", "max", "p50"])
            .unwrap();
        spec.max_samples = 100;
        let (out, _clock, agg) = setup(spec);
        for v in 0..1000 {
            agg.send(f64::from(v), &[]);
        }
        assert_eq!(out.gauge_value("m.count", &[]), Some(1000.0));
        assert_eq!(out.gauge_value("m.sum", &[]), Some(499_500.0));
        assert_eq!(out.gauge_value("m.max", &[]), Some(999.0));
        let p50 = out.gauge_value("m.p50", &[]).unwrap();
        assert!((0.0..1000.0).contains(&p50));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
        let sink = || AggregateSink::Stream(StreamHub::new(1));
        let err = |spec: AggregationSpec| match StreamAggregator::new(spec, sink(), clock.clone()) {
            Err(MetricsError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(AggregationSpec::count("m", 0).function(AggFn::Sum)),
            "window"
        );
        assert_eq!(
            err(AggregationSpec::time("m", Duration::ZERO).function(AggFn::Sum)),
            "window"
        );
        assert_eq!(err(AggregationSpec::count("m", 1)), "functions");
        assert_eq!(
            err(AggregationSpec::count("", 1).function(AggFn::Sum)),
            "metric"
        );
        let e = AggregationSpec::count("m", 1)
            .functions(["p0"])
            .unwrap_err();
        assert!(e.to_string().contains("p0"), "{e}");
        assert!(AggregationSpec::count("m", 1).functions(["p101"]).is_err());
    }

    #[test]
    fn a_set_routes_by_name_and_flushes_chains() {
        let out = Arc::new(MemoryMetrics::new());
        let set = Arc::new(AggregationSet::new());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
        /// A sink that records into the memory backend and the set itself.
        struct Both(Arc<MemoryMetrics>, Arc<AggregationSet>);
        impl MetricCollector for Both {
            fn record_counter<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) {
                self.0.record_counter(n, v, t);
                self.1.record_counter(n, v, t);
            }
            fn record_gauge<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) {
                self.0.record_gauge(n, v, t);
                self.1.record_gauge(n, v, t);
            }
            fn adjust_gauge<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) {
                self.0.adjust_gauge(n, v, t);
            }
            fn record_histogram<'a>(&self, n: &'a str, v: f64, t: Tags<'a>) {
                self.0.record_histogram(n, v, t);
                self.1.record_histogram(n, v, t);
            }
            fn record_timer<'a>(&self, n: &'a str, d: Duration, t: Tags<'a>) {
                self.0.record_timer(n, d, t);
                self.1.record_timer(n, d, t);
            }
        }
        let both: Arc<dyn MetricCollector> = Arc::new(Both(out.clone(), set.clone()));
        // `lat.max` is aggregated again: a chain the flush must drain.
        let first = AggregationSpec::count("lat", 10).function(AggFn::Max);
        let second = AggregationSpec::count("lat.max", 10).function(AggFn::Count);
        set.add(Arc::new(
            StreamAggregator::new(first, AggregateSink::Collector(both.clone()), clock.clone())
                .unwrap(),
        ));
        set.add(Arc::new(
            StreamAggregator::new(second, AggregateSink::Collector(both.clone()), clock).unwrap(),
        ));
        both.record_histogram("lat", 5.0, &[]);
        both.record_histogram("unrelated", 5.0, &[]);
        assert_eq!(set.flush_partial(), 2);
        assert_eq!(out.gauge_value("lat.max", &[]), Some(5.0));
        assert_eq!(out.gauge_value("lat.max.count", &[]), Some(1.0));
        let h = set.report().unwrap();
        assert_eq!(h.details["samples"], 2.0);
    }
}
