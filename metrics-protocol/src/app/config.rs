//! The configuration of `initialize_metrics`.

use serde::{Deserialize, Serialize};

use crate::error::MetricsError;

/// Settings of a metrics system, as `initialize_metrics(config)` takes them:
/// the one place for their defaults and limits (the agent's configuration
/// uses these). Missing fields take their defaults; unknown fields are an
/// error that names them.
///
/// ```
/// use metrics_protocol::app::MetricsConfig;
/// let c: MetricsConfig = serde_json::from_str(
///     r#"{"collection_interval": 10, "retention_days": 30, "export_endpoints": ["out.prom"]}"#,
/// ).unwrap();
/// assert_eq!(c.collection_interval, 10.0);
/// c.validate().unwrap();
/// assert!(serde_json::from_str::<MetricsConfig>(r#"{"retention_dayz": 1}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Seconds between two collections (resource polls, async collection).
    pub collection_interval: f64,
    /// Days of history the backends keep.
    pub retention_days: f64,
    /// Where `export_metrics_async` sends exports: file paths or
    /// `http://127.0.0.1:PORT/...` URLs.
    pub export_endpoints: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            collection_interval: Self::DEFAULT_COLLECTION_INTERVAL,
            retention_days: Self::DEFAULT_RETENTION_DAYS,
            export_endpoints: Vec::new(),
        }
    }
}

impl MetricsConfig {
    /// Default seconds between two collections.
    pub const DEFAULT_COLLECTION_INTERVAL: f64 = 10.0;
    /// Shortest collection interval, in seconds: CPU usage needs two
    /// readings at least this far apart.
    pub const MIN_COLLECTION_INTERVAL: f64 = 0.2;
    /// Default days of history.
    pub const DEFAULT_RETENTION_DAYS: f64 = 1.0;
    /// Shortest retention, in days: past the one-hour window.
    pub const MIN_RETENTION_DAYS: f64 = 1.0 / 24.0;
    /// Longest retention, in days (ten years).
    pub const MAX_RETENTION_DAYS: f64 = 3660.0;

    /// Checks `collection_interval` (seconds); `field` and `raw` name what
    /// the user wrote in the error.
    pub fn check_collection_interval(
        field: &str,
        raw: &str,
        secs: f64,
    ) -> Result<(), MetricsError> {
        if secs.is_finite() && secs >= Self::MIN_COLLECTION_INTERVAL {
            Ok(())
        } else {
            Err(invalid(
                field,
                raw,
                format!(
                    "must be a number of seconds, at least {}",
                    Self::MIN_COLLECTION_INTERVAL
                ),
            ))
        }
    }

    /// Checks `retention_days`; `field` and `raw` name what the user wrote.
    pub fn check_retention_days(field: &str, raw: &str, days: f64) -> Result<(), MetricsError> {
        if days.is_finite() && days > Self::MIN_RETENTION_DAYS && days <= Self::MAX_RETENTION_DAYS {
            Ok(())
        } else {
            Err(invalid(
                field,
                raw,
                "must be a number of days longer than one hour (0.05) and at most 3660",
            ))
        }
    }

    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let ci = self.collection_interval;
        Self::check_collection_interval("collection_interval", &ci.to_string(), ci)?;
        let rd = self.retention_days;
        Self::check_retention_days("retention_days", &rd.to_string(), rd)?;
        for e in &self.export_endpoints {
            if e.trim().is_empty() {
                return Err(invalid(
                    "export_endpoints",
                    e.clone(),
                    "an endpoint must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// The collection interval as a duration (after [`validate`](Self::validate)).
    pub fn collection_interval_duration(&self) -> std::time::Duration {
        std::time::Duration::try_from_secs_f64(self.collection_interval)
            .unwrap_or(std::time::Duration::from_secs(10))
    }
}

/// A configuration value that cannot be used, naming its field.
fn invalid(
    field: impl AsRef<str>,
    value: impl AsRef<str>,
    reason: impl AsRef<str>,
) -> MetricsError {
    MetricsError::InvalidArgument(format!(
        "invalid configuration: {} = `{}`: {}",
        field.as_ref(),
        value.as_ref(),
        reason.as_ref()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_field() {
        let c = MetricsConfig {
            collection_interval: -1.0,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("collection_interval") && e.contains("-1"), "{e}");
        let c = MetricsConfig {
            retention_days: 0.0,
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("retention_days")
        );
        let e = serde_json::from_str::<MetricsConfig>(r#"{"colection_interval": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("colection_interval"), "{e}");
    }
}
