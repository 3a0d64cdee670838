//! The in-memory backend: a fast concurrent registry you can query, with
//! time windows, percentiles, range queries and a snapshot of every series
//! for the exposition formats to encode — and the test double of choice.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_memory::MemoryMetrics;
//! use metrics_protocol::Metrics;
//! use metrics_query::snapshot::Snapshots;
//!
//! let memory = Arc::new(MemoryMetrics::new());
//! let metrics = Metrics::new(memory.clone()); // the handle libraries record with
//! metrics.record_counter("http.requests", 1.0, &[("method", "GET"), ("code", "200")]);
//! metrics.record_histogram("http.response.bytes", 512.0, &[]);
//!
//! // Read back in one line (tag order does not matter)...
//! assert_eq!(memory.counter_value("http.requests", &[("code", "200"), ("method", "GET")]), Some(1.0));
//! // ...or as a snapshot of every series (what `metrics-exposition` encodes
//! // for a Prometheus scrape).
//! let snapshot = memory.snapshot();
//! let mut total = 0.0;
//! snapshot.read(0, &mut |r| total = r.value);
//! assert_eq!((snapshot.series(0).unwrap().name, total), ("http.requests", 1.0));
//! ```
//!
//! # What it is for
//!
//! The queryable store of one process (local dashboards, health, exports,
//! a Prometheus scrape), and the recorder your tests assert against: every
//! read-back helper (`counter_value`, `gauge_value`, `distribution`,
//! `series`, `samples`) is a copy — reading never drains or resets anything.
//!
//! # Guarantees
//!
//! - **Recording** never blocks on I/O and never takes a global lock. It
//!   looks the series up by its key's fingerprint (computed once where the
//!   key was built, independent of tag order: nothing is hashed again) in
//!   the thread's small cache of recent series (a hit compares the
//!   fingerprint, name and tags, in any order), else under one of 32 shard
//!   read locks, and writes into it: counters with one atomic add when the
//!   sample falls in the current 10 s bin (whole increments below 2^15; two
//!   otherwise), gauges and distributions under the series' own short lock.
//!   A measurement is valid by construction, so nothing is checked again.
//!   Outcomes (successes, failures by error type) go to the success/failure
//!   tracker, under the operation's name and tags, found by the same
//!   fingerprint. The system clock is read from an atomic that a
//!   background thread (one per process) refreshes every millisecond with
//!   the recording timeline (see [Time](#time)).
//! - **No allocation per sample**: recording into an existing series
//!   allocates nothing, for every kind, distributions receiving values
//!   never seen before included (a test with a counting allocator that
//!   counts only the recording thread proves it). Opening a new time bin
//!   of a distribution allocates nothing in steady state either (tested
//!   over 720 bins): the sealed bin, the merge into a coarser block and a
//!   new block all reuse buffers of bins and blocks that aged out.
//! - **Counters and gauges** are exact under any concurrency.
//! - **Distributions** (histograms, timers): count, sum, min and max are
//!   exact, all-time and per bin. Quantiles come from a DDSketch-style
//!   sketch (see [`RELATIVE_ACCURACY`]): all-time quantiles within 0.5 %
//!   of the exact nearest-rank value, window quantiles within 1 %
//!   ([`WINDOW_ACCURACY`]); tested on 1,000,000-sample uniform, lognormal
//!   σ = 1 and 2, Pareto α = 1.1, 1 ns to 1 h, bimodal and constant data.
//! - **Extremes in their own buckets**: a sketch keeps at most 17.8
//!   decades of dense buckets per sign and up to 32 far buckets beyond
//!   them, each with its own key, so every finite value of either sign,
//!   `f64::MIN_POSITIVE` to `f64::MAX`, is reported within the stated
//!   accuracy (tested: 10 % and 1 % of the samples at 1e300, both signs
//!   with tiny and huge values, against exact quantiles). When a far value
//!   arrives the side holding fewer samples gives way, so one extreme
//!   sample moves no quantile from p1 to p99. Only when one sign sees more
//!   than 32 distinct far buckets do the two closest merge; the samples so
//!   moved are counted ([`QuantileSketch::far_merged`]; health's detail
//!   `far_merged_samples` sums them over the series). Infinities and NaN
//!   are refused by the protocol before they reach a sketch.
//! - **Windows**: each series keeps cascading rings of fixed bins (default
//!   5 m @ 10 s, 1 h @ 1 min, 24 h @ 15 min; [`WindowSpec`]) with exact
//!   count, sum, min and max. Distributions also keep quantile sketches:
//!   one per 10 s bin for the finest ring, and in each coarser ring four
//!   blocks (15 min for the hour, 6 h for the day with the defaults), each
//!   sealed into a compact encoding (adaptive Rice code: about one byte
//!   per sample for sparse bins, a few bits per bucket for dense ones). A window's count, sum, min and
//!   max cover the bins starting in it; its quantiles cover the same
//!   range: the sketch blocks starting in it, and for the samples of the
//!   window before its first whole block (at most 15 minutes' worth for a
//!   1 h window, 6 hours' for 24 h), as many samples drawn in proportion
//!   from the block straddling the window's start (each coarser ring keeps
//!   one block more than its span for this). So a windowed quantile counts
//!   exactly the window's samples and is within [`WINDOW_ACCURACY`] of a
//!   window value whose rank is off by at most the number drawn (tested
//!   on a bursty series against exact quantiles).
//!   [`MemoryMetrics::window_coverage`] says which range a window's answer
//!   covers (its quantiles start where its first bin does). Bins older
//!   than the last ring are dropped.
//! - **Memory per series** (measured by a test and the `footprint` bench
//!   with a counting allocator, every bin of every ring filled over 31
//!   simulated hours): a counter or gauge at most 8 KiB. A distribution at
//!   up to 100 samples per 10 s at most 32 KiB for any values whose bulk
//!   spans at most 5 decades per sign, with at most 10 % of the samples
//!   beyond it (zeros, and extremes anywhere in
//!   the finite range): the test asserts it on the worst such input it
//!   builds, both signs each spread evenly over 5 decades (every bucket of
//!   the range in use) and extremes over 34 values per sign, more than the
//!   far buckets a sign keeps. What the bytes are: exact count, sum, min
//!   and max per bin (40 bytes each, 189 bins), the all-time sketch (two
//!   bytes per bucket between each sign's extremes of the bulk, plus far
//!   buckets), the sealed bins and blocks (a few bits per bucket) and one
//!   merge buffer; a bin's first 128 samples are kept as keys, so a bin of
//!   few samples holds no bucket arrays. A bulk spread wider costs about
//!   3 KiB per further decade: a series whose values span 17.8 decades of
//!   both signs in every 10 s bin stays under 1 MiB (each bin's sketch
//!   holds at most 2 × 2048 buckets; the all-time one 2 × 4096). At
//!   10,000 samples per 10 s (lognormal σ = 2), 44.3 KiB when last
//!   measured (bound: 128 KiB).
//! - **Cardinality**: at most `cardinality_limit` series per name (default
//!   2,000) and `max_series` over all names (default 100,000); later tag
//!   sets fold into one series per name tagged `metric.overflow=true`, so
//!   every sample is still counted once, and
//!   [`health`](metrics_protocol::MetricCollector::health) lists the name.
//!   At most `max_names` distinct names (default 10,000; operations of the
//!   success/failure tracker have the same limit): a sample with a new name
//!   past it is dropped and counted (`dropped_over_name_limit`), and health
//!   is degraded naming the limit. With `idle_expiry_secs` set, series not
//!   recorded into for that long are removed, except while a handle bound
//!   to them lives. (A counter notes its activity once per finest bin, not
//!   per sample, so it is removed up to one finest bin late, never early;
//!   its exported timestamp is the first sample of its newest bin.)
//! - **Memory of a whole registry with the defaults**: at most 10,000
//!   names and 110,000 series (100,000 plus one overflow series per name),
//!   each within the per-series bounds above: under 1 GiB if they are all
//!   counters and gauges with every bin filled, about 3.4 GiB if they are
//!   all distributions at 100 samples per 10 s. A series only holds the
//!   bins its samples opened (one recorded into once holds about 0.5 KiB).
//! - **Dropping** the backend frees its series (the per-thread caches hold
//!   weak references); dropping every handle of a series lets idle expiry
//!   remove it.
//! - **Bad input** (rules in `metrics_protocol::backend::validate`) is
//!   refused whole where the measurement is made and counted here by
//!   reason ([`reject`](metrics_protocol::MetricCollector::reject)); a name
//!   first recorded as one type and then as another is dropped as
//!   `type_mismatch`, and so is a value of another kind given to a bound
//!   handle.
//! - **Timers**: `start_timer`/`stop_timer` measure on the backend's
//!   [`Clock`] (a [`ManualClock`] advanced 5 s gives 5 s); at most
//!   `max_running_timers` running; starting one more evicts the oldest
//!   (counted as `timer_evicted`).
//! - **Queries**: a range query or rollup (the shared model of
//!   `metrics-query`, whose [`RangeQueries`](metrics_query::RangeQueries)
//!   the backend implements) counts a stored bin only when it lies wholly
//!   inside `[start, end)`, in the step holding its start, and each step
//!   says the span it really covers
//!   ([`RangeBin`](metrics_query::RangeBin)); a gauge's `last` is the value
//!   set most recently.
//!
//! - **History**: [`MemoryMetrics::sealed_bins`] hands each bin that ended
//!   out once (count, sum, min, max and, for a distribution's 10 s bins,
//!   the sketch encoding) for a durable store such as `metrics-store`;
//!   [`QuantileSketch::merge_bin`] merges stored sketches back.
//!
//! Nothing recorded is lost except what the rules above say: aged-out bins,
//! expired idle series, dropped bad samples and evicted timers, each counted
//! or documented.
//!
//! # Time
//!
//! Every sample is placed at the time of the backend's *recording
//! timeline* when it is recorded, and everything that reads time reads the
//! same timeline: windows and [`MemoryMetrics::window_coverage`], range
//! queries and rollups, idle expiry, and the sealed bins a durable store
//! collects ([`MemoryMetrics::sealed_bins`], measured against
//! [`MemoryMetrics::clock_ms`]). The timeline never runs backwards:
//!
//! - It follows the wall clock ([`Clock::now_millis`]), a step forward
//!   included, at once: the bins in between stay empty.
//! - When the wall clock steps back (an NTP step, an operator setting the
//!   time), the timeline goes on from where it was at the rate of the
//!   monotonic clock ([`Clock::monotonic_nanos`]) until the wall clock
//!   passes it again; then it follows the wall clock again. Meanwhile
//!   samples are placed later than the wall clock says, by at most the
//!   size of the step: [`MemoryMetrics::clock_behind_ms`] says by how
//!   much, and health reports it (`clock_behind_s`, degraded from 1 s on).
//!   A wall clock that runs slower than the monotonic clock without
//!   stepping (slewed) is followed: only a reading earlier than the
//!   timeline's latest is a step back.
//!
//! So a clock step in either direction, and its correction, loses and
//! moves nothing recorded: every sample is in the bin of its timeline
//! time, once; a window holds exactly what was recorded in that span of
//! the timeline; a store writer whose ranges follow the timeline never
//! skips a bin. (Following the wall clock back would put samples of two
//! different minutes into one bin, or into bins a store already has;
//! following the monotonic clock alone would drift from the calendar,
//! and that clock need not run while the machine sleeps.)
//!
//! With the [`SystemClock`], the coarse clock thread keeps the timeline
//! (one per process), so reading the time on the recording path is still
//! one atomic load. With another clock, the backend keeps one per backend
//! (a few atomic loads per reading). A [`ManualClock`] models both kinds
//! of time: [`ManualClock::advance`] lets time pass (wall and monotonic),
//! [`ManualClock::step`] and [`ManualClock::set`] move the wall clock
//! alone. A clock that keeps the trait's default `monotonic_nanos` (its
//! wall reading) cannot tell a step from time passing: after a step back
//! its timeline stands still until the wall clock passes it.
//!
//! A step forward past the finest ring (5 minutes with the default
//! windows) ages the bins before it out of that ring at once, and one past
//! the last ring (24 hours) out of every ring. Finest bins that a reader of
//! [`MemoryMetrics::sealed_bins`] (or [`MemoryMetrics::sealed_outcomes`])
//! has not had yet are held in the finest ring until it has them, however
//! far the step (at most one more span of that ring per series), so a store
//! still gets each of them whole, with its sketch.

