//! [`CaptureHarness`]: the suite against the protocol's recording double.

use std::collections::BTreeSet;
use std::sync::Arc;

use metrics_protocol::backend::outcome::{ERROR_TYPE_TAG, FAILURE_SUFFIX, SUCCESS_SUFFIX};
use metrics_protocol::backend::{DropReason, Value};
use metrics_protocol::testing::sorted_tags;
use metrics_protocol::testing::{Capture, Recorded};
use metrics_protocol::{MetricType, Metrics, Tags};

/// A harness over `metrics_protocol::testing::Capture`, which keeps every
/// measurement it is handed: the reference the suite holds every backend
/// to.
///
/// It reads back the way a StatsD daemon would fold what it receives:
/// counters summed, gauges set then adjusted, histogram and timer samples
/// counted, and outcomes as the counters `<operation>.success` and
/// `<operation>.failure` (tagged `error_type`). It has no clock and no query
/// side, so the checks that need them return early.
///
/// ```
/// use metrics_conformance::{CaptureHarness, Harness};
///
/// let h = CaptureHarness::new();
/// h.metrics().record_counter("jobs", 2.0, &[("queue", "a")]);
/// h.metrics().record_success("sync", &[]);
/// assert_eq!(h.counter("jobs", &[("queue", "a")]), Some(2.0));
/// assert_eq!(h.counter("sync.success", &[]), Some(1.0));
/// assert_eq!(h.capture().successes("sync", &[]), 1);
/// metrics_conformance::counter::accumulates(&CaptureHarness::new());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CaptureHarness {
    capture: Arc<Capture>,
}

/// A measurement as the series it lands in on the wire.
struct Folded {
    name: String,
    tags: Vec<(String, String)>,
    kind: MetricType,
    value: Value,
}

fn fold(r: Recorded) -> Folded {
    let kind = r.value.kind();
    match r.value {
        Value::Success => Folded {
            name: format!("{}{SUCCESS_SUFFIX}", r.name),
            tags: r.tags,
            kind,
            value: Value::Counter(1.0),
        },
        Value::Failure => {
            let mut tags: Vec<(String, String)> = r
                .tags
                .into_iter()
                .filter(|(k, _)| k != ERROR_TYPE_TAG)
                .collect();
            tags.push((ERROR_TYPE_TAG.to_owned(), r.error_type.unwrap_or_default()));
            tags.sort();
            Folded {
                name: format!("{}{FAILURE_SUFFIX}", r.name),
                tags,
                kind,
                value: Value::Counter(1.0),
            }
        }
        value => Folded {
            name: r.name,
            tags: r.tags,
            kind,
            value,
        },
    }
}

impl CaptureHarness {
    /// A harness over a new, empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// A harness reading back `capture` (one also recorded into by other
    /// means, such as one branch of a fan-out).
    pub fn with_capture(capture: Arc<Capture>) -> Self {
        CaptureHarness { capture }
    }

    /// The capture behind the harness.
    pub fn capture(&self) -> &Arc<Capture> {
        &self.capture
    }

    /// The values that landed in the series `name`/`tags` of kind `kind`.
    fn values(&self, name: &str, tags: Tags<'_>, kind: MetricType) -> Vec<Value> {
        let want = sorted_tags(tags);
        self.capture
            .records()
            .into_iter()
            .map(fold)
            .filter(|f| f.kind == kind && f.name == name && f.tags == want)
            .map(|f| f.value)
            .collect()
    }
}

impl crate::Harness for CaptureHarness {
    fn metrics(&self) -> Metrics {
        self.capture.metrics()
    }

    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        let values = self.values(name, tags, MetricType::Counter);
        (!values.is_empty()).then(|| values.iter().map(|v| v.as_f64()).sum())
    }

    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.capture.gauge(name, tags)
    }

    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        let n = self.values(name, tags, MetricType::Histogram).len()
            + self.values(name, tags, MetricType::Timer).len();
        (n > 0).then_some(n as u64)
    }

    fn series_count(&self) -> usize {
        self.capture
            .records()
            .into_iter()
            .map(fold)
            .map(|f| (f.name, f.tags, f.kind))
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.capture.successes(operation, tags)
    }

    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.capture.failures(operation, error_type, tags)
    }

    fn dropped(&self, reason: DropReason) -> u64 {
        self.capture.dropped(reason)
    }
}
