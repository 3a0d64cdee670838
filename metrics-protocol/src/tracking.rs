//! [`SuccessFailureTracker`]: success rates and failure breakdowns.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::MetricsError;
use crate::types::Tags;

/// Counts successes and failures of operations.
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