#![deny(missing_docs)]

mod clock;
mod config;
mod handles;
mod history;
mod query;
mod registry;
mod ring;
mod series;
mod sketch;
mod snapshot;
mod stats;
mod tracker;
mod traits;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use metrics_kit::DropCounters;
use metrics_protocol::app::{MetricSummary, MetricValue, MetricsAggregator, TimingStats};
use metrics_protocol::backend::{
    BackendHealth, DropReason, HealthStatus, InstrumentFn, Measurement, Value, validate,
};
use metrics_protocol::{
    Key, MetricCollector, MetricType, MetricUnit, MetricsError, PerformanceTimer, Tags, TimerId,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, MemoryConfig};
pub use history::{OlderBins, OlderOutcomes, SealedBin, SealedOutcomes};
pub use query::{merge_step_sketches, with_step_sketch};
pub use ring::WindowSpec;
pub use sketch::{QuantileSketch, RELATIVE_ACCURACY, WINDOW_ACCURACY};
pub use stats::Exact;

use registry::{Registry, Series};

/// What the handles and the collector share.
pub(crate) struct Shared {
    pub clock: Arc<dyn Clock>,
    /// `clock` is the [`SystemClock`]: read it without a virtual call.
    pub system_clock: bool,
    /// The recording timeline over `clock` when it is not the
    /// [`SystemClock`] (whose coarse clock thread keeps the process's).
    pub timeline: clock::Timeline,
    pub drops: DropCounters,
    pub keep_samples: usize,
}

