//! A [`metrics::Recorder`] over any collector of the facade: every crate
//! instrumented with the `metrics` 0.24 macros (`counter!`, `gauge!`,
//! `histogram!`, `describe_*!`) records into our backends (the memory
//! store, StatsD, a `Fanout`, the agent's collector) without being
//! re-instrumented.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_bridge::Recorder;
//! use metrics_memory::MemoryMetrics;
//!
//! let memory = Arc::new(MemoryMetrics::new());
//! let recorder = Recorder::new(memory.clone());
//!
//! // Scoped to this thread and closure (tests); `recorder.install()` sets it
//! // for the whole process instead.
//! recorder.in_scope(|| {
//!     metrics::counter!("http.requests", "method" => "GET").increment(3);
//!     metrics::gauge!("queue.depth").set(7.5);
//!     metrics::histogram!("db.query.seconds", "table" => "users").record(0.012);
//! });
//!
//! assert_eq!(memory.counter_value("http.requests", &[("method", "GET")]), Some(3.0));
//! assert_eq!(memory.gauge_value("queue.depth", &[]), Some(7.5));
//! assert_eq!(memory.distribution("db.query.seconds", &[("table", "users")]).unwrap().count, 1);
//! ```
//!
//! # Mapping
//!
//! | `metrics` call | what our collector receives |
//! | --- | --- |
//! | registration (`counter!(..)`, ...) | one [`Key`](metrics_protocol::Key) of the name and the labels as tags, built (checked and hashed) once and kept by the handle; labels are order-insensitive as our tags (the same series whatever the label order) |
//! | `counter!(..).increment(n)` | a [`Value::Counter`]`(n as f64)` measurement; above 2^53 the `u64` is rounded to the nearest `f64` |
//! | `counter!(..).absolute(n)` | adds `n - m`, where `m` is the largest absolute value this series got through the bridge so far (0 at first). A repeat of `m` adds nothing. A smaller value (a reset or a late, out-of-order report) would be a negative increment: it is refused and counted by the collector as `negative_counter`, as our own calls' are; the mark stays at `m`. Increments are not part of the mark: a counter fed both ways totals increments plus the largest absolute, where the `metrics` crate's own atomic counter would keep the larger of the two |
//! | `gauge!(..).set(v)` / `.increment(d)` / `.decrement(d)` | [`Value::Gauge`]`(v)` / [`Value::GaugeDelta`]`(d)` / [`Value::GaugeDelta`]`(-d)` |
//! | `histogram!(..).record(v)` | [`Value::Histogram`]`(v)` |
//! | `histogram!(..).record_many(v, n)` | [`Value::Histogram`]`(v)` `n` times (our collectors take one sample per measurement) |
//! | `describe_counter!` / `describe_gauge!` / `describe_histogram!` | [`MetricCollector::describe`] with kind counter / gauge / histogram, the unit (table below) and the description; a backend keeps it for its exports (help text, unit) or ignores it |
//! | metadata (target, level, module path) | not used |
//! | a name or label that breaks our rules (empty or control characters, too many labels, one key twice, ...) | no key: every sample of it is refused and counted by the collector ([`MetricCollector::reject`]) under the same reason as for our own calls |
//! | a sample that breaks our rules (NaN, infinite) | the same: refused and counted |
//!
//! Units: `count`, `percent`, `seconds`, `milliseconds`, `microseconds` and
//! `bytes` map to the [`MetricUnit`] of the same name, `kibibytes` to
//! `Kilobytes`, `mebibytes` to `Megabytes` (ours are binary too),
//! `count_per_second` to `OperationsPerSecond`. Units we have no equivalent
//! for (`nanoseconds`, `gibibytes`, `tebibytes`, the bits-per-second family)
//! are passed as no unit; the description is kept. Values are never
//! converted.
//!
//! What differs from recording the same values by our own calls (and so
//! between the `replay` and `export` examples' outputs): the `metrics` crate
//! has no timer kind, so durations recorded with `histogram!` are histograms
//! in whatever unit the caller chose, not timers in milliseconds; counters
//! take whole `u64` increments, so a fractional or negative increment cannot
//! be expressed at all. Everything else (values, tags, counts, quantiles)
//! is the same.
//!
//! # Handles and the cost of a call
//!
//! `register_*` (which the macros call on every use) looks the `metrics`
//! key up in a cache of handles and returns a clone of the one registered
//! first. Each handle holds our key, built once: a record is one
//! [`Measurement`] of it, with no name or tag checked or hashed again, and
//! when the collector [binds](MetricCollector::bind) the series (the memory
//! backend, a fan-out of backends that do) the value goes straight to the
//! series' storage, with no lookup per sample. A handle kept by the caller
//! (`let c = counter!(..)`) skips even the cache.
//!
//! The cache holds up to [`Recorder::DEFAULT_CACHE_LIMIT`] keys per kind
//! ([`Recorder::with_cache_limit`]); past it, each registration builds a
//! new handle (recording still works, at the cost of building the key).
//! Absolute values need the per-series mark the cache keeps, so `absolute`
//! on a handle registered past the limit is dropped and counted in
//! [`BridgeStats::absolute_dropped`] rather than risk counting twice.
//!
//! Cached handles keep their series alive (a backend that expires idle
//! series keeps these), as bound handles do everywhere in the facade.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use metrics_protocol::backend::validate::MAX_TAGS;
use metrics_protocol::backend::{DropReason, InstrumentFn, Measurement, OwnedKey, Value};
use metrics_protocol::{MetricCollector, MetricType, MetricUnit, Tags};

