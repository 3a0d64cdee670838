//! The whole suite, clock and queries included, against a small reference
//! backend written here: it keeps every measurement with the time of a
//! manual clock, answers the queries by scanning them, expires idle series
//! (except those a live handle is bound to), and reads back by series.
//! So every check of the kit, including those that return early on a
//! backend without a clock or queries, is shown to pass on a backend that
//! follows the rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use metrics_conformance::Harness;
use metrics_protocol::app::{
    MetricSummary, MetricValue, MetricsAggregator, TimingStats, rate_from_counts,
};
use metrics_protocol::backend::{BackendHealth, DropReason, InstrumentFn, Measurement, Value};
use metrics_protocol::testing::sorted_tags;
use metrics_protocol::{Key, MetricCollector, MetricType, MetricUnit, Metrics, MetricsError, Tags};

type SeriesId = (String, Vec<(String, String)>, MetricType);

#[derive(Clone)]
struct Entry {
    at_ms: u64,
    name: String,
    tags: Vec<(String, String)>,
    value: Value,
    error_type: Option<String>,
}

impl Entry {
    fn series(&self) -> SeriesId {
        (self.name.clone(), self.tags.clone(), self.value.kind())
    }
    fn is_outcome(&self) -> bool {
        matches!(self.value, Value::Success | Value::Failure)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const EXPIRY: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Timed {
    now_ms: AtomicU64,
    entries: Mutex<Vec<Entry>>,
    dropped: Mutex<BTreeMap<DropReason, u64>>,
    bound: Mutex<Vec<(SeriesId, Weak<Bound>)>>,
}

struct Bound {
    backend: Weak<Timed>,
    name: String,
    tags: Vec<(String, String)>,
}

impl InstrumentFn for Bound {
    fn record(&self, value: Value) {
        if let Some(b) = self.backend.upgrade() {
            b.push(&self.name, self.tags.clone(), value, None);
        }
    }
    fn reject(&self, reason: DropReason) {
        if let Some(b) = self.backend.upgrade() {
            b.reject(reason);
        }
    }
}

impl Timed {
    fn push(&self, name: &str, tags: Vec<(String, String)>, value: Value, error: Option<&str>) {
        lock(&self.entries).push(Entry {
            at_ms: self.now_ms.load(Ordering::SeqCst),
            name: name.to_owned(),
            tags,
            value,
            error_type: error.map(str::to_owned),
        });
    }

    /// Removes the entries of series idle for `EXPIRY` or more that no
    /// live handle is bound to.
    fn expire(&self) {
        let now = self.now_ms.load(Ordering::SeqCst);
        let held: BTreeSet<SeriesId> = lock(&self.bound)
            .iter()
            .filter(|(_, w)| w.strong_count() > 0)
            .map(|(id, _)| id.clone())
            .collect();
        let mut entries = lock(&self.entries);
        let mut last: BTreeMap<SeriesId, u64> = BTreeMap::new();
        for e in entries.iter().filter(|e| !e.is_outcome()) {
            let t = last.entry(e.series()).or_default();
            *t = (*t).max(e.at_ms);
        }
        let idle: BTreeSet<SeriesId> = last
            .into_iter()
            .filter(|(id, t)| now - t >= EXPIRY.as_millis() as u64 && !held.contains(id))
            .map(|(id, _)| id)
            .collect();
        entries.retain(|e| e.is_outcome() || !idle.contains(&e.series()));
    }

    /// Entries of `name` recorded in the last `window` (all time for `None`).
    fn recent(&self, name: &str, window: Option<Duration>) -> Vec<Entry> {
        let now = self.now_ms.load(Ordering::SeqCst);
        let from = window.map_or(0, |w| now.saturating_sub(w.as_millis() as u64));
        lock(&self.entries)
            .iter()
            .filter(|e| e.name == name && e.at_ms >= from)
            .cloned()
            .collect()
    }

    fn series_entries(&self, name: &str, tags: Tags<'_>, kinds: &[MetricType]) -> Vec<Entry> {
        let want = sorted_tags(tags);
        lock(&self.entries)
            .iter()
            .filter(|e| {
                !e.is_outcome()
                    && e.name == name
                    && e.tags == want
                    && kinds.contains(&e.value.kind())
            })
            .cloned()
            .collect()
    }
}

/// A handle's view of the backend: `bind` needs the `Arc` to hand out
/// handles that hold it weakly.
struct Reference(Arc<Timed>);

impl MetricCollector for Reference {
    fn record(&self, m: &Measurement<'_>) {
        let key = m.key();
        self.0.push(
            key.name(),
            sorted_tags(key.tags()),
            m.value(),
            m.error_type(),
        );
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        let handle = Arc::new(Bound {
            backend: Arc::downgrade(&self.0),
            name: key.name().to_owned(),
            tags: sorted_tags(key.tags()),
        });
        let id = (handle.name.clone(), handle.tags.clone(), kind);
        lock(&self.0.bound).push((id, Arc::downgrade(&handle)));
        Some(handle)
    }

    fn reject(&self, reason: DropReason) {
        self.0.reject(reason)
    }

    fn health(&self) -> Vec<BackendHealth> {
        let mut h = BackendHealth::healthy("reference");
        h.dropped = lock(&self.0.dropped).clone();
        vec![h]
    }
}

impl Timed {
    fn reject(&self, reason: DropReason) {
        *lock(&self.dropped).entry(reason).or_default() += 1;
    }
}

fn unsupported(operation: &'static str) -> MetricsError {
    MetricsError::Unsupported {
        operation,
        backend: "reference",
    }
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl MetricsAggregator for Reference {
    fn metric_summary(
        &self,
        metric_name: &str,
        time_window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        let entries: Vec<Entry> = self
            .0
            .recent(metric_name, time_window)
            .into_iter()
            .filter(|e| !e.is_outcome())
            .collect();
        let Some(first) = entries.first() else {
            return Err(MetricsError::NoData(metric_name.to_owned()));
        };
        let kind = first.value.kind();
        let mut values: Vec<f64> = entries.iter().map(|e| e.value.as_f64()).collect();
        let series = entries
            .iter()
            .map(|e| e.tags.clone())
            .collect::<BTreeSet<_>>()
            .len();
        let sum: f64 = values.iter().sum();
        let last = (kind == MetricType::Gauge).then(|| values[values.len() - 1]);
        values.sort_by(f64::total_cmp);
        let distribution = matches!(kind, MetricType::Histogram | MetricType::Timer);
        let q = |p: f64| distribution.then(|| quantile(&values, p));
        Ok(MetricSummary {
            name: metric_name.to_owned(),
            metric_type: kind,
            unit: if kind == MetricType::Timer {
                MetricUnit::Milliseconds
            } else {
                MetricUnit::Count
            },
            series,
            count: values.len() as u64,
            sum,
            avg: sum / values.len() as f64,
            min: values[0],
            max: values[values.len() - 1],
            last,
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            window: time_window,
            covers: time_window,
            quantiles_cover: None,
        })
    }

    fn metrics_by_tag<'a>(&self, _: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("metrics_by_tag"))
    }

    fn top_metrics(&self, _: MetricType, _: usize) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("top_metrics"))
    }