impl Shared {
    /// Now on the recording timeline (see the crate docs, "Time"), in
    /// milliseconds since the epoch: for the [`SystemClock`] one atomic
    /// load of the coarse clock, which keeps the timeline.
    #[inline]
    pub fn now_ms(&self) -> i64 {
        if self.system_clock {
            clock::coarse_now_ms()
        } else {
            self.timeline_now_ms()
        }
    }

    /// The recording timeline over a clock other than the system clock
    /// (out of line: the system clock's path stays as small as it was).
    #[inline(never)]
    pub fn timeline_now_ms(&self) -> i64 {
        let wall = self.clock.now_millis();
        let mono = self.clock.monotonic_nanos();
        self.timeline.now(wall, mono)
    }

    /// How far the clock's wall reading is behind the recording timeline,
    /// ms (`0` while the timeline follows it).
    pub fn behind_ms(&self) -> i64 {
        if self.system_clock {
            clock::system_behind_ms()
        } else {
            self.timeline_now_ms();
            self.timeline.behind_ms()
        }
    }
}

/// The in-memory backend (see the crate docs).
pub struct MemoryMetrics {
    shared: Arc<Shared>,
    registry: Registry,
    tracker: tracker::Tracker,
    timers: metrics_kit::RunningTimers,
    /// Help texts given to `describe`, by metric name (at most `max_names`).
    descriptions: parking_lot::RwLock<BTreeMap<String, snapshot::Description>>,
    config: MemoryConfig,
    last_expiry_ms: AtomicI64,
    /// Where the history reader's hand-outs of series bins end
    /// ([`sealed_bins`](Self::sealed_bins)).
    history_bins: Arc<ring::HistoryMark>,
    /// Where its hand-outs of outcome bins end
    /// ([`sealed_outcomes`](Self::sealed_outcomes)).
    history_outcomes: Arc<ring::HistoryMark>,
}

