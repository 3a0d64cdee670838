//! Health reports: what each backend and the whole system say about themselves.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::duration_ms;
use crate::validate::DropReason;

/// The three states of a health check, as in the reference monitoring patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendHealth {
    /// Backend name (`memory`, `statsd`, ...).
    pub name: String,
    /// Overall state of the backend.
    pub status: HealthStatus,
    /// Samples dropped so far, by reason.
    #[serde(default)]
    pub dropped: BTreeMap<DropReason, u64>,
    /// Backend-specific gauges: `series`, `queue_depth`, `sent`,
    /// `send_errors`, `reachable` (1 or 0), ...
    #[serde(default)]
    pub details: BTreeMap<String, f64>,
    /// Metric names whose cardinality limit was reached.
    #[serde(default)]
    pub overflowed_metrics: Vec<String>,
    /// A human-readable remark (last error, ...).
    #[serde(default)]
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

/// The result of one registered health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckResult {
    /// Name the check was registered under.
    pub name: String,
    /// What it found.
    pub status: HealthStatus,
    /// Why (required for anything but healthy).
    pub message: Option<String>,
    /// How long the check took (serialised as milliseconds).
    #[serde(with = "duration_ms", rename = "duration_ms")]
    pub duration: Duration,
}

/// Health of the whole metrics system (`get_system_health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Worst status of every backend and check.
    pub status: HealthStatus,
    /// `status == Healthy`, as the reference protocol's `health["healthy"]`.
    pub healthy: bool,
    /// Failures / (successes + failures) over the report's window, 0 to 1.
    pub error_rate: f64,
    /// Samples dropped so far by every backend, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Each backend.
    pub backends: Vec<BackendHealth>,
    /// Each registered health check.
    pub checks: Vec<HealthCheckResult>,
    /// When the report was made.
    pub timestamp: DateTime<Utc>,
}

impl HealthReport {
    /// Builds a report from backend reports and check results, merging
    /// drop counts and taking the worst status.
    pub fn from_parts(
        backends: Vec<BackendHealth>,
        checks: Vec<HealthCheckResult>,
        error_rate: f64,
    ) -> Self {
        let mut dropped = BTreeMap::new();
        let mut status = HealthStatus::Healthy;
        for b in &backends {
            status = status.worst(b.status);
            for (reason, n) in &b.dropped {
                *dropped.entry(*reason).or_insert(0) += n;
            }
        }
        for c in &checks {
            status = status.worst(c.status);
        }
        HealthReport {
            status,
            healthy: status == HealthStatus::Healthy,
            error_rate,
            dropped,
            backends,
            checks,
            timestamp: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_takes_worst_status_and_sums_drops() {
        let mut a = BackendHealth::healthy("memory");
        a.dropped.insert(DropReason::InvalidName, 2);
        let mut b = BackendHealth::healthy("statsd");
        b.status = HealthStatus::Degraded;
        b.dropped.insert(DropReason::InvalidName, 3);
        b.dropped.insert(DropReason::QueueFull, 1);
        let r = HealthReport::from_parts(vec![a, b], vec![], 0.25);
        assert_eq!(r.status, HealthStatus::Degraded);
        assert!(!r.healthy);
        assert_eq!(r.dropped[&DropReason::InvalidName], 5);
        assert_eq!(r.dropped[&DropReason::QueueFull], 1);
        let check = HealthCheckResult {
            name: "db".into(),
            status: HealthStatus::Unhealthy,
            message: Some("down".into()),
            duration: Duration::from_millis(3),
        };
        let r = HealthReport::from_parts(vec![], vec![check], 0.0);
        assert_eq!(r.status, HealthStatus::Unhealthy);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"][0]["status"], "unhealthy");
        assert_eq!(json["checks"][0]["duration_ms"], 3.0);
    }
}