    fn success_rate(&self, operation: &str, window: Option<Duration>) -> Result<f64, MetricsError> {
        let successes = self
            .0
            .recent(operation, window)
            .iter()
            .filter(|e| e.value == Value::Success)
            .count() as u64;
        rate_from_counts(
            operation,
            successes,
            &self.failure_breakdown(operation, window)?,
        )
    }

    fn failure_breakdown(
        &self,
        operation: &str,
        window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        let mut out = BTreeMap::new();
        for e in self.0.recent(operation, window) {
            if let (Value::Failure, Some(t)) = (e.value, e.error_type) {
                *out.entry(t).or_default() += 1;
            }
        }
        Ok(out)
    }

    fn timing_stats(
        &self,
        operation: &str,
        window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        let mut ms: Vec<f64> = self
            .0
            .recent(operation, window)
            .iter()
            .filter(|e| matches!(e.value, Value::Timer(_)))
            .map(|e| e.value.as_f64())
            .collect();
        if ms.is_empty() {
            return Err(MetricsError::NoData(operation.to_owned()));
        }
        ms.sort_by(f64::total_cmp);
        Ok(TimingStats::from_millis(
            ms.len() as u64,
            ms.iter().sum(),
            ms[0],
            ms[ms.len() - 1],
            [0.5, 0.9, 0.95, 0.99].map(|q| quantile(&ms, q)),
        ))
    }
}

struct ReferenceHarness(Arc<Reference>);

impl ReferenceHarness {
    fn new() -> Self {
        let timed = Arc::new(Timed::default());
        timed.now_ms.store(1_800_000_000_000, Ordering::SeqCst);
        ReferenceHarness(Arc::new(Reference(timed)))
    }
}