impl std::fmt::Debug for MemoryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMetrics")
            .field("series", &self.registry.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Default for MemoryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A copy of one distribution series.
#[derive(Debug, Clone)]
pub struct DistributionSnapshot {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    stats: stats::Stats,
}

impl DistributionSnapshot {
    /// Mean.
    pub fn avg(&self) -> f64 {
        self.stats.avg()
    }

    /// Nearest-rank `q`-quantile (0 ≤ q ≤ 1), within [`RELATIVE_ACCURACY`].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.stats.quantile(q)
    }
}

/// A copy of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    /// Metric name.
    pub name: String,
    /// Tags, sorted by key.
    pub tags: Vec<(String, String)>,
    /// Kind.
    pub metric_type: MetricType,
    /// Counter total, gauge value, or distribution sum.
    pub value: f64,
    /// Number of samples recorded.
    pub count: u64,
}

impl MemoryMetrics {
    /// A backend with the default configuration and the system clock.
    pub fn new() -> Self {
        Self::build(MemoryConfig::default(), Arc::new(SystemClock), true)
    }

    /// A backend with `config` and the system clock.
    pub fn with_config(config: MemoryConfig) -> Result<Self, ConfigError> {
        Self::check(&config)?;
        Ok(Self::build(config, Arc::new(SystemClock), true))
    }

