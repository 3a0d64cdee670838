//! The snapshot model: a read-only view of every series a backend holds,
//! what an encoder (the `metrics-exposition` crate: Prometheus text,
//! OpenMetrics, JSON, CSV) reads. A backend implements [`Snapshots`]; each
//! [`Snapshot`] it lends names its series ([`SeriesView`]: name, tags,
//! kind) and reads each one in place ([`Reading`]: counter total, gauge
//! value, distribution count, sum, min, max, and its [`Distribution`] for
//! quantiles and bucket counts), so an encoder copies nothing it does not
//! write.
//!
//! ```
//! use std::collections::BTreeMap;
//! use metrics_protocol::MetricType;
//! use metrics_protocol::backend::DropReason;
//! use metrics_query::snapshot::{Description, Reading, SeriesView, Snapshot, Snapshots};
//!
//! /// One counter, held as a backend would.
//! struct One {
//!     tags: Vec<(Box<str>, Box<str>)>,
//! }
//!
//! impl Snapshot for One {
//!     fn len(&self) -> usize {
//!         1
//!     }
//!     fn series(&self, index: usize) -> Option<SeriesView<'_>> {
//!         (index == 0).then(|| SeriesView { name: "jobs", tags: &self.tags, kind: MetricType::Counter })
//!     }
//!     fn read(&self, index: usize, read: &mut dyn FnMut(&Reading<'_>)) {
//!         if index == 0 {
//!             read(&Reading::total(3.0, 3, 3.0));
//!         }
//!     }
//!     fn description(&self, _: &str) -> Option<Description<'_>> {
//!         None
//!     }
//!     fn dropped(&self) -> BTreeMap<DropReason, u64> {
//!         BTreeMap::new()
//!     }
//!     fn overflowed(&self) -> Vec<String> {
//!         Vec::new()
//!     }
//! }
//!
//! impl Snapshots for One {
//!     fn snapshot(&self) -> Box<dyn Snapshot + '_> {
//!         Box::new(One { tags: self.tags.clone() })
//!     }
//! }
//!
//! let backend = One { tags: vec![("queue".into(), "mail".into())] };
//! let snap = backend.snapshot();
//! let mut total = 0.0;
//! snap.read(0, &mut |r| total = r.value);
//! assert_eq!((snap.series(0).unwrap().name, total), ("jobs", 3.0));
//! ```

use std::collections::BTreeMap;

use metrics_protocol::backend::DropReason;
use metrics_protocol::{MetricType, MetricUnit};

/// A backend whose series can be read as a whole: what an exporter is
/// built over. The memory backend implements it; a write-only backend
/// (StatsD) does not.
pub trait Snapshots: Send + Sync {
    /// A view of every series as it is now. It may hold references into
    /// the backend (never its locks: each series is locked only while
    /// [`Snapshot::read`] reads it).
    fn snapshot(&self) -> Box<dyn Snapshot + '_>;
}

/// A read-only view of every series of a backend at one moment: indexed
/// `0..len()`, grouped by name (the series of one name and kind are
/// adjacent or at least ordered by tags), tags sorted by key.
pub trait Snapshot {
    /// How many series the snapshot holds.
    fn len(&self) -> usize;

    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identity of series `index`: name, tags (sorted by key), kind;
    /// `None` past the end.
    fn series(&self, index: usize) -> Option<SeriesView<'_>>;

    /// Reads series `index` (under the backend's lock of that series, if
    /// any) and calls `read` once with its values; not at all past the
    /// end.
    fn read(&self, index: usize, read: &mut dyn FnMut(&Reading<'_>));

    /// What `describe` said about the metric `name` (help text, unit).
    fn description(&self, name: &str) -> Option<Description<'_>>;

    /// Recordings the backend dropped, by reason.
    fn dropped(&self) -> BTreeMap<DropReason, u64>;

    /// The names that reached the backend's cardinality limit.
    fn overflowed(&self) -> Vec<String>;
}

/// The identity of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesView<'a> {
    /// The metric name as recorded (`http.requests`).
    pub name: &'a str,
    /// The tags, sorted by key.
    pub tags: &'a [(Box<str>, Box<str>)],
    /// The instrument kind.
    pub kind: MetricType,
}

/// The values of one series, read in place.
#[derive(Clone, Copy)]
pub struct Reading<'a> {
    /// A counter's total, a gauge's value; a distribution's sum.
    pub value: f64,
    /// Samples recorded (increments, values set, observations).
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest sample (`None` before the first).
    pub min: Option<f64>,
    /// The largest sample (`None` before the first).
    pub max: Option<f64>,
    /// A distribution's all-time quantiles and bucket counts (histograms
    /// and timers only).
    pub distribution: Option<&'a dyn Distribution>,
}

impl Reading<'_> {
    /// A reading without a distribution, its min and max unknown: a
    /// counter total or gauge value, how many samples made it, their sum.
    pub fn total(value: f64, count: u64, sum: f64) -> Self {
        Reading {
            value,
            count,
            sum,
            min: None,
            max: None,
            distribution: None,
        }
    }

    /// The mean sample (`None` before the first).
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

impl std::fmt::Debug for Reading<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("value", &self.value)
            .field("count", &self.count)
            .field("sum", &self.sum)
            .field("min", &self.min)
            .field("max", &self.max)
            .field("distribution", &self.distribution.is_some())
            .finish()
    }
}

/// A distribution's all-time samples, lent while its series is read.
pub trait Distribution {
    /// The `q`-quantile (0 ≤ q ≤ 1) within the backend's accuracy and
    /// between the exact min and max; `None` when empty.
    fn quantile(&self, q: f64) -> Option<f64>;

    /// Cumulative counts of the samples, each multiplied by `scale` (the
    /// factor from the recorded unit to the exported one), at most each of
    /// `bounds` (ascending): one count per bound, zeros when empty.
    fn cumulative_counts(&self, scale: f64, bounds: &[f64]) -> Vec<u64>;
}

/// What `describe` said about a metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Description<'a> {
    /// The help text.
    pub help: Option<&'a str>,
    /// The unit it is recorded in.
    pub unit: Option<MetricUnit>,
}
