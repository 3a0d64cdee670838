//! A recording test double (feature `testing`): hand a library a
//! [`Capture`]'s [`Metrics`] and assert on what it recorded, whichever
//! convenience it used to record it.
//!
//! ```
//! use metrics_protocol::Metrics;
//! use metrics_protocol::testing::Capture;
//!
//! fn serve(metrics: &Metrics) {
//!     metrics.counter("requests", &[("route", "/")]).increment();
//!     metrics.time("render", &[], || ());
//! }
//!
//! let capture = Capture::new();
//! serve(&capture.metrics());
//! serve(&capture.metrics());
//! assert_eq!(capture.counter("requests", &[("route", "/")]), 2.0);
//! assert_eq!(capture.timings("render", &[]).len(), 2);
//! assert_eq!(capture.successes("render", &[]), 2);
//! ```
//!
//! It is handed exactly what a backend is handed: [`Measurement`]s that
//! passed the protocol's [validation rules](crate::backend::validate), and
//! the reasons of those that did not (counted in its
//! [`health`](crate::MetricCollector::health) like a backend's).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::backend::{BackendHealth, DropReason, HealthStatus, Measurement, Value};
use crate::{MetricCollector, MetricType, MetricUnit, Metrics, Tags};

/// One measurement as it was handed over, owned, with its tags sorted by key.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Metric (or operation) name.
    pub name: String,
    /// Tags, sorted by key.
    pub tags: Vec<(String, String)>,
    /// What was recorded.
    pub value: Value,
    /// The error type of a [`Value::Failure`].
    pub error_type: Option<String>,
}

/// One `describe` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// Metric name.
    pub name: String,
    /// Its kind.
    pub kind: MetricType,
    /// Its unit.
    pub unit: Option<MetricUnit>,
    /// The help text.
    pub help: String,
}

#[derive(Debug, Default)]
struct State {
    records: Vec<Recorded>,
    described: Vec<Described>,
    dropped: BTreeMap<DropReason, u64>,
}

/// Keeps every measurement it is handed, in order: a [`MetricCollector`],
/// so [`Capture::metrics`] is a [`Metrics`] handle to give the code under
/// test.
#[derive(Debug, Default)]
pub struct Capture {
    state: Mutex<State>,
}