    /// A backend with `config` and `clock` (a [`ManualClock`] in tests).
    pub fn with_clock(config: MemoryConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        Self::check(&config)?;
        let system = clock.is_system_clock();
        Ok(Self::build(config, clock, system))
    }

    fn check(config: &MemoryConfig) -> Result<(), ConfigError> {
        ring::validate_specs(&config.windows)
            .map_err(|e| config::invalid("windows", format!("{:?}", config.windows), e))?;
        for (field, v) in [
            ("cardinality_limit", config.cardinality_limit),
            ("max_names", config.max_names),
            ("max_series", config.max_series),
        ] {
            if v == 0 {
                return Err(config::invalid(field, "0", "must be at least 1"));
            }
        }
        Ok(())
    }

    fn build(config: MemoryConfig, clock: Arc<dyn Clock>, system_clock: bool) -> Self {
        if system_clock {
            // `Shared::now_ms` then reads the coarse clock without a check.
            clock::start_coarse_clock();
        }
        let timer_clock = Arc::new(clock::BackendTimerClock(clock.clone()));
        let history_bins = Arc::new(ring::HistoryMark::new());
        let history_outcomes = Arc::new(ring::HistoryMark::new());
        MemoryMetrics {
            shared: Arc::new(Shared {
                clock,
                system_clock,
                timeline: clock::Timeline::new(),
                drops: DropCounters::new(),
                keep_samples: config.keep_samples,
            }),
            registry: Registry::new(
                config.windows.clone(),
                registry::Limits {
                    cardinality: config.cardinality_limit,
                    names: config.max_names,
                    series: config.max_series,
                },
                config.idle_expiry_secs.is_none(),
                history_bins.clone(),
            ),
            tracker: tracker::Tracker::new(
                config.windows.clone(),
                config.max_names,
                history_outcomes.clone(),
            ),
            history_bins,
            history_outcomes,
            timers: metrics_kit::RunningTimers::with_clock(config.max_running_timers, timer_clock),
            descriptions: parking_lot::RwLock::new(BTreeMap::new()),
            last_expiry_ms: AtomicI64::new(i64::MIN),
            config,
        }
    }

    /// The help texts given to `describe`, by metric name.
    pub(crate) fn descriptions(&self) -> BTreeMap<String, snapshot::Description> {
        self.descriptions.read().clone()
    }

    /// The configuration in use.
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    #[inline]
    fn now_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// How far the wall clock is behind the recording timeline, in
    /// milliseconds: `0` while the timeline follows the wall clock (the
    /// usual case); after the wall clock stepped back, how much later than
    /// the wall clock says samples are placed, until the wall clock passes
    /// the timeline again (see the crate docs, "Time"). Health reports it
    /// too (`clock_behind_s`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
    ///
    /// let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    /// let m = MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap();
    /// assert_eq!(m.clock_behind_ms(), 0);
    /// clock.step(-3_600_000); // the wall clock steps back an hour
    /// assert_eq!(m.clock_behind_ms(), 3_600_000);
    /// assert_eq!(m.clock_ms(), 1_800_000_000_000); // the timeline did not
    /// ```
    pub fn clock_behind_ms(&self) -> i64 {
        self.shared.behind_ms()
    }

    /// Records one measurement: a value into its series, an outcome into
    /// the success/failure tracker. Nothing is checked again: a
    /// measurement is valid by construction. Counters, the usual case, take
    /// the short path: only the increment is read from the measurement.
    #[inline]
    fn record_measurement(&self, m: &Measurement<'_>) {
        let outcome = match m.value() {
            Value::Counter(v) => {
                let now = self.now_ms();
                self.registry
                    .with_series(m.key(), MetricType::Counter, |s| s.add_counter(now, v))
            }
            // The other arms take the measurement, not a copy of its
            // value: matching then reads the discriminant and the increment
            // alone, two small loads the caller's stores forward to.
            Value::Success | Value::Failure => return self.record_outcome(self.now_ms(), m),
            _ => return self.record_other(m),
        };
        if let Err(reason) = outcome {
            self.shared.drops.record(reason);
        }
    }