/// Why [`Recorder::install`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The process already has a global `metrics` recorder (ours or
    /// another); `metrics` allows one per process.
    #[error("a global `metrics` recorder is already installed in this process")]
    AlreadyInstalled,
}

/// What the bridge itself counts (the backend counts everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgeStats {
    /// Keys held in the handle caches (all kinds).
    pub cached_keys: usize,
    /// Registrations past the cache limit (each bound a new handle).
    pub uncached_registrations: u64,
    /// `absolute` calls dropped because their handle was registered past
    /// the cache limit (no per-series mark to subtract).
    pub absolute_dropped: u64,
}

#[derive(Default)]
struct Stats {
    uncached: AtomicU64,
    absolute_dropped: AtomicU64,
}

/// A `metrics::Recorder` that records into one of our collectors.
///
/// Cheap to clone: clones share the collector, the handle caches and the
/// [`stats`](Recorder::stats), so keep a clone to read them after
/// [`install`](Recorder::install).
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    collector: Arc<dyn MetricCollector>,
    counters: Cache<CounterHandle>,
    gauges: Cache<GaugeHandle>,
    histograms: Cache<HistogramHandle>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Keys cached per kind (counters, gauges, histograms) by default.
    pub const DEFAULT_CACHE_LIMIT: usize = 100_000;

    /// A recorder over `collector` (any of ours: `Arc<MemoryMetrics>`, a
    /// `Fanout`, the agent's collector, ...).
    pub fn new(collector: Arc<dyn MetricCollector>) -> Self {
        Self::with_cache_limit(collector, Self::DEFAULT_CACHE_LIMIT)
    }

    /// A recorder that caches at most `limit` keys per kind (see the crate
    /// docs: past it, registration binds a new handle each time).
    pub fn with_cache_limit(collector: Arc<dyn MetricCollector>, limit: usize) -> Self {
        Recorder {
            inner: Arc::new(Inner {
                collector,
                counters: Cache::new(limit),
                gauges: Cache::new(limit),
                histograms: Cache::new(limit),
                stats: Arc::new(Stats::default()),
            }),
        }
    }

    /// The collector samples go to.
    pub fn collector(&self) -> &Arc<dyn MetricCollector> {
        &self.inner.collector
    }

    /// What the bridge has counted so far.
    pub fn stats(&self) -> BridgeStats {
        let i = &self.inner;
        BridgeStats {
            cached_keys: i.counters.len() + i.gauges.len() + i.histograms.len(),
            uncached_registrations: i.stats.uncached.load(Ordering::Relaxed),
            absolute_dropped: i.stats.absolute_dropped.load(Ordering::Relaxed),
        }
    }

    /// Installs this recorder for the whole process: from now on every
    /// `metrics` macro on any thread records into the collector. Keep a
    /// clone to read [`stats`](Recorder::stats).
    ///
    /// # Errors
    ///
    /// [`InstallError::AlreadyInstalled`] if a global recorder is already
    /// set (`metrics` allows one per process, for its lifetime).
    pub fn install(self) -> Result<(), InstallError> {
        metrics::set_global_recorder(self).map_err(|_| InstallError::AlreadyInstalled)
    }

    /// Runs `f` with this recorder in place of the global one, on this
    /// thread only (`metrics::with_local_recorder`): for tests, which may
    /// each use their own collector.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self, f)
    }

    fn describe(&self, key: &KeyName, kind: MetricType, unit: Option<Unit>, text: &str) {
        self.inner
            .collector
            .describe(key.as_str(), kind, unit.and_then(map_unit), text);
    }
}

