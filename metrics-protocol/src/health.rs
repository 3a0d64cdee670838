//! Health: what each backend says about itself.

use std::collections::BTreeMap;
use std::fmt;

use crate::backend::validate::DropReason;

/// The three states of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HealthStatus {
    /// Everything works.
    Healthy,
    /// Working, but losing data or close to a limit.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// The worse of two statuses.
    pub fn worst(self, other: HealthStatus) -> HealthStatus {
        self.max(other)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// What one backend reports about itself.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendHealth {
    /// Backend name (`memory`, `statsd`, ...).
    pub name: String,
    /// Overall state of the backend.
    pub status: HealthStatus,
    /// Samples dropped so far, by reason.
    #[cfg_attr(feature = "serde", serde(default))]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
    pub dropped: BTreeMap<DropReason, u64>,
    /// Backend-specific gauges: `series`, `queue_depth`, `sent`,
    /// `send_errors`, `reachable` (1 or 0), ...
    #[cfg_attr(feature = "serde", serde(default))]
    pub details: BTreeMap<String, f64>,
    /// Metric names whose cardinality limit was reached.
    #[cfg_attr(feature = "serde", serde(default))]
    pub overflowed_metrics: Vec<String>,
    /// A human-readable remark (last error, ...).
    #[cfg_attr(feature = "serde", serde(default))]
    pub message: Option<String>,
}

impl BackendHealth {
    /// A healthy report with no details.
    pub fn healthy(name: impl Into<String>) -> Self {
        BackendHealth {
            name: name.into(),
            status: HealthStatus::Healthy,
            dropped: BTreeMap::new(),
            details: BTreeMap::new(),
            overflowed_metrics: Vec::new(),
            message: None,
        }
    }

    /// Samples dropped for any reason.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.values().sum()
    }
}