    /// A value recorded by name into a series found without a key: checked
    /// as [`Measurement::new`] checks it, then as [`record_measurement`](Self::record_measurement)
    /// records it.
    #[inline]
    fn record_cached(&self, s: &Series, value: &Value) {
        let refused = match value.check() {
            Err(reason) => reason,
            Ok(()) if s.kind != value.kind() => DropReason::TypeMismatch,
            Ok(()) => return s.record(self.now_ms(), value, self.shared.keep_samples),
        };
        self.shared.drops.record(refused);
    }

    /// By name, not found in the thread's cache: the key is built (checked
    /// and hashed), the measurement recorded, and the series remembered for
    /// this call site.
    #[inline(never)]
    fn record_by_name_slow(&self, name: &str, tags: Tags<'_>, value: &Value) {
        let value = *value;
        let key = match Key::new(name, tags) {
            Ok(key) => key,
            Err(reason) => return self.shared.drops.record(reason),
        };
        match Measurement::new(&key, value) {
            Ok(m) => {
                self.record_measurement(&m);
                if !matches!(value, Value::Success | Value::Failure) {
                    self.registry.remember_call_site(&key);
                }
            }
            Err(reason) => self.shared.drops.record(reason),
        }
    }

    /// A finished timing not found in the thread's cache: recorded by key
    /// as [`MetricCollector::record_timing_by_name`]'s default does, then
    /// the timer series remembered for this call site with where its
    /// outcomes are counted.
    #[inline(never)]
    fn record_timing_slow(
        &self,
        name: &str,
        tags: Tags<'_>,
        elapsed: Duration,
        failure: Option<&str>,
    ) {
        let key = Key::new(name, tags);
        metrics_protocol::backend::record_timing(self, key.as_ref(), elapsed, failure);
        let Ok(key) = key else { return };
        if let Some(s) = self.registry.remember_call_site(&key)
            && s.kind == MetricType::Timer
            && s.outcomes.get().is_none()
            && let Some(set) = self.tracker.set_of(&key)
        {
            let _ = s.outcomes.set(set);
        }
    }

    /// Records a gauge, histogram or timer value (out of line: each takes
    /// its series' lock anyway).
    #[inline(never)]
    fn record_other(&self, m: &Measurement<'_>) {
        let now = self.now_ms();
        let keep = self.shared.keep_samples;
        let value = m.value_ref();
        if let Err(reason) = self
            .registry
            .with_series(m.key(), value.kind(), |s| s.record(now, value, keep))
        {
            self.shared.drops.record(reason);
        }
    }

    /// Counts a success or failure of the operation `m`'s key names in the
    /// tracker (out of line: the series path stays small).
    #[inline(never)]
    fn record_outcome(&self, now: i64, m: &Measurement<'_>) {
        if let Err(reason) = self.tracker.record(now, m.key(), m.error_type()) {
            self.shared.drops.record(reason);
        }
    }

    fn lookup<R>(&self, name: &str, tags: Tags<'_>, f: impl FnOnce(&Series) -> R) -> Option<R> {
        self.registry.find(name, tags).map(|s| f(&s))
    }

    /// Successes, and failures by error type, of `operation` recorded with
    /// exactly `tags` (in any order), over all time; `None` if none were.
    pub fn outcome_counts(
        &self,
        operation: &str,
        tags: Tags<'_>,
    ) -> Option<(u64, BTreeMap<String, u64>)> {
        let mut want: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        self.tracker
            .outcomes_by_tags(operation)
            .into_iter()
            .find(|(t, _, _)| *t == want)
            .map(|(_, ok, failed)| (ok, failed))
    }

    /// The total of a counter series, if it exists.
    pub fn counter_value(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.lookup(name, tags, |s| {
            (s.kind == MetricType::Counter).then(|| s.read().0)
        })
        .flatten()
    }

    /// The value of a gauge series, if it exists.
    pub fn gauge_value(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.lookup(name, tags, |s| {
            (s.kind == MetricType::Gauge).then(|| s.read().0)
        })
        .flatten()
    }

    /// All-time statistics of a histogram or timer series (timers in ms).
    pub fn distribution(&self, name: &str, tags: Tags<'_>) -> Option<DistributionSnapshot> {
        self.lookup(name, tags, |s| {
            s.is_distribution().then(|| {
                let stats = s.read().1;
                DistributionSnapshot {
                    count: stats.count,
                    sum: stats.sum,
                    min: stats.min,
                    max: stats.max,
                    stats,
                }
            })
        })
        .flatten()
    }

