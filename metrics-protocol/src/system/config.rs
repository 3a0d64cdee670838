//! The configuration of `initialize_metrics`.

use serde::{Deserialize, Serialize};

use crate::error::MetricsError;

/// Settings of a metrics system, as the reference `initialize_metrics(config)`
/// takes them. Missing fields take their defaults; unknown fields are an error
/// that names them.
///
/// ```
/// use metrics_protocol::system::MetricsConfig;
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
    /// Seconds between two collections (resource samples, async collection).
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
            collection_interval: 60.0,
            retention_days: 1.0,
            export_endpoints: Vec::new(),
        }
    }
}

impl MetricsConfig {
    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if !(self.collection_interval.is_finite() && self.collection_interval >= 0.1) {
            return Err(MetricsError::config(
                "collection_interval",
                self.collection_interval.to_string(),
                "must be a number of seconds, at least 0.1",
            ));
        }
        if !(self.retention_days.is_finite() && self.retention_days > 0.0) {
            return Err(MetricsError::config(
                "retention_days",
                self.retention_days.to_string(),
                "must be a positive number of days",
            ));
        }
        for e in &self.export_endpoints {
            if e.trim().is_empty() {
                return Err(MetricsError::config(
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
            .unwrap_or(std::time::Duration::from_secs(60))
    }
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
