//! [`AggregationSet`]: the aggregations of an agent, found by name without
//! a lock.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics_protocol::backend::{BackendHealth, HealthStatus, Measurement, Value};
use metrics_protocol::{MetricCollector, MetricUnit};
use parking_lot::Mutex;

use super::aggregator::StreamAggregator;
use crate::interest::Interest;

/// The aggregators of an agent: a measurement reaches each aggregator of
/// its name. A one-word filter of the aggregated names is read first, then
/// the list, without a lock (an atomic snapshot); with none registered, a
/// measurement costs that one load.
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
            .rebuild(v.iter().map(|a| Some(a.spec().metric.as_str())));
        self.list.store(Arc::new(v));
    }

    /// Number of aggregators.
    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    /// The one-word filter's answer for `name` (false positives, never
    /// false negatives): what the tap's observer reads first, before
    /// [`offer`](Self::offer).
    #[inline]
    pub(crate) fn may_want(&self, name: &str) -> bool {
        self.interest.may_want(name)
    }

    /// Hands a measurement to each aggregator of its name. Counters, gauge
    /// values, histogram samples and timers (in milliseconds) are samples;
    /// a gauge delta and an outcome are not.
    #[inline(never)]
    pub(crate) fn offer(&self, m: &Measurement<'_>) {
        let unit = match m.value() {
            // A delta is not a sample of the gauge's values, and an outcome
            // is not a sample of the operation's metric.
            Value::GaugeDelta(_) | Value::Success | Value::Failure => return,
            Value::Timer(_) => Some(MetricUnit::Milliseconds),
            _ => None,
        };
        let key = m.key();
        let list = self.list.load();
        let mut of_name = list
            .iter()
            .filter(|a| a.spec().metric == key.name())
            .peekable();
        if of_name.peek().is_none() {
            return;
        }
        let tags = key.sorted_tags();
        let value = m.value().as_f64();
        for a in of_name {
            a.offer(value, &tags, unit);
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Vec<Arc<StreamAggregator>>> {
        self.list.load_full()
    }

    /// Closes every time batch that is over.
    pub fn tick(&self) -> usize {
        self.snapshot().iter().map(|a| a.tick()).sum()
    }

    /// Sends every partial batch. An aggregator may feed another (its
    /// results recorded into an agent holding both), so this repeats until
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

/// The set as a collector of its own: each measurement recorded into it
/// goes to the aggregators of its name.
impl MetricCollector for AggregationSet {
    fn record(&self, m: &Measurement<'_>) {
        if self.may_want(m.key().name()) {
            self.offer(m);
        }
    }

    fn health(&self) -> Vec<BackendHealth> {
        self.report().into_iter().collect()
    }
}
