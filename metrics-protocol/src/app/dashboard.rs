//! Dashboard data: typed, serialisable panels a UI can draw as they are.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::MetricsError;
use crate::types::MetricUnit;

/// Which dashboard to build (`create_dashboard_data`).
///
/// ```
/// use metrics_protocol::app::DashboardKind;
/// assert_eq!("errors".parse::<DashboardKind>().unwrap(), DashboardKind::Errors);
/// assert!("weather".parse::<DashboardKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DashboardKind {
    /// Top metrics, success rate, health at a glance.
    Overview,
    /// Timer percentiles and throughput.
    Performance,
    /// Failure rates and breakdowns by error type.
    Errors,
    /// CPU, memory, disk and network.
    Resources,
}

impl DashboardKind {
    /// Every kind.
    pub const ALL: [DashboardKind; 4] = [
        DashboardKind::Overview,
        DashboardKind::Performance,
        DashboardKind::Errors,
        DashboardKind::Resources,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DashboardKind::Overview => "overview",
            DashboardKind::Performance => "performance",
            DashboardKind::Errors => "errors",
            DashboardKind::Resources => "resources",
        }
    }
}

impl fmt::Display for DashboardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DashboardKind {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DashboardKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                MetricsError::InvalidArgument(format!(
                    "unknown dashboard kind `{s}` (expected overview, performance, errors or resources)"
                ))
            })
    }
}

/// A suggested way to draw a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChartType {
    /// Values over time.
    Line,
    /// Stacked values over time.
    Area,
    /// Values side by side.
    Bar,
    /// Parts of a whole.
    Pie,
    /// One current value against a range.
    Gauge,
    /// One big number.
    Stat,
    /// Rows of values.
    Table,
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    /// When (for bar or pie panels: the time of the reading).
    pub timestamp: DateTime<Utc>,
    /// The value.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub value: f64,
}

/// One line (or bar group, or slice) of a panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PanelSeries {
    /// Legend label.
    pub label: String,
    /// Tags that identify the series.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Points, oldest first.
    pub points: Vec<Point>,
}

/// One panel of a dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Panel {
    /// Title.
    pub title: String,
    /// Unit of every value in the panel.
    pub unit: MetricUnit,
    /// Suggested chart.
    pub chart: ChartType,
    /// The data.
    pub series: Vec<PanelSeries>,
}

/// A whole dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DashboardData {
    /// Which dashboard this is.
    pub kind: DashboardKind,
    /// Title.
    pub title: String,
    /// When it was computed.
    pub generated_at: DateTime<Utc>,
    /// Panels, in display order.
    pub panels: Vec<Panel>,
}
