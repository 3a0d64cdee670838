//! Configuration of the memory backend.

use serde::{Deserialize, Serialize};

use crate::window::WindowSpec;

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
    /// never). Series bound by a handle never expire.
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