    /// The most recent raw samples of a histogram or timer series (timers in
    /// ms), oldest first; empty unless `keep_samples` is configured.
    pub fn samples(&self, name: &str, tags: Tags<'_>) -> Vec<f64> {
        self.lookup(name, tags, |s| {
            s.state.lock().samples.iter().copied().collect()
        })
        .unwrap_or_default()
    }

    /// Every series of `name` (every series when `name` is empty).
    pub fn series(&self, name: &str) -> Vec<SeriesSnapshot> {
        let all = if name.is_empty() {
            self.registry.all()
        } else {
            self.registry.by_name(name)
        };
        all.iter().map(|s| snapshot(s)).collect()
    }

    /// Operations the success/failure tracker has seen, sorted.
    pub fn operations(&self) -> Vec<String> {
        self.tracker.names()
    }

    /// Samples dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.shared.drops.get(reason)
    }

    /// Samples dropped because their name was new past
    /// [`MemoryConfig::max_names`].
    pub fn dropped_over_name_limit(&self) -> u64 {
        self.shared.drops.get(DropReason::NameLimit)
    }

    /// Samples of the distribution series held that a quantile sketch
    /// reports at a neighbouring far bucket's value, beyond the stated
    /// accuracy ([`QuantileSketch::far_merged`]): in the all-time sketch,
    /// or in a window's bin when it was recorded. 0 unless one sign of a
    /// series saw more than 32 distinct buckets beyond a 17.8-decade range.
    /// [`health`](metrics_protocol::MetricCollector::health) reports it as
    /// the detail `far_merged_samples`.
    pub fn far_merged_samples(&self) -> u64 {
        let mut total = 0u64;
        for s in self.registry.all_unordered() {
            if !s.is_distribution() {
                continue;
            }
            let st = s.state.lock();
            let all_time = st.sketch.as_ref().map_or(0, |k| k.far_merged());
            let windows = st.quantiles.as_ref().map_or(0, |q| q.far_merged());
            total = total.saturating_add(all_time).saturating_add(windows);
        }
        total
    }

    /// Number of series held.
    pub fn series_count(&self) -> usize {
        self.registry.len()
    }

    /// Which part of the last `window` a windowed summary of `name`
    /// ([`metric_summary`](MetricsAggregator::metric_summary) with
    /// `Some(window)`) really covers, from this backend's own bins: `None`
    /// if no series of `name` has a bin in it, or the window is longer
    /// than the retention.
    ///
    /// A window ends now and starts `window` ago, but its far edge usually
    /// falls inside a stored bin, which cannot be split: a bin counts only
    /// when it starts in the window, so the answer covers from the first
    /// such bin (within 10 s of the edge for 5 minutes, 1 min for the hour,
    /// 15 min for the day with the defaults) and quantiles from the first
    /// sketch block starting in it (10 s, 15 min, 6 h): never a sample from
    /// before the window, sometimes less than all of it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
    /// use metrics_protocol::Metrics;
    ///
    /// let clock = Arc::new(ManualClock::new(1_800_000_000_000)); // on a 15 min edge
    /// let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    /// let metrics = Metrics::new(m.clone());
    /// for _ in 0..120 {
    ///     metrics.record_histogram("latency", 1.0, &[]);
    ///     clock.advance(Duration::from_secs(60));
    /// }
    /// let c = m.window_coverage("latency", Duration::from_secs(3600)).unwrap();
    /// assert_eq!(c.end - c.start, chrono::Duration::minutes(60));
    /// assert_eq!(c.end - c.quantiles_start.unwrap(), chrono::Duration::minutes(60));
    /// ```
    pub fn window_coverage(&self, name: &str, window: Duration) -> Option<WindowCoverage> {
        let s = self.summary_with_older(name, Some(window), None).ok()?;
        let end = clock::to_datetime(self.now_ms());
        let back = |d: Duration| end - chrono::Duration::milliseconds(d.as_millis() as i64);
        Some(WindowCoverage {
            start: back(s.covers?),
            quantiles_start: s.quantiles_cover.map(back),
            end,
        })
    }

    /// Removes idle series now (also done at most once a second by queries
    /// and exports); returns how many were removed.
    pub fn expire_idle(&self) -> usize {
        let Some(secs) = self.config.idle_expiry_secs else {
            return 0;
        };
        let now = self.now_ms();
        self.last_expiry_ms.store(now, Ordering::Relaxed);
        self.registry
            .expire(now.saturating_sub((secs as i64).saturating_mul(1000)))
    }

    fn maintain(&self) {
        let now = self.now_ms();
        if self.config.idle_expiry_secs.is_some()
            && now.saturating_sub(self.last_expiry_ms.load(Ordering::Relaxed)) >= 1000
        {
            self.expire_idle();
        }
    }

    fn window_range(&self, window: Option<Duration>) -> Result<Option<(i64, i64)>, MetricsError> {
        let Some(w) = window else { return Ok(None) };
        let retention = self
            .config
            .windows
            .last()
            .map_or(Duration::ZERO, |s| s.span);
        if w > retention {
            return Err(MetricsError::InvalidArgument(format!(
                "window {w:?} is longer than the retention of {retention:?}"
            )));
        }
        // A window shorter than one finest bin holds no whole bin: its
        // answer would depend on where in the bin "now" falls. Refused,
        // naming the shortest window that always answers.
        if let Some(finest) = self.config.windows.first().map(|s| s.bin)
            && w < finest
        {
            return Err(MetricsError::InvalidArgument(format!(
                "window {w:?} is shorter than one bin: the shortest window is {finest:?}"
            )));
        }
        let now = self.now_ms();
        Ok(Some((now - w.as_millis() as i64, now)))
    }
}

