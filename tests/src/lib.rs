//! The workspace's own tests: every backend through the conformance kit
//! (`metrics-conformance`, one run file per backend under `tests/`), the
//! README's examples as doctests, the quickstart side by side with the
//! `metrics` crate, and the no-op.
//!
//! What the run files share lives here: [`MemoryHarness`], the harness of
//! the in-memory backend, alone or behind a composed system.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use metrics_conformance::Harness;
use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::app::MetricsAggregator;
use metrics_protocol::{Metrics, Tags};

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../README.md")]
pub mod readme {}

/// Where the manual clocks of the harnesses start: on a 15-minute edge, so
/// the bins of every default window start together.
pub const START_MS: i64 = 1_800_000_000_000;

/// How long a series of a [`MemoryHarness`] may stay idle: an hour, longer
/// than the 2 minutes the window checks let pass, so only the expiry checks
/// see series expire.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(3600);

/// A [`Harness`] that reads back through a [`MemoryMetrics`]: counters,
/// gauges and distributions by series, outcomes from its tracker, drops
/// from its health, time on its [`ManualClock`], and idle expiry run by
/// [`settle`](Harness::settle). Recording goes through a [`Metrics`]
/// handle: the memory backend's own, or that of a system built over it.
pub struct MemoryHarness {
    metrics: Metrics,
    memory: Arc<MemoryMetrics>,
    queries: Arc<dyn MetricsAggregator>,
    clock: Arc<ManualClock>,
    _keep: Vec<Box<dyn Any>>,
}

impl MemoryHarness {
    /// A memory backend on a manual clock, idle series expiring after
    /// [`IDLE_EXPIRY`], recorded into through its own handle.
    pub fn new() -> Self {
        let clock = Arc::new(ManualClock::new(START_MS));
        let config = MemoryConfig {
            idle_expiry_secs: Some(IDLE_EXPIRY.as_secs()),
            ..MemoryConfig::default()
        };
        let memory = Arc::new(
            MemoryMetrics::with_clock(config, clock.clone())
                .expect("the default configuration with an idle expiry is valid"),
        );
        MemoryHarness::over(Metrics::new(memory.clone()), memory.clone(), memory, clock)
    }

    /// A system recorded into through `metrics`, read back through its
    /// memory backend `memory`, queried through `queries`, on `clock`.
    pub fn over(
        metrics: Metrics,
        memory: Arc<MemoryMetrics>,
        queries: Arc<dyn MetricsAggregator>,
        clock: Arc<ManualClock>,
    ) -> Self {
        MemoryHarness {
            metrics,
            memory,
            queries,
            clock,
            _keep: Vec::new(),
        }
    }

    /// Keeps `value` alive as long as the harness (a stream subscriber, a
    /// system whose handle is not enough to keep it running).
    pub fn keeping(mut self, value: impl Any) -> Self {
        self._keep.push(Box::new(value));
        self
    }

    /// The memory backend read back.
    pub fn memory(&self) -> &Arc<MemoryMetrics> {
        &self.memory
    }
}

impl Default for MemoryHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for MemoryHarness {
    fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Runs idle expiry now (the backend runs it at most once a second, on
    /// queries and exports).
    fn settle(&self) {
        self.memory.expire_idle();
    }

    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.memory.counter_value(name, tags)
    }

    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.memory.gauge_value(name, tags)
    }

    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.memory.distribution(name, tags).map(|d| d.count)
    }

    fn series_count(&self) -> usize {
        self.memory.series_count()
    }

    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.memory
            .outcome_counts(operation, tags)
            .map_or(0, |(ok, _)| ok)
    }

    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.memory
            .outcome_counts(operation, tags)
            .and_then(|(_, failed)| failed.get(error_type).copied())
            .unwrap_or(0)
    }

    fn advance(&self, by: Duration) -> bool {
        self.clock.advance(by);
        true
    }

    fn idle_expiry(&self) -> Option<Duration> {
        Some(IDLE_EXPIRY)
    }

    fn queries(&self) -> Option<Arc<dyn MetricsAggregator>> {
        Some(self.queries.clone())
    }
}
