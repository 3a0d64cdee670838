//! The conformance suite against the in-memory backend.

use std::sync::Arc;

use metrics_memory::MemoryMetrics;
use metrics_protocol::{MetricCollector, Metrics, Tags};
use metrics_tests::{Harness, Queries};

struct Memory(Arc<MemoryMetrics>);

impl Harness for Memory {
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.0.clone()
    }
    fn metrics(&self) -> Metrics {
        Metrics::new(self.0.clone())
    }
    fn queries(&self) -> Option<Queries> {
        Some(Queries {
            tracker: self.0.clone(),
            timer: self.0.clone(),
        })
    }
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.0
            .outcome_counts(operation, tags)
            .map_or(0, |(ok, _)| ok)
    }
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.0
            .outcome_counts(operation, tags)
            .and_then(|(_, failed)| failed.get(error_type).copied())
            .unwrap_or(0)
    }
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.0.counter_value(name, tags)
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.0.gauge_value(name, tags)
    }
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.0.distribution(name, tags).map(|d| d.count)
    }
    fn series_count(&self) -> usize {
        self.0.series_count()
    }
}

metrics_tests::conformance_suite!(Memory(Arc::new(MemoryMetrics::new())));