/// `tags` owned and sorted: the form [`Recorded::tags`] takes, for
/// comparing recorded tags with expected ones in any order.
///
/// ```
/// use metrics_protocol::testing::sorted_tags;
/// assert_eq!(
///     sorted_tags(&[("b", "2"), ("a", "1")]),
///     vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]
/// );
/// ```
pub fn sorted_tags(tags: Tags<'_>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

impl Capture {
    /// An empty capture, shared so that handles can be made from it.
    pub fn new() -> Arc<Capture> {
        Arc::new(Capture::default())
    }

    /// A [`Metrics`] handle that records into this capture.
    pub fn metrics(self: &Arc<Self>) -> Metrics {
        Metrics::new(self.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread leaves a consistent Vec: keep reading it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every measurement so far, in order.
    pub fn records(&self) -> Vec<Recorded> {
        self.state().records.clone()
    }

    /// Every description so far, in order.
    pub fn descriptions(&self) -> Vec<Described> {
        self.state().described.clone()
    }

    /// Forgets every measurement, description and drop.
    pub fn clear(&self) {
        *self.state() = State::default();
    }

    /// Recordings refused so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.state().dropped.get(&reason).copied().unwrap_or(0)
    }

    /// The values recorded into `name` with exactly `tags` (in any order).
    fn values(&self, name: &str, tags: Tags<'_>) -> Vec<(Value, Option<String>)> {
        let want = sorted_tags(tags);
        self.state()
            .records
            .iter()
            .filter(|r| r.name == name && r.tags == want)
            .map(|r| (r.value, r.error_type.clone()))
            .collect()
    }

    /// The total of the counter series `name` with exactly `tags` (in any
    /// order): 0 when nothing was added.
    pub fn counter(&self, name: &str, tags: Tags<'_>) -> f64 {
        self.values(name, tags)
            .into_iter()
            .map(|(v, _)| match v {
                Value::Counter(x) => x,
                _ => 0.0,
            })
            .sum()
    }

    /// The gauge series' value: the last value set plus the deltas since,
    /// `None` when the gauge was never touched.
    pub fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.values(name, tags)
            .into_iter()
            .fold(None, |value, (v, _)| match v {
                Value::Gauge(x) => Some(x),
                Value::GaugeDelta(d) => Some(value.unwrap_or(0.0) + d),
                _ => value,
            })
    }

    /// Every sample of the histogram series, in order.
    pub fn histogram(&self, name: &str, tags: Tags<'_>) -> Vec<f64> {
        self.values(name, tags)
            .into_iter()
            .filter_map(|(v, _)| match v {
                Value::Histogram(x) => Some(x),
                _ => None,
            })
            .collect()
    }

    /// Every duration of the timer series, in order.
    pub fn timings(&self, name: &str, tags: Tags<'_>) -> Vec<Duration> {
        self.values(name, tags)
            .into_iter()
            .filter_map(|(v, _)| match v {
                Value::Timer(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Successes of `operation` recorded with exactly `tags`.
    pub fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.values(operation, tags)
            .into_iter()
            .filter(|(v, _)| *v == Value::Success)
            .count() as u64
    }

    /// Failures of `operation` of kind `error_type` recorded with exactly `tags`.
    pub fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.values(operation, tags)
            .into_iter()
            .filter(|(v, e)| *v == Value::Failure && e.as_deref() == Some(error_type))
            .count() as u64
    }
}

impl MetricCollector for Capture {
    fn record(&self, m: &Measurement<'_>) {
        let key = m.key();
        let record = Recorded {
            name: key.name().to_owned(),
            tags: sorted_tags(key.tags()),
            value: m.value(),
            error_type: m.error_type().map(str::to_owned),
        };
        self.state().records.push(record);
    }

    fn describe(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>, help: &str) {
        self.state().described.push(Described {
            name: name.to_owned(),
            kind,
            unit,
            help: help.to_owned(),
        });
    }

    fn reject(&self, reason: DropReason) {
        *self.state().dropped.entry(reason).or_insert(0) += 1;
    }

    fn health(&self) -> Vec<BackendHealth> {
        let s = self.state();
        let mut h = BackendHealth::healthy("capture");
        h.dropped = s.dropped.clone();
        if !h.dropped.is_empty() {
            h.status = HealthStatus::Degraded;
        }
        vec![h]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_convenience_arrives_as_the_measurement_it_is_made_of() {
        let c = Capture::new();
        let m = c.metrics();
        m.increment("c", &[("b", "2"), ("a", "1")]);
        m.counter("c", &[("a", "1"), ("b", "2")]).add(2.0);
        m.record_gauge("g", 5.0, &[]);
        m.gauge("g", &[]).decrement();
        m.histogram("h", &[]).record(0.5);
        m.start("op", &[]).failure("timeout");
        assert_eq!(c.counter("c", &[("a", "1"), ("b", "2")]), 3.0);
        assert_eq!(c.gauge("g", &[]), Some(4.0));
        assert_eq!(c.histogram("h", &[]), [0.5]);
        assert_eq!(c.timings("op", &[]).len(), 1);
        assert_eq!(c.failures("op", "timeout", &[]), 1);
        assert_eq!(c.successes("op", &[]), 0);
    }

    #[test]
    fn refused_recordings_are_counted_not_kept() {
        let c = Capture::new();
        let m = c.metrics();
        m.record_counter("c", -1.0, &[]);
        m.record_gauge("g", f64::NAN, &[]);
        m.increment("", &[]);
        m.counter("c", &[]).add(f64::INFINITY);
        let refused = m.counter("", &[]);
        refused.increment();
        refused.increment();
        assert!(c.records().is_empty());
        assert_eq!(c.dropped(DropReason::NegativeCounter), 1);
        assert_eq!(c.dropped(DropReason::InvalidValue), 2);
        // A handle of a bad key refuses, and counts, every recording.
        assert_eq!(c.dropped(DropReason::InvalidName), 3);
        assert_eq!(c.health()[0].status, HealthStatus::Degraded);
    }
}
