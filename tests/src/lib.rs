//! The conformance suite of the metrics facade: one set of tests, written
//! once against the protocol traits, run against every backend so they
//! cannot drift apart.
//!
//! A backend joins the suite by implementing [`Harness`] (how to get its
//! collector and how to read back what reached it) and invoking
//! [`conformance_suite!`] in a test file:
//!
//! ```
//! use metrics_tests::{CapturingCollector, Harness};
//! use metrics_protocol::MetricCollector;
//!
//! let h = CapturingCollector::new();
//! h.collector().record_counter("jobs", 2.0, &[("queue", "a")]);
//! assert_eq!(h.counter("jobs", &[("queue", "a")]), Some(2.0));
//! ```
//!
//! [`CapturingCollector`] is the simplest test double that can fail: it
//! applies the protocol's validation rules and keeps every accepted call.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use metrics_kit::DropCounters;
use metrics_protocol::validate::{self, SortedTags};
use metrics_protocol::{
    BackendHealth, DropReason, MetricCollector, Metrics, MetricsError, PerformanceTimer,
    SuccessFailureTracker, Tags,
};
use parking_lot::Mutex;

pub mod suite;
pub mod udp;

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../README.md")]
pub mod readme {}

/// How the suite drives one backend and reads back what reached it.
pub trait Harness: Send + Sync {
    /// The collector under test.
    fn collector(&self) -> Arc<dyn MetricCollector>;

    /// The backend as the [`Metrics`] handle a library holds (collector and
    /// tracker): timings and outcomes are recorded through it.
    fn metrics(&self) -> Metrics;

    /// The backend's query side, for backends that answer queries.
    fn queries(&self) -> Option<Queries> {
        None
    }

    /// Successes of `operation` recorded with exactly `tags` (any order).
    /// By default read back as the counter `<operation>.success`, the form
    /// outcomes take on the wire.
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.counter(&format!("{operation}.success"), tags)
            .map_or(0, |v| v as u64)
    }

    /// Failures of `operation` of kind `error_type` recorded with exactly
    /// `tags`. By default read back as the counter `<operation>.failure`
    /// tagged `error_type` too.
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        let mut all = tags.to_vec();
        all.push(("error_type", error_type));
        self.counter(&format!("{operation}.failure"), &all)
            .map_or(0, |v| v as u64)
    }

    /// Waits until everything recorded so far can be read back (flush, then
    /// wait for a receiver). A no-op for synchronous backends.
    fn settle(&self) {}

    /// Total of the counter series `name`/`tags` (any tag order), `None` if absent.
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64>;

    /// Last value of the gauge series, `None` if absent.
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64>;

    /// Number of samples of the histogram or timer series, `None` if absent.
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64>;

    /// Number of distinct series of every kind that reached the backend.
    fn series_count(&self) -> usize;

    /// Samples dropped for `reason`, as the backend's health reports them.
    fn dropped(&self, reason: DropReason) -> u64 {
        self.collector()
            .health()
            .iter()
            .map(|h| h.dropped.get(&reason).copied().unwrap_or(0))
            .sum()
    }
}

/// The query side of a backend: what the suite asks of backends that keep
/// what they record.
#[derive(Clone)]
pub struct Queries {
    /// Success rates and failure breakdowns.
    pub tracker: Arc<dyn SuccessFailureTracker>,
    /// Timing statistics.
    pub timer: Arc<dyn PerformanceTimer>,
}

/// A series identity: name, sorted tags, and whether it is a counter.
type SeriesKey<'a> = (&'a str, &'a [(String, String)], bool);

/// Which call recorded a [`Captured`] sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallKind {
    /// `record_counter` / `increment`.
    Counter,
    /// `record_gauge`.
    Gauge,
    /// `adjust_gauge` / `decrement`.
    GaugeDelta,
    /// `record_histogram`.
    Histogram,
    /// `record_timer` (value in seconds).
    Timer,
}

/// One accepted call, as a [`CapturingCollector`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// Which call.
    pub kind: CallKind,
    /// Metric name.
    pub name: String,
    /// The value (seconds for timers).
    pub value: f64,
    /// Tags, sorted by key.
    pub tags: Vec<(String, String)>,
}

/// A collector that keeps every accepted call in memory, in order.
///
/// It applies exactly the protocol's validation rules, so it is also the
/// reference the suite checks real backends against.
#[derive(Default)]
pub struct CapturingCollector {
    calls: Mutex<Vec<Captured>>,
    drops: DropCounters,
}

