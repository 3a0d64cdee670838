//! Values the queries answer with: [`MetricValue`], [`MetricSummary`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{MetricType, MetricUnit, Tags};

/// One recorded or reported value of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// Metric name.
    pub name: String,
    /// The value (a counter's total, a gauge's last value, a distribution's
    /// sample or summary value, depending on where it comes from).
    pub value: f64,
    /// Kind of metric.
    pub metric_type: MetricType,
    /// Unit of `value`.
    pub unit: MetricUnit,
    /// When the value was recorded or read.
    pub timestamp: DateTime<Utc>,
    /// The series' tags, sorted by key.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Free-form annotations (for example `"statistic": "p99"`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl MetricValue {
    /// A value with the current time, the given tags and no metadata.
    pub fn new(
        name: impl Into<String>,
        value: f64,
        metric_type: MetricType,
        unit: MetricUnit,
        tags: Tags<'_>,
    ) -> Self {
        MetricValue {
            name: name.into(),
            value,
            metric_type,
            unit,
            timestamp: Utc::now(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            metadata: BTreeMap::new(),
        }
    }
}

/// Summary statistics of every series of one metric name, over all time or
/// over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricSummary {
    /// Metric name.
    pub name: String,
    /// Kind of metric.
    pub metric_type: MetricType,
    /// Unit of the values below.
    pub unit: MetricUnit,
    /// Number of series (tag sets) merged into this summary.
    pub series: usize,
    /// Number of samples (for counters: number of increments).
    pub count: u64,
    /// Sum of the samples (for counters: the total).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub sum: f64,
    /// Mean of the samples.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub avg: f64,
    /// Smallest sample.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub min: f64,
    /// Largest sample.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub max: f64,
    /// Last value set (gauges), else `None`.
    pub last: Option<f64>,
    /// Median (distributions only).
    pub p50: Option<f64>,
    /// 90th percentile (distributions only).
    pub p90: Option<f64>,
    /// 95th percentile (distributions only).
    pub p95: Option<f64>,
    /// 99th percentile (distributions only).
    pub p99: Option<f64>,
    /// The window summarised, `None` for all time (serialised as milliseconds).
    #[serde(default, with = "crate::serde_util::option_duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub window: Option<Duration>,
    /// How far back, from now, the count, sum and extremes reach: from
    /// the start of the earliest bin counted (serialised as milliseconds;
    /// `None` for all time or when not known, as for an answer from
    /// stored history alone). At most `window`; less when the series are
    /// younger than the window, or when a bin straddling the window's
    /// start was left out whole (a backend keeps older history in coarser
    /// bins, and no sample from before the window is ever counted).
    #[serde(default, with = "crate::serde_util::option_duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub covers: Option<Duration>,
    /// The same for the percentiles (`None` for all time and for kinds
    /// without percentiles). A backend whose percentile blocks are coarser
    /// than its bins may report less; the memory backend covers what
    /// `covers` does (a share of the block straddling the window's start
    /// stands for the samples before its first whole block), so the two
    /// are equal for its windows.
    #[serde(default, with = "crate::serde_util::option_duration_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub quantiles_cover: Option<Duration>,
}
