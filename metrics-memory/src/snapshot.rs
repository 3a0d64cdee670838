//! The backend as a [`Snapshots`] source: every series of the registry
//! (grouped by name, sorted by tags) and every outcome count (as counters
//! `<op>.success` and `<op>.failure{error_type=...}`), read in place under
//! each series' lock, distributions lending their all-time sketch.

use std::collections::BTreeMap;
use std::sync::Arc;

use metrics_protocol::MetricType;
use metrics_protocol::MetricUnit;
use metrics_protocol::backend::DropReason;
use metrics_query::snapshot::{self, Distribution, Reading, SeriesView, Snapshot, Snapshots};

use crate::MemoryMetrics;
use crate::series::Series;
use crate::sketch::Sketch;
use crate::stats::Stats;

/// What `describe` said about a metric.
#[derive(Debug, Clone, Default)]
pub(crate) struct Description {
    /// The help text.
    pub(crate) help: Option<String>,
    /// The unit the metric is recorded in.
    pub(crate) unit: Option<MetricUnit>,
}

/// One outcome count as a counter series.
struct Outcome {
    name: String,
    tags: Box<[(Box<str>, Box<str>)]>,
    count: u64,
}

/// The memory backend's [`Snapshot`]: the registry's series (each read
/// when asked), the outcome counts and the descriptions, as of
/// [`Snapshots::snapshot`].
struct MemorySnapshot<'m> {
    memory: &'m MemoryMetrics,
    series: Vec<Arc<Series>>,
    outcomes: Vec<Outcome>,
    descriptions: BTreeMap<String, Description>,
}

impl Snapshots for MemoryMetrics {
    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        self.maintain();
        let mut outcomes = Vec::new();
        for op in self.tracker.names() {
            for (tags, ok, failures) in self.tracker.outcomes_by_tags(&op) {
                let tags: BTreeMap<String, String> = tags.into_iter().collect();
                outcomes.push(Outcome {
                    name: format!("{op}.success"),
                    tags: boxed(&tags),
                    count: ok,
                });
                for (err, n) in failures {
                    let mut tags = tags.clone();
                    tags.insert("error_type".into(), err);
                    outcomes.push(Outcome {
                        name: format!("{op}.failure"),
                        tags: boxed(&tags),
                        count: n,
                    });
                }
            }
        }
        Box::new(MemorySnapshot {
            memory: self,
            series: self.registry.all_by_name(),
            outcomes,
            descriptions: self.descriptions(),
        })
    }
}

fn boxed(tags: &BTreeMap<String, String>) -> Box<[(Box<str>, Box<str>)]> {
    tags.iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

/// A distribution's all-time sketch and exact statistics, lent under its
/// series lock.
struct Lent<'a> {
    stats: &'a Stats,
    sketch: &'a Sketch,
}

impl Distribution for Lent<'_> {
    /// The nearest-rank `q`-quantile, clamped to the exact min and max
    /// (what [`Stats::quantile`] answers for a copy).
    fn quantile(&self, q: f64) -> Option<f64> {
        let v = self.sketch.quantile(q)?;
        if self.stats.count == 0 {
            return Some(v);
        }
        Some(v.clamp(self.stats.min, self.stats.max))
    }

    fn cumulative_counts(&self, scale: f64, bounds: &[f64]) -> Vec<u64> {
        let t = self.stats;
        if t.count > 0 {
            self.sketch.cumulative_counts(t.min, t.max, scale, bounds)
        } else {
            vec![0; bounds.len()]
        }
    }
}

impl Snapshot for MemorySnapshot<'_> {
    fn len(&self) -> usize {
        self.series.len() + self.outcomes.len()
    }

    fn series(&self, index: usize) -> Option<SeriesView<'_>> {
        if let Some(s) = self.series.get(index) {
            return Some(SeriesView {
                name: &s.name,
                tags: &s.tags,
                kind: s.kind,
            });
        }
        let o = self.outcomes.get(index - self.series.len())?;
        Some(SeriesView {
            name: &o.name,
            tags: &o.tags,
            kind: MetricType::Counter,
        })
    }

    fn read(&self, index: usize, read: &mut dyn FnMut(&Reading<'_>)) {
        if let Some(s) = self.series.get(index) {
            let dist = s.is_distribution();
            s.read_with(|value, t, sketch| {
                let lent = sketch
                    .filter(|_| dist)
                    .map(|sketch| Lent { stats: t, sketch });
                read(&Reading {
                    value: if dist { t.sum } else { value },
                    count: t.count,
                    sum: t.sum,
                    min: (t.count > 0).then_some(t.min),
                    max: (t.count > 0).then_some(t.max),
                    distribution: lent.as_ref().map(|l| l as &dyn Distribution),
                });
            });
        } else if let Some(o) = self.outcomes.get(index - self.series.len()) {
            let n = o.count as f64;
            read(&Reading::total(n, o.count, n));
        }
    }

    fn description(&self, name: &str) -> Option<snapshot::Description<'_>> {
        self.descriptions.get(name).map(|d| snapshot::Description {
            help: d.help.as_deref(),
            unit: d.unit,
        })
    }

    fn dropped(&self) -> BTreeMap<DropReason, u64> {
        self.memory.shared.drops.snapshot()
    }

    fn overflowed(&self) -> Vec<String> {
        self.memory.registry.overflowed()
    }
}
