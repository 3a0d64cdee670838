//! [`HealthReport`]: the health of a whole metrics system, with its
//! registered checks.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::{BackendHealth, DropReason, HealthStatus};

/// The result of one registered health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthCheckResult {
    /// Name the check was registered under.
    pub name: String,
    /// What it found.
    pub status: HealthStatus,
    /// Why (required for anything but healthy).
    pub message: Option<String>,
    /// How long the check took (serialised as milliseconds).
    #[serde(with = "crate::serde_util::duration_ms", rename = "duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub duration: Duration,
}

/// Health of the whole metrics system (`system_health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    /// Worst status of every backend and check.
    pub status: HealthStatus,
    /// `status == Healthy`.
    pub healthy: bool,
    /// Failures / (successes + failures) over the report's window, 0 to 1.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub error_rate: f64,
    /// Samples dropped so far by every backend, by reason.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u64>))]
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