/// What a windowed summary really covers: see
/// [`MemoryMetrics::window_coverage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCoverage {
    /// Start of the earliest bin counted (count, sum, min, max): at or
    /// after the window's start.
    pub start: chrono::DateTime<chrono::Utc>,
    /// Start of the earliest sketch block the quantiles merge (histograms
    /// and timers only): at or after `start`.
    pub quantiles_start: Option<chrono::DateTime<chrono::Utc>>,
    /// The window's end: now on the backend's recording timeline.
    pub end: chrono::DateTime<chrono::Utc>,
}

fn snapshot(s: &Series) -> SeriesSnapshot {
    let (value, total) = s.read();
    SeriesSnapshot {
        name: s.name.to_string(),
        tags: s
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        metric_type: s.kind,
        value: if s.is_distribution() {
            total.sum
        } else {
            value
        },
        count: total.count,
    }
}

impl MemoryMetrics {
    /// The unit a metric's values are reported in, as the text exports
    /// see it: milliseconds for timers (what they record), else the unit
    /// given to `describe`, else one spelled out as the name's last word
    /// (`http.response.bytes`), else a count. Every answer of the JSON
    /// read side (summaries, series, top) labels its values with it.
    pub fn unit_of(&self, name: &str, kind: MetricType) -> metrics_protocol::MetricUnit {
        if kind == MetricType::Timer {
            return metrics_protocol::MetricUnit::Milliseconds;
        }
        self.descriptions
            .read()
            .get(name)
            .and_then(|d| d.unit)
            .or_else(|| metrics_query::unit_in_name(name))
            .unwrap_or(metrics_protocol::MetricUnit::Count)
    }

    /// The current value of a series: counter total, gauge value, or
    /// distribution count (with statistics in `metadata`).
    fn current_value(&self, s: &Series) -> MetricValue {
        let (current, t) = s.read();
        let mut metadata = BTreeMap::new();
        let value = if s.is_distribution() {
            metadata.insert("sum".into(), t.sum.to_string());
            metadata.insert("avg".into(), t.avg().to_string());
            metadata.insert("min".into(), t.min.to_string());
            metadata.insert("max".into(), t.max.to_string());
            for (k, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
                if let Some(x) = t.quantile(q) {
                    metadata.insert(k.into(), x.to_string());
                }
            }
            t.count as f64
        } else {
            current
        };
        let touched = s.last_active_ms();
        MetricValue {
            name: s.name.to_string(),
            value,
            metric_type: s.kind,
            unit: self.unit_of(&s.name, s.kind),
            timestamp: clock::to_datetime(touched.max(0)),
            tags: s
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metadata,
        }
    }
}

#[cfg(test)]
mod tests;
