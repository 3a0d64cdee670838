//! Configuration of the memory backend.

use std::time::Duration;

use metrics_protocol::MetricsError;
use serde::{Deserialize, Serialize};

use crate::ring::WindowSpec;

/// A configuration value that cannot be used, as every constructor and
/// builder of this crate reports it: the field, the value as given, and
/// what is wrong with it.
///
/// ```
/// use metrics_memory::{MemoryConfig, MemoryMetrics};
/// let e = MemoryMetrics::with_config(MemoryConfig { cardinality_limit: 0, ..Default::default() })
///     .unwrap_err();
/// assert_eq!(e.field, "cardinality_limit");
/// assert_eq!(e.to_string(), "cardinality_limit = `0`: must be at least 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = `{value}`: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub field: String,
    /// Its value, as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl From<ConfigError> for MetricsError {
    fn from(e: ConfigError) -> Self {
        MetricsError::InvalidArgument(e.to_string())
    }
}

pub(crate) fn invalid(
    field: impl std::fmt::Display,
    value: impl std::fmt::Display,
    reason: impl std::fmt::Display,
) -> ConfigError {
    ConfigError {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Settings of a [`MemoryMetrics`](crate::MemoryMetrics). Every field has a
/// default; unknown fields are an error.
///
/// ```
/// let c: metrics_memory::MemoryConfig =
///     serde_json::from_str(r#"{"cardinality_limit": 100, "idle_expiry_secs": 600}"#).unwrap();
/// assert_eq!(c.windows.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Rings of bins, finest first (default 5 m @ 10 s, 1 h @ 1 min, 24 h @ 15 min).
    pub windows: Vec<WindowSpec>,
    /// Series per metric name before new tag sets fold into the overflow
    /// series (default 2000, as OpenTelemetry).
    pub cardinality_limit: usize,
    /// Distinct metric names (default 10,000): a sample with a new name past
    /// it is dropped, counted, and health is degraded naming the limit.
    pub max_names: usize,
    /// Series over all names (default 100,000), not counting each name's
    /// one overflow series: past it, new tag sets fold into their name's
    /// overflow series, as past `cardinality_limit`.
    pub max_series: usize,
    /// Series not recorded into for this many seconds are removed (default:
    /// never; also read as a duration, `"10m"`). Series bound by a handle
    /// never expire.
    #[serde(deserialize_with = "metrics_kit::duration::opt_secs")]
    pub idle_expiry_secs: Option<u64>,
    /// Running timers kept before the oldest is evicted (default 10000).
    pub max_running_timers: usize,
    /// Raw samples kept per histogram or timer series for tests to read back
    /// (default 0: none; the sketch does not keep samples).
    pub keep_samples: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            windows: WindowSpec::defaults(),
            cardinality_limit: 2000,
            max_names: 10_000,
            max_series: 100_000,
            idle_expiry_secs: None,
            max_running_timers: 10_000,
            keep_samples: 0,
        }
    }
}

impl MemoryConfig {
    /// The same configuration with the last (coarsest) window spanning
    /// `days` of retention: its bin is kept while the window fits 10,000
    /// bins, else widened in whole multiples. This is the backend's
    /// retention policy; errors name `retention_days` (or `memory.windows`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use metrics_memory::MemoryConfig;
    /// let c = MemoryConfig::default().with_retention_days(7.0).unwrap();
    /// assert_eq!(c.windows.last().unwrap().span, Duration::from_secs(7 * 86_400));
    /// assert!(MemoryConfig::default().with_retention_days(0.01).is_err());
    /// ```
    pub fn with_retention_days(mut self, days: f64) -> Result<Self, ConfigError> {
        let bad = |reason: String| invalid("retention_days", days, reason);
        let Some(last) = self.windows.pop() else {
            return Err(invalid(
                "memory.windows",
                "[]",
                "at least one window is needed",
            ));
        };
        let span_ms = (days * 86_400_000.0).round();
        if !(span_ms.is_finite() && span_ms >= 1.0) {
            return Err(bad("must be a positive number of days".into()));
        }
        let span_ms = span_ms as u128;
        let bin_ms = last.bin.as_millis().max(1);
        let factor = span_ms.div_ceil(bin_ms * 10_000).max(1);
        let bin = bin_ms * factor;
        let span = span_ms.div_ceil(bin) * bin;
        if let Some(prev) = self.windows.last()
            && span <= prev.span.as_millis()
        {
            return Err(bad(format!(
                "must reach past the {:?} window before it",
                prev.span
            )));
        }
        self.windows.push(WindowSpec::new(
            Duration::from_millis(span as u64),
            Duration::from_millis(bin as u64),
        ));
        Ok(self)
    }
}
