//! [`SuccessFailureTracker`]: counting the outcomes of operations.

use crate::collector::MetricCollector;
use crate::handle::record_failure_key;
use crate::key::Key;
use crate::measurement::Value;
use crate::types::Tags;

/// Counts successes and failures of operations. Every
/// [`MetricCollector`] is one: an outcome is a measurement
/// ([`Value::Success`], [`Value::Failure`]) of the operation's key.
///
/// A library usually records outcomes through a timing guard
/// ([`Metrics::start`](crate::Metrics::start)), which records exactly one per
/// operation. Success rates and failure breakdowns are read on the query
/// side (`app::MetricsAggregator`).
///
/// ```
/// use metrics_protocol::{NoopMetrics, SuccessFailureTracker};
///
/// fn import(tracker: &dyn SuccessFailureTracker, rows: &[&str]) {
///     for row in rows {
///         match row.parse::<u32>() {
///             Ok(_) => tracker.record_success("import.row", &[("source", "csv")]),
///             Err(_) => tracker.record_failure("import.row", "not_a_number", &[("source", "csv")]),
///         }
///     }
/// }
/// import(&NoopMetrics, &["1", "x"]);
/// ```
///
/// Backends that export outcomes as metrics use two counters per
/// operation: `<operation>.success` and `<operation>.failure` (the latter
/// tagged `error_type`), plus the metadata as tags.
pub trait SuccessFailureTracker: Send + Sync {
    /// Counts one success of `operation`.
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>);

    /// Counts one failure of `operation`, of kind `error_type`.
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>);
}

impl<C: MetricCollector + ?Sized> SuccessFailureTracker for C {
    #[inline]
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        MetricCollector::record_by_name(self, operation, metadata, &Value::Success)
    }

    #[inline]
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        match Key::new(operation, metadata) {
            Ok(key) => record_failure_key(self, &key, error_type),
            Err(reason) => self.reject(reason),
        }
    }
}
