//! [`ExportFormat`]: the formats, their names and HTTP content types.

use std::str::FromStr;

use metrics_protocol::MetricsError;
use serde::{Deserialize, Serialize};

/// An exposition format: what [`Exporter`](crate::Exporter) encodes.
///
/// ```
/// use metrics_exposition::ExportFormat;
/// assert_eq!("Prometheus".parse::<ExportFormat>().unwrap(), ExportFormat::Prometheus);
/// let err = "xml".parse::<ExportFormat>().unwrap_err();
/// assert!(err.to_string().contains("unsupported export format `xml`"));
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum ExportFormat {
    /// A JSON document.
    Json,
    /// CSV, one row per series (and statistic).
    Csv,
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
}

impl ExportFormat {
    /// All formats.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::Json,
        ExportFormat::Csv,
        ExportFormat::Prometheus,
        ExportFormat::OpenMetrics,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The HTTP `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            ExportFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

impl FromStr for ExportFormat {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| MetricsError::UnsupportedFormat(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_formats_parse_and_reject_unknown_names() {
        for f in ExportFormat::ALL {
            assert_eq!(f.as_str().parse::<ExportFormat>().unwrap(), f);
        }
        assert!(matches!(
            "yaml".parse::<ExportFormat>(),
            Err(MetricsError::UnsupportedFormat(s)) if s == "yaml"
        ));
    }
}
