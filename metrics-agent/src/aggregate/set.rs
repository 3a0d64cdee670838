//! [`AggregationSet`]: the aggregations of a system, found by name without
//! a lock.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics_protocol::validate::SortedTags;
use metrics_protocol::{BackendHealth, HealthStatus, MetricUnit};
use parking_lot::Mutex;

use super::aggregator::StreamAggregator;
use crate::recorded::{Interest, RecordKind, Recorded, collector_via_take};

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
            .rebuild(v.iter().map(|a| Some(a.spec().metric.as_str())));
        self.list.store(Arc::new(v));
    }

    /// Number of aggregators.
    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    /// The one-word filter's answer for `name` (false positives, never
    /// false negatives): inlined on the recording path, before
    /// [`wants`](Self::wants).
    #[inline]
    pub(crate) fn may_want(&self, name: &str) -> bool {
        self.interest.may_want(name)
    }

    /// Whether some aggregator takes samples named `name`.
    pub(crate) fn wants(&self, name: &str) -> bool {
        if !self.interest.may_want(name) {
            return false;
        }
        let list = self.list.load();
        !list.is_empty() && list.iter().any(|a| a.spec().metric == name)
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
            .filter(|a| a.spec().metric == sample.name)
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

impl AggregationSet {
    fn take(&self, sample: Recorded<'_>) {
        if self.wants(sample.name) {
            if let Ok(tags) = sample.check() {
                self.offer(&sample, &tags);
            }
        }
    }
}

// The set as a collector of its own: validates each call, then offers it.
collector_via_take! {
    AggregationSet;
    fn health(&self) -> Vec<BackendHealth> {
        self.report().into_iter().collect()
    }
}