/// Creates a [`Recorder`] over `collector` and installs it for the whole
/// process; returns a clone for [`Recorder::stats`].
///
/// # Errors
///
/// [`InstallError::AlreadyInstalled`] if a global recorder is already set.
pub fn install(collector: Arc<dyn MetricCollector>) -> Result<Recorder, InstallError> {
    let recorder = Recorder::new(collector);
    recorder.clone().install()?;
    Ok(recorder)
}

/// The [`MetricUnit`] of a `metrics` unit, if we have one (see the crate docs).
pub fn map_unit(unit: Unit) -> Option<MetricUnit> {
    Some(match unit {
        Unit::Count => MetricUnit::Count,
        Unit::Percent => MetricUnit::Percent,
        Unit::Seconds => MetricUnit::Seconds,
        Unit::Milliseconds => MetricUnit::Milliseconds,
        Unit::Microseconds => MetricUnit::Microseconds,
        Unit::Bytes => MetricUnit::Bytes,
        Unit::Kibibytes => MetricUnit::Kilobytes,
        Unit::Mebibytes => MetricUnit::Megabytes,
        Unit::CountPerSecond => MetricUnit::OperationsPerSecond,
        Unit::Nanoseconds
        | Unit::Gibibytes
        | Unit::Tebibytes
        | Unit::TerabitsPerSecond
        | Unit::GigabitsPerSecond
        | Unit::MegabitsPerSecond
        | Unit::KilobitsPerSecond
        | Unit::BitsPerSecond => return None,
    })
}

/// Calls `f` with the key's name and its labels as borrowed tags (on the
/// stack). More than `MAX_TAGS` labels are passed as a too-long slice, so
/// the key is refused for too many tags as for our own calls.
fn with_tags<R>(key: &Key, f: impl FnOnce(&str, Tags<'_>) -> R) -> R {
    let mut buf: [(&str, &str); MAX_TAGS + 1] = [("", ""); MAX_TAGS + 1];
    let mut n = 0;
    for (slot, label) in buf.iter_mut().zip(key.labels()) {
        *slot = (label.key(), label.value());
        n += 1;
    }
    f(key.name(), &buf[..n])
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, MetricType::Counter, unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, MetricType::Gauge, unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, MetricType::Histogram, unit, &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Counter {
        let i = &self.inner;
        let handle = i
            .counters
            .get_or_bind(key, &i.stats, |cached| CounterHandle {
                series: Series::new(&i.collector, key, MetricType::Counter),
                mark: AtomicU64::new(0),
                uncached: (!cached).then(|| i.stats.clone()),
            });
        metrics::Counter::from_arc(handle)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        let i = &self.inner;
        let handle = i.gauges.get_or_bind(key, &i.stats, |_| {
            GaugeHandle(Series::new(&i.collector, key, MetricType::Gauge))
        });
        metrics::Gauge::from_arc(handle)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        let i = &self.inner;
        let handle = i.histograms.get_or_bind(key, &i.stats, |_| {
            HistogramHandle(Series::new(&i.collector, key, MetricType::Histogram))
        });
        metrics::Histogram::from_arc(handle)
    }
}

/// One registered series: where its values go, decided once, when the
/// `metrics` key was registered.
struct Series {
    collector: Arc<dyn MetricCollector>,
    target: Target,
}

enum Target {
    /// The collector's own handle for the series (it binds).
    Bound(Arc<dyn InstrumentFn>),
    /// Our key, checked and hashed once: each value is recorded as a
    /// measurement of it.
    Keyed(OwnedKey),
    /// The name or labels broke a rule: every value is refused, and counted
    /// by the collector under this reason.
    Refused(DropReason),
}

impl Series {
    /// Builds our key of `key`'s name and labels, and binds it if the
    /// collector binds series of `kind`.
    fn new(collector: &Arc<dyn MetricCollector>, key: &Key, kind: MetricType) -> Self {
        let target = with_tags(key, |name, tags| {
            match metrics_protocol::Key::new(name, tags) {
                Ok(ours) => match collector.bind(&ours, kind) {
                    Some(bound) => Target::Bound(bound),
                    None => Target::Keyed(OwnedKey::from(&ours)),
                },
                Err(reason) => Target::Refused(reason),
            }
        });
        Series {
            collector: collector.clone(),
            target,
        }
    }

    /// Records `value`, or counts why it cannot be.
    #[inline]
    fn record(&self, value: Value) {
        match &self.target {
            Target::Bound(series) => match value.check() {
                Ok(()) => series.record(value),
                Err(reason) => series.reject(reason),
            },
            Target::Keyed(key) => key.with_key(|key| match Measurement::new(key, value) {
                Ok(m) => self.collector.record(&m),
                Err(reason) => self.collector.reject(reason),
            }),
            Target::Refused(reason) => self.collector.reject(*reason),
        }
    }
}

/// A counter of one of our series, with the absolute-value mark.
struct CounterHandle {
    series: Series,
    /// The largest value `absolute` has set.
    mark: AtomicU64,
    /// Set for handles bound past the cache limit: their mark is not the
    /// series', so `absolute` is dropped and counted here.
    uncached: Option<Arc<Stats>>,
}

impl metrics::CounterFn for CounterHandle {
    #[inline]
    fn increment(&self, value: u64) {
        self.series.record(Value::Counter(value as f64));
    }

    fn absolute(&self, value: u64) {
        if let Some(stats) = &self.uncached {
            stats.absolute_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                value,
                "metrics absolute value dropped: counter registered past the bridge's cache limit"
            );
            return;
        }
        let mark = self.mark.fetch_max(value, Ordering::Relaxed);
        if value > mark {
            self.series.record(Value::Counter((value - mark) as f64));
        } else if value < mark {
            // Refused, and counted by the collector as a negative increment.
            self.series.record(Value::Counter(-((mark - value) as f64)));
        }
    }
}