impl CapturingCollector {
    /// An empty collector, in an `Arc` (the suite hands it out as a trait object).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every accepted call so far (a copy: reading never drains).
    pub fn calls(&self) -> Vec<Captured> {
        self.calls.lock().clone()
    }

    fn push(&self, kind: CallKind, name: &str, value: f64, tags: Tags<'_>) {
        let checked = validate::check_name(name)
            .and_then(|()| match kind {
                CallKind::Counter => validate::check_counter_increment(value),
                _ => validate::check_value(value),
            })
            .and_then(|()| SortedTags::new(tags));
        match checked {
            Ok(sorted) => self.calls.lock().push(Captured {
                kind,
                name: name.to_owned(),
                value,
                tags: sorted.to_owned_pairs(),
            }),
            Err(reason) => self.drops.record(reason),
        }
    }

    fn matching<'s>(
        calls: &'s [Captured],
        kinds: &'s [CallKind],
        name: &'s str,
        tags: Tags<'_>,
    ) -> impl Iterator<Item = &'s Captured> + 's {
        let want = sorted_owned(tags);
        calls
            .iter()
            .filter(move |c| kinds.contains(&c.kind) && c.name == name && c.tags == want)
    }
}

/// Tags as sorted owned pairs (for comparing series keys in tests).
pub fn sorted_owned(tags: Tags<'_>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

impl MetricCollector for CapturingCollector {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.push(CallKind::Counter, name, value, tags);
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.push(CallKind::Gauge, name, value, tags);
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.push(CallKind::GaugeDelta, name, delta, tags);
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.push(CallKind::Histogram, name, value, tags);
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.push(CallKind::Timer, name, duration.as_secs_f64(), tags);
    }
    fn health(&self) -> Vec<BackendHealth> {
        let mut h = BackendHealth::healthy("capturing");
        h.dropped = self.drops.snapshot();
        vec![h]
    }
}

/// Outcomes reach the reference as counters `<op>.success` and
/// `<op>.failure` (tagged `error_type`), as a StatsD daemon sees them; its
/// queries are not supported.
impl SuccessFailureTracker for CapturingCollector {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        self.push(
            CallKind::Counter,
            &format!("{operation}.success"),
            1.0,
            metadata,
        );
    }
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        let mut tags = metadata.to_vec();
        tags.push(("error_type", error_type));
        self.push(
            CallKind::Counter,
            &format!("{operation}.failure"),
            1.0,
            &tags,
        );
    }
    fn get_success_rate(&self, _: &str, _: Option<Duration>) -> Result<f64, MetricsError> {
        Err(MetricsError::Unsupported {
            operation: "get_success_rate",
            backend: "capturing",
        })
    }
    fn get_failure_breakdown(
        &self,
        _: &str,
        _: Option<Duration>,
    ) -> Result<std::collections::BTreeMap<String, u64>, MetricsError> {
        Err(MetricsError::Unsupported {
            operation: "get_failure_breakdown",
            backend: "capturing",
        })
    }
}

impl Harness for Arc<CapturingCollector> {
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.clone()
    }
    fn metrics(&self) -> Metrics {
        Metrics::new(self.clone())
    }

    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        let calls = self.calls.lock();
        let mut it =
            CapturingCollector::matching(&calls, &[CallKind::Counter], name, tags).peekable();
        it.peek()?;
        Some(it.map(|c| c.value).sum())
    }

    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        let calls = self.calls.lock();
        let mut value = None;
        for c in CapturingCollector::matching(
            &calls,
            &[CallKind::Gauge, CallKind::GaugeDelta],
            name,
            tags,
        ) {
            value = Some(match c.kind {
                CallKind::Gauge => c.value,
                _ => value.unwrap_or(0.0) + c.value,
            });
        }
        value
    }

    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        let calls = self.calls.lock();
        let n = CapturingCollector::matching(
            &calls,
            &[CallKind::Histogram, CallKind::Timer],
            name,
            tags,
        )
        .count() as u64;
        (n > 0).then_some(n)
    }

    fn series_count(&self) -> usize {
        let calls = self.calls.lock();
        let keys: BTreeSet<SeriesKey<'_>> = calls
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.tags.as_slice(),
                    c.kind == CallKind::Counter,
                )
            })
            .collect();
        keys.len()
    }
}
