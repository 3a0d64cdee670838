//! [`StreamAggregator`]: one aggregation's tumbling batches, and where
//! their results go ([`AggregateSink`]).

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use metrics_memory::{Clock, QuantileSketch};
use metrics_protocol::app::MetricValue;
use metrics_protocol::backend::{Measurement, SortedTags, Value};
use metrics_protocol::{Key, MetricCollector, MetricType, MetricUnit, Tags};
use parking_lot::Mutex;

use super::spec::{AggFn, AggregationBatch, AggregationSpec};
use crate::error::AgentError;
use crate::stream::StreamHub;

/// Where results go.
#[derive(Clone)]
pub enum AggregateSink {
    /// Recorded as gauges (`<metric>.<function>`, the group's tags) into a
    /// collector: a backend, a layer stack, or the agent's stack below the
    /// taps (so streams see the results and aggregations do not).
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
    /// Percentiles: the memory backend's sketch (the project's one quantile
    /// engine), whatever the number of values.
    sketch: QuantileSketch,
    /// The values for functions from code only (a uniform reservoir past
    /// `max_samples`); empty when the spec has none.
    samples: Vec<f64>,
}

impl Group {
    fn add(&mut self, v: f64, cap: usize, rng: &mut fastrand::Rng) {
        self.sketch.add(v);
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

    fn value(&self, f: &AggFn, sorted: &[f64]) -> f64 {
        match f {
            AggFn::Sum => self.sum,
            AggFn::Count => self.count as f64,
            AggFn::Min => self.min,
            AggFn::Max => self.max,
            AggFn::Mean => self.sum / self.count as f64,
            AggFn::Last => self.last,
            AggFn::Percentile(p) => self.sketch.quantile(p / 100.0).unwrap_or(self.last),
            AggFn::Custom(c) => c.apply(sorted),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    batch_start_ms: Option<i64>,
    in_batch: usize,
    groups: BTreeMap<GroupKey, Group>,
    unit: Option<MetricUnit>,
    rng: fastrand::Rng,
}

/// A closed batch on its way to the sink.
struct Closed {
    start_ms: i64,
    end_ms: i64,
    unit: MetricUnit,
    groups: BTreeMap<GroupKey, Group>,
}

/// Aggregates the samples of one metric in tumbling batches and sends the
/// results to its sink.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use metrics_sdk::{AggregateSink, AggregationSpec, StreamAggregator};
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
/// agg.tick(); // the batch is over: results go out
/// let tags = [("route", "/a"), ("service", "api")];
/// assert_eq!(out.gauge_value("latency.max", &tags), Some(30.0));
/// let p50 = out.gauge_value("latency.p50", &tags).unwrap(); // from the sketch, within 0.5%
/// assert!((p50 - 18.0).abs() < 0.1);
/// # Ok::<(), metrics_sdk::AgentError>(())
/// ```
///
/// It is also a [`MetricCollector`]: counters, gauges (set), histograms and
/// timers (in ms) recorded under exactly `spec.metric` are its samples;
/// other names, gauge deltas and outcomes are ignored. Batches close when a
/// sample of a later batch arrives, on [`tick`](Self::tick) (the agent
/// ticks every 100 ms), and on [`flush_partial`](Self::flush_partial), which sends the
/// partial batch: at shutdown no sample is lost. A sink that panics is
/// caught, counted and logged; recording goes on.
pub struct StreamAggregator {
    spec: AggregationSpec,
    sink: AggregateSink,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Whether a function from code needs the batch's values.
    keeps_values: bool,
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
    /// An aggregator of `spec` (validated) into `sink`, with batches on `clock`.
    pub fn new(
        spec: AggregationSpec,
        sink: AggregateSink,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AgentError> {
        spec.validate()?;
        let keeps_values = spec.functions.iter().any(|f| matches!(f, AggFn::Custom(_)));
        Ok(StreamAggregator {
            keeps_values,
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
        // What a backend would refuse is not aggregated either.
        if !value.is_finite() {
            return;
        }
        if let Ok(sorted) = SortedTags::new(tags) {
            self.offer(value, &sorted, None);
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
            if let AggregationBatch::Time(w) = self.spec.batch {
                let w = w.as_millis().max(1) as i64;
                let start = now.div_euclid(w) * w;
                match st.batch_start_ms {
                    Some(s) if start > s => {
                        closed = Self::take(&mut st, s, s + w);
                        st.batch_start_ms = Some(start);
                    }
                    Some(_) => {}
                    None => st.batch_start_ms = Some(start),
                }
            }
            if let Some(u) = unit {
                st.unit = Some(u);
            }
            // Values are kept only for functions from code.
            let cap = if self.keeps_values {
                self.spec.max_samples
            } else {
                0
            };
            let State { groups, rng, .. } = &mut *st;
            groups.entry(key).or_default().add(value, cap, rng);
            st.in_batch += 1;
            if let AggregationBatch::Count(n) = self.spec.batch
                && st.in_batch >= n
            {
                closed = Self::take(&mut st, now, now);
            }
            closed
        };
        if let Some(c) = closed {
            self.emit(c);
        }
    }

    fn take(st: &mut State, start_ms: i64, end_ms: i64) -> Option<Closed> {
        st.in_batch = 0;
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

    /// Closes the current time batch if the clock has passed its end.
    /// Returns the number of result values sent.
    pub fn tick(&self) -> usize {
        let AggregationBatch::Time(w) = self.spec.batch else {
            return 0;
        };
        let w = w.as_millis().max(1) as i64;
        let now = self.clock.now_millis();
        let closed = {
            let mut st = self.state.lock();
            match st.batch_start_ms {
                Some(s) if now >= s + w => {
                    st.batch_start_ms = None;
                    Self::take(&mut st, s, s + w)
                }
                _ => None,
            }
        };
        closed.map_or(0, |c| self.emit(c))
    }

    /// Sends the current, partial batch now (time batches end at the
    /// clock's now; count batches hold fewer than `n` samples). Returns the
    /// number of result values sent.
    pub fn flush_partial(&self) -> usize {
        let now = self.clock.now_millis();
        let closed = {
            let mut st = self.state.lock();
            let start = st.batch_start_ms.take().unwrap_or(now);
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
                let unit = match f {
                    AggFn::Count => MetricUnit::Count,
                    _ => c.unit,
                };
                // A function from code may panic too: that result is lost and counted.
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let value = g.value(f, &g.samples);
                    match &self.sink {
                        AggregateSink::Collector(col) => {
                            // The result is in its source's unit (a timer's
                            // p95 in milliseconds): exports convert it as
                            // they convert the source.
                            col.describe(&name, MetricType::Gauge, Some(unit), "");
                            record_gauge(&**col, &name, value, &tags);
                        }
                        AggregateSink::Stream(hub) => {
                            let mut v =
                                MetricValue::new(&name, value, MetricType::Gauge, unit, &tags);
                            v.timestamp = to_datetime(c.end_ms);
                            v.metadata.insert("aggregation".into(), f.name());
                            v.metadata.insert(
                                "window_start".into(),
                                to_datetime(c.start_ms).to_rfc3339(),
                            );
                            v.metadata.insert("samples".into(), g.count.to_string());
                            hub.publish(&v);
                        }
                    }
                }));
                match outcome {
                    Ok(()) => sent += 1,
                    Err(_) => {
                        self.sink_panics.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            metric = %name,
                            "an aggregation function or sink panicked; result lost"
                        );
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

/// Records `value` into the gauge `name`/`tags` of `col`, or counts why it
/// cannot (a function's name that is no metric name, a value that is not
/// finite).
fn record_gauge(col: &dyn MetricCollector, name: &str, value: f64, tags: Tags<'_>) {
    let recorded = Key::new(name, tags)
        .and_then(|key| Measurement::new(&key, Value::Gauge(value)).map(|m| col.record(&m)));
    if let Err(reason) = recorded {
        col.reject(reason);
    }
}

impl MetricCollector for StreamAggregator {
    fn record(&self, m: &Measurement<'_>) {
        let key = m.key();
        if key.name() != self.spec.metric {
            return;
        }
        let unit = match m.value() {
            Value::GaugeDelta(_) | Value::Success | Value::Failure => return,
            Value::Timer(_) => Some(MetricUnit::Milliseconds),
            _ => None,
        };
        self.offer(m.value().as_f64(), &key.sorted_tags(), unit);
    }
}
