//! [`Fanout`]: one collector over several backends.

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::backend::{
    self, BackendHealth, DropReason, InstrumentFn, Measurement, Value,
};
use metrics_protocol::{Key, MetricCollector, MetricType, MetricUnit, MetricsError, Tags};

/// Hands every measurement, description and refusal to each of its
/// backends, in order: the memory backend for local queries and StatsD for
/// the fleet, say.
///
/// - A bound handle binds each backend once and records into all of them.
/// - `flush` flushes every backend, even after one fails, and returns the
///   first error ([`flush_all`]); `health` lists every backend's report.
/// - It only writes: queries belong to the backend that keeps the data;
///   ask it directly.
///
/// ```
/// use std::sync::Arc;
/// use metrics_kit::layers::Fanout;
/// use metrics_protocol::Metrics;
/// use metrics_protocol::testing::Capture;
///
/// let (a, b) = (Capture::new(), Capture::new());
/// let metrics = Metrics::new(Arc::new(Fanout::new(vec![a.clone(), b.clone()])));
/// metrics.increment("jobs.done", &[("queue", "email")]);
/// metrics.time("jobs.run", &[], || ());
/// for backend in [&a, &b] {
///     assert_eq!(backend.counter("jobs.done", &[("queue", "email")]), 1.0);
///     assert_eq!(backend.successes("jobs.run", &[]), 1);
/// }
/// ```
#[derive(Default)]
pub struct Fanout {
    backends: Vec<Arc<dyn MetricCollector>>,
}

impl Fanout {
    /// A fan-out to `backends`, in order.
    pub fn new(backends: Vec<Arc<dyn MetricCollector>>) -> Self {
        Fanout { backends }
    }

    /// Adds one more backend.
    pub fn with(mut self, backend: Arc<dyn MetricCollector>) -> Self {
        self.backends.push(backend);
        self
    }

    /// Number of backends.
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The backends, in order.
    pub fn backends(&self) -> &[Arc<dyn MetricCollector>] {
        &self.backends
    }
}

/// Flushes every backend, all of them even when one fails: each failure is
/// logged, the first is returned. What a composite (a [`Fanout`], an
/// application's system) does in its own `flush`.
pub fn flush_all(backends: &[Arc<dyn MetricCollector>]) -> Result<(), MetricsError> {
    let mut first = None;
    for b in backends {
        if let Err(e) = b.flush() {
            tracing::warn!(error = %e, "a backend failed to flush");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("backends", &self.backends.len())
            .finish()
    }
}

/// One handle per backend.
struct Handles(Vec<Arc<dyn InstrumentFn>>);

impl InstrumentFn for Handles {
    #[inline]
    fn record(&self, value: Value) {
        self.0.iter().for_each(|h| h.record(value));
    }
    fn reject(&self, reason: DropReason) {
        self.0.iter().for_each(|h| h.reject(reason));
    }
}

impl MetricCollector for Fanout {
    #[inline]
    fn record(&self, m: &Measurement<'_>) {
        self.backends.iter().for_each(|b| b.record(m));
    }

    /// One backend gets the call as it came (it may find its series
    /// without a key); several share one key, built once.
    #[inline]
    fn record_by_name(&self, name: &str, tags: Tags<'_>, value: &Value) {
        match &*self.backends {
            [only] => only.record_by_name(name, tags, value),
            _ => backend::record_with_key(self, name, tags, *value),
        }
    }

    /// As [`record_by_name`](Self::record_by_name): one backend gets the
    /// timing as it came, several share one key.
    #[inline]
    fn record_timing_by_name(
        &self,
        name: &str,
        tags: Tags<'_>,
        elapsed: Duration,
        failure: Option<&str>,
    ) {
        match &*self.backends {
            [only] => only.record_timing_by_name(name, tags, elapsed, failure),
            _ => backend::record_timing_with_key(self, name, tags, elapsed, failure),
        }
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        let mut handles: Vec<_> = self
            .backends
            .iter()
            .map(|b| backend::bind(b, key, kind))
            .collect();
        Some(if handles.len() == 1 {
            handles.swap_remove(0)
        } else {
            Arc::new(Handles(handles))
        })
    }

    fn describe(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>, help: &str) {
        self.backends
            .iter()
            .for_each(|b| b.describe(name, kind, unit, help));
    }

    fn reject(&self, reason: DropReason) {
        self.backends.iter().for_each(|b| b.reject(reason));
    }

    fn flush(&self) -> Result<(), MetricsError> {
        flush_all(&self.backends)
    }

    fn health(&self) -> Vec<BackendHealth> {
        self.backends.iter().flat_map(|b| b.health()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_protocol::Metrics;
    use metrics_protocol::testing::Capture;

    #[test]
    fn bound_handles_reach_every_backend_and_bad_values_are_counted_by_each() {
        let (a, b) = (Capture::new(), Capture::new());
        let metrics = Metrics::new(Arc::new(Fanout::new(vec![a.clone(), b.clone()])));
        let c = metrics.counter("c", &[("k", "v")]);
        c.add(2.0);
        c.add(-1.0);
        metrics.gauge("g", &[]).set(3.0);
        for x in [&a, &b] {
            assert_eq!(x.counter("c", &[("k", "v")]), 2.0);
            assert_eq!(x.gauge("g", &[]), Some(3.0));
            assert_eq!(x.dropped(DropReason::NegativeCounter), 1);
        }
    }

    #[test]
    fn flush_reaches_every_backend_and_returns_the_first_error() {
        struct Failing;
        impl MetricCollector for Failing {
            fn record(&self, _: &Measurement<'_>) {}
            fn flush(&self) -> Result<(), MetricsError> {
                Err(MetricsError::NotFound("daemon".into()))
            }
        }
        let capture = Capture::new();
        let fanout = Fanout::default()
            .with(Arc::new(Failing))
            .with(capture.clone());
        assert!(matches!(fanout.flush(), Err(MetricsError::NotFound(_))));
        assert_eq!(
            fanout.health().len(),
            1,
            "Failing reports nothing, the capture one"
        );
        assert_eq!(fanout.len(), 2);
    }
}