impl Harness for ReferenceHarness {
    fn metrics(&self) -> Metrics {
        Metrics::new(self.0.clone())
    }
    fn settle(&self) {
        self.0.0.expire();
    }
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        let e = self.0.0.series_entries(name, tags, &[MetricType::Counter]);
        (!e.is_empty()).then(|| e.iter().map(|e| e.value.as_f64()).sum())
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.0
            .0
            .series_entries(name, tags, &[MetricType::Gauge])
            .iter()
            .fold(None, |acc, e| match e.value {
                Value::Gauge(v) => Some(v),
                Value::GaugeDelta(d) => Some(acc.unwrap_or(0.0) + d),
                _ => acc,
            })
    }
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        let kinds = [MetricType::Histogram, MetricType::Timer];
        let n = self.0.0.series_entries(name, tags, &kinds).len() as u64;
        (n > 0).then_some(n)
    }
    fn series_count(&self) -> usize {
        lock(&self.0.0.entries)
            .iter()
            .filter(|e| !e.is_outcome())
            .map(Entry::series)
            .collect::<BTreeSet<_>>()
            .len()
    }
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        let want = sorted_tags(tags);
        lock(&self.0.0.entries)
            .iter()
            .filter(|e| e.name == operation && e.tags == want && e.value == Value::Success)
            .count() as u64
    }
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        let want = sorted_tags(tags);
        lock(&self.0.0.entries)
            .iter()
            .filter(|e| {
                e.name == operation
                    && e.tags == want
                    && e.value == Value::Failure
                    && e.error_type.as_deref() == Some(error_type)
            })
            .count() as u64
    }
    fn advance(&self, by: Duration) -> bool {
        self.0
            .0
            .now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        true
    }
    fn idle_expiry(&self) -> Option<Duration> {
        Some(EXPIRY)
    }
    fn queries(&self) -> Option<Arc<dyn MetricsAggregator>> {
        Some(self.0.clone())
    }
}

metrics_conformance::conformance_suite!(ReferenceHarness::new());

/// The same backend with its clock taken away: the clock and expiry checks
/// return early instead of failing.
mod without_a_clock {
    use super::*;

    struct NoClock(ReferenceHarness);

    impl Harness for NoClock {
        fn metrics(&self) -> Metrics {
            self.0.metrics()
        }
        fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
            self.0.counter(name, tags)
        }
        fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
            self.0.gauge(name, tags)
        }
        fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
            self.0.samples(name, tags)
        }
        fn series_count(&self) -> usize {
            self.0.series_count()
        }
        fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
            self.0.successes(operation, tags)
        }
        fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
            self.0.failures(operation, error_type, tags)
        }
        fn idle_expiry(&self) -> Option<Duration> {
            Some(EXPIRY)
        }
        fn queries(&self) -> Option<Arc<dyn MetricsAggregator>> {
            self.0.queries()
        }
    }

    metrics_conformance::conformance_suite!(NoClock(ReferenceHarness::new()));
}

/// A backend that forgets nothing with time fails the window and expiry
/// checks: they are not vacuous on a backend that has a clock.
#[test]
fn the_clock_checks_fail_a_backend_that_ignores_time() {
    struct Timeless(ReferenceHarness);
    impl Harness for Timeless {
        fn metrics(&self) -> Metrics {
            self.0.metrics()
        }
        fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
            self.0.counter(name, tags)
        }
        fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
            self.0.gauge(name, tags)
        }
        fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
            self.0.samples(name, tags)
        }
        fn series_count(&self) -> usize {
            self.0.series_count()
        }
        fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
            self.0.successes(operation, tags)
        }
        fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
            self.0.failures(operation, error_type, tags)
        }
        // Claims a clock and an expiry, but neither moves time nor expires.
        fn advance(&self, _: Duration) -> bool {
            true
        }
        fn idle_expiry(&self) -> Option<Duration> {
            Some(EXPIRY)
        }
        fn queries(&self) -> Option<Arc<dyn MetricsAggregator>> {
            self.0.queries()
        }
    }
    let checks: [fn(&dyn Harness); 5] = [
        metrics_conformance::counter::idle_series_expire,
        metrics_conformance::handles::bound_series_never_expire,
        metrics_conformance::queries::success_rate_forgets_outcomes_older_than_the_window,
        metrics_conformance::queries::counter_summary_in_a_window,
        metrics_conformance::queries::timing_stats_in_a_window,
    ];
    for (i, check) in checks.into_iter().enumerate() {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check(&Timeless(ReferenceHarness::new()))
        }));
        assert!(caught.is_err(), "check {i} passed a backend without time");
    }
}
