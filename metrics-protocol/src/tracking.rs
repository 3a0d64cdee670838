//! [`SuccessFailureTracker`]: success rates and failure breakdowns.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::MetricsError;
use crate::types::Tags;

/// Counts successes and failures of operations.
///
/// A library usually records outcomes through a [`Metrics`](crate::Metrics)
/// timing guard, which records exactly one per operation; this trait is
/// what the guard records into, and what answers success rates.
///
/// ```
/// use metrics_protocol::{MetricsError, NoopMetrics, SuccessFailureTracker};
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
/// // The no-op backend keeps nothing, so it cannot answer:
/// assert!(matches!(NoopMetrics.get_success_rate("import.row", None), Err(MetricsError::Unsupported { .. })));
/// ```
///
/// # For implementors
///
/// Backends that export these as metrics use two counters per operation:
/// `<operation>.success` and `<operation>.failure` (the latter tagged
/// `error_type`), plus the metadata as tags. Recording must be as cheap as a
/// counter increment.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait SuccessFailureTracker: Send + Sync {
    /// Counts one success of `operation`.
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>);

    /// Counts one failure of `operation`, of kind `error_type`.
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>);

    /// Successes / (successes + failures) of `operation`, 0 to 1, over all
    /// time or the last `time_window`.
    ///
    /// Errors with [`MetricsError::NoData`] when nothing was recorded (in the
    /// window) and [`MetricsError::Unsupported`] on write-only backends.
    fn get_success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError>;

    /// Failures of `operation` by error type, over all time or the last
    /// `time_window` (empty when there were none).
    fn get_failure_breakdown(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError>;
}

/// The success rate of `operation` from its counts: successes over all
/// outcomes, or [`MetricsError::NoData`] when there were none. What every
/// [`SuccessFailureTracker::get_success_rate`] answers from its counts.
///
/// ```
/// use std::collections::BTreeMap;
/// use metrics_protocol::success_rate;
/// let failures = BTreeMap::from([("timeout".to_owned(), 1)]);
/// assert_eq!(success_rate("sync", 3, &failures).unwrap(), 0.75);
/// assert!(success_rate("sync", 0, &BTreeMap::new()).is_err());
/// ```
pub fn success_rate(
    operation: &str,
    successes: u64,
    failures: &BTreeMap<String, u64>,
) -> Result<f64, MetricsError> {
    let total = successes + failures.values().sum::<u64>();
    if total == 0 {
        return Err(MetricsError::NoData(operation.to_owned()));
    }
    Ok(successes as f64 / total as f64)
}