/// A gauge of one of our series.
struct GaugeHandle(Series);

impl metrics::GaugeFn for GaugeHandle {
    #[inline]
    fn increment(&self, value: f64) {
        self.0.record(Value::GaugeDelta(value));
    }
    #[inline]
    fn decrement(&self, value: f64) {
        self.0.record(Value::GaugeDelta(-value));
    }
    #[inline]
    fn set(&self, value: f64) {
        self.0.record(Value::Gauge(value));
    }
}

/// A histogram of one of our series.
struct HistogramHandle(Series);

impl metrics::HistogramFn for HistogramHandle {
    #[inline]
    fn record(&self, value: f64) {
        self.0.record(Value::Histogram(value));
    }
}

/// Hashes a [`Key`] by the hash it carries (its `Hash` writes exactly that
/// one `u64`), so a lookup does not rehash the name and labels.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key`; a plain FNV-1a keeps it correct anyway.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const SHARDS: usize = 16;

type Shard<T> = RwLock<HashMap<Key, Arc<T>, BuildHasherDefault<KeyHasher>>>;

/// Handles by key, sharded so that threads registering different keys
/// rarely share a lock.
struct Cache<T> {
    shards: [Shard<T>; SHARDS],
    len: AtomicUsize,
    limit: usize,
}

impl<T> Cache<T> {
    fn new(limit: usize) -> Self {
        Cache {
            shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
            len: AtomicUsize::new(0),
            limit,
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The cached handle of `key`, or a new one from `bind` (told whether
    /// it will be cached).
    fn get_or_bind(&self, key: &Key, stats: &Stats, bind: impl FnOnce(bool) -> T) -> Arc<T> {
        let shard = &self.shards[(key.get_hash() >> 32) as usize % SHARDS];
        if let Some(h) = shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return h.clone();
        }
        if self.len() >= self.limit {
            stats.uncached.fetch_add(1, Ordering::Relaxed);
            return Arc::new(bind(false));
        }
        // Bound outside the lock (the backend is not called under it); if
        // another thread cached a handle meanwhile, that one wins and this
        // one is dropped unused, so each key keeps one handle (one mark).
        let fresh = Arc::new(bind(true));
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(key.to_retained())
            .or_insert_with(|| {
                self.len.fetch_add(1, Ordering::Relaxed);
                fresh
            })
            .clone()
    }
}
