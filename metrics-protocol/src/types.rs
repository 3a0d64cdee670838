//! Plain data types: metric kinds and units, recorded values, timing results,
//! statistics, export formats and timer ids.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::MetricsError;

/// Borrowed tags of one recording call: `&[("method", "GET"), ("code", "200")]`.
///
/// Passing a slice of borrowed pairs means a call site allocates nothing;
/// `&[]` means no tags. Order does not matter: backends treat `a=1,b=2` and
/// `b=2,a=1` as the same series.
pub type Tags<'a> = &'a [(&'a str, &'a str)];

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// Monotonically increasing total.
    Counter,
    /// Current value at a point in time.
    Gauge,
    /// Distribution of values.
    Histogram,
    /// Distribution of durations.
    Timer,
    /// Events per unit of time (derived from a counter over a window).
    Rate,
}

impl MetricType {
    /// All metric types, in declaration order.
    pub const ALL: [MetricType; 5] = [
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::Timer,
        MetricType::Rate,
    ];

    /// The lowercase name (`"counter"`, ...), as used in serde and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Timer => "timer",
            MetricType::Rate => "rate",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricType {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                MetricsError::InvalidArgument(format!(
                    "unknown metric type `{s}` (expected counter, gauge, histogram, timer or rate)"
                ))
            })
    }
}

/// The unit of a metric value.
///
/// Byte units are binary: one kilobyte is 1024 bytes, one megabyte 1024 KB,
/// as `free`, `top` and psutil's human-readable output use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MetricUnit {
    /// Seconds.
    #[serde(rename = "seconds")]
    Seconds,
    /// Milliseconds (the default unit of timers).
    #[serde(rename = "milliseconds")]
    Milliseconds,
    /// Microseconds.
    #[serde(rename = "microseconds")]
    Microseconds,
    /// Bytes.
    #[serde(rename = "bytes")]
    Bytes,
    /// Kilobytes (1024 bytes).
    #[serde(rename = "kilobytes")]
    Kilobytes,
    /// Megabytes (1024 * 1024 bytes).
    #[serde(rename = "megabytes")]
    Megabytes,
    /// A dimensionless count.
    #[serde(rename = "count")]
    Count,
    /// A percentage, 0 to 100.
    #[serde(rename = "percent")]
    Percent,
    /// Operations per second.
    #[serde(rename = "ops/sec")]
    OperationsPerSecond,
}

impl MetricUnit {
    /// All units, in declaration order.
    pub const ALL: [MetricUnit; 9] = [
        MetricUnit::Seconds,
        MetricUnit::Milliseconds,
        MetricUnit::Microseconds,
        MetricUnit::Bytes,
        MetricUnit::Kilobytes,
        MetricUnit::Megabytes,
        MetricUnit::Count,
        MetricUnit::Percent,
        MetricUnit::OperationsPerSecond,
    ];

    /// The name used in serde and exports (`"seconds"`, `"ops/sec"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricUnit::Seconds => "seconds",
            MetricUnit::Milliseconds => "milliseconds",
            MetricUnit::Microseconds => "microseconds",
            MetricUnit::Bytes => "bytes",
            MetricUnit::Kilobytes => "kilobytes",
            MetricUnit::Megabytes => "megabytes",
            MetricUnit::Count => "count",
            MetricUnit::Percent => "percent",
            MetricUnit::OperationsPerSecond => "ops/sec",
        }
    }

    /// The family and the factor to the family's base unit (seconds or bytes).
    fn base(self) -> Option<(u8, f64)> {
        match self {
            MetricUnit::Seconds => Some((0, 1.0)),
            MetricUnit::Milliseconds => Some((0, 1e-3)),
            MetricUnit::Microseconds => Some((0, 1e-6)),
            MetricUnit::Bytes => Some((1, 1.0)),
            MetricUnit::Kilobytes => Some((1, 1024.0)),
            MetricUnit::Megabytes => Some((1, 1024.0 * 1024.0)),
            MetricUnit::Count | MetricUnit::Percent | MetricUnit::OperationsPerSecond => None,
        }
    }

    /// Converts `value` from this unit into `to`.
    ///
    /// Time units convert into each other, byte units into each other, and
    /// every unit into itself; anything else is
    /// [`MetricsError::IncompatibleUnits`].
    ///
    /// ```
    /// use metrics_protocol::MetricUnit;
    /// assert_eq!(MetricUnit::Seconds.convert(1.5, MetricUnit::Milliseconds).unwrap(), 1500.0);
    /// assert_eq!(MetricUnit::Megabytes.convert(1.0, MetricUnit::Kilobytes).unwrap(), 1024.0);
    /// assert!(MetricUnit::Bytes.convert(1.0, MetricUnit::Seconds).is_err());
    /// ```
    pub fn convert(self, value: f64, to: MetricUnit) -> Result<f64, MetricsError> {
        if self == to {
            return Ok(value);
        }
        match (self.base(), to.base()) {
            (Some((fa, ka)), Some((fb, kb))) if fa == fb => Ok(value * ka / kb),
            _ => Err(MetricsError::IncompatibleUnits { from: self, to }),
        }
    }

    /// Whether this is a unit of time.
    pub fn is_time(self) -> bool {
        matches!(self.base(), Some((0, _)))
    }

    /// Whether this is a unit of data size.
    pub fn is_bytes(self) -> bool {
        matches!(self.base(), Some((1, _)))
    }

    /// Expresses a duration in this time unit; `None` for non-time units.
    pub fn from_duration(self, duration: Duration) -> Option<f64> {
        MetricUnit::Seconds
            .convert(duration.as_secs_f64(), self)
            .ok()
            .filter(|_| self.is_time())
    }
}

impl fmt::Display for MetricUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricUnit {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MetricUnit::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| MetricsError::InvalidArgument(format!("unknown metric unit `{s}`")))
    }
}

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

/// A unique id of a running timer, returned by `start_timer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(pub uuid::Uuid);

impl TimerId {
    /// A fresh random id.
    pub fn new() -> Self {
        TimerId(uuid::Uuid::new_v4())
    }
}

impl Default for TimerId {
    fn default() -> Self {
        TimerId::new()
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for TimerId {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s.trim())
            .map(TimerId)
            .map_err(|e| MetricsError::InvalidArgument(format!("bad timer id `{s}`: {e}")))
    }
}

/// Serialises a [`Duration`] as a floating-point number of milliseconds.
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }

    /// Reads milliseconds; negative, NaN or too large values are errors.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1e3).map_err(serde::de::Error::custom)
    }
}

/// The outcome of one timed operation (`stop_timer`, `time_operation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingResult {
    /// Name of the operation, which is also the timer series' name.
    pub operation_name: String,
    /// How long it took (serialised as milliseconds).
    #[serde(with = "duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// Wall-clock start.
    pub start_time: DateTime<Utc>,
    /// Wall-clock end.
    pub end_time: DateTime<Utc>,
    /// Whether the operation succeeded.
    pub success: bool,
    /// The metadata given when the timer was started (the series' tags).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl TimingResult {
    /// The duration in `unit`, or `None` when `unit` is not a time unit.
    pub fn duration_in(&self, unit: MetricUnit) -> Option<f64> {
        unit.from_duration(self.duration)
    }

    /// The duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.duration.as_secs_f64() * 1e3
    }
}

/// Statistics of a timer, all in milliseconds.
///
/// `count`, `sum`, `min`, `max` and `avg` are exact; the percentiles come
/// from the backend's quantile sketch (the memory backend states a 1% relative
/// error bound).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TimingStats {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Mean.
    pub avg: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Summary statistics of every series of one metric name, over all time or
/// over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub sum: f64,
    /// Mean of the samples.
    pub avg: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
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
    #[serde(default, with = "option_duration_ms")]
    pub window: Option<Duration>,
}

/// Serialises an `Option<Duration>` as milliseconds or null.
pub mod option_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes milliseconds or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_secs_f64() * 1e3)),
            None => s.serialize_none(),
        }
    }

    /// Reads milliseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(ms) => Duration::try_from_secs_f64(ms / 1e3)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// An export format of [`crate::MetricsAggregator::export_metrics`].
///
/// ```
/// use metrics_protocol::ExportFormat;
/// assert_eq!("Prometheus".parse::<ExportFormat>().unwrap(), ExportFormat::Prometheus);
/// let err = "xml".parse::<ExportFormat>().unwrap_err();
/// assert!(err.to_string().contains("unsupported export format `xml`"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
            ExportFormat::Prometheus => "prometheus",
            ExportFormat::OpenMetrics => "openmetrics",
        }
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

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    fn time_units_convert_both_ways() {
        assert_eq!(
            MetricUnit::Seconds
                .convert(2.0, MetricUnit::Microseconds)
                .unwrap(),
            2e6
        );
        assert_eq!(
            MetricUnit::Microseconds
                .convert(1500.0, MetricUnit::Milliseconds)
                .unwrap(),
            1.5
        );
        assert_eq!(
            MetricUnit::Milliseconds
                .convert(250.0, MetricUnit::Seconds)
                .unwrap(),
            0.25
        );
    }

    #[test]
    fn byte_units_are_binary() {
        assert_eq!(
            MetricUnit::Kilobytes
                .convert(1.0, MetricUnit::Bytes)
                .unwrap(),
            1024.0
        );
        assert_eq!(
            MetricUnit::Bytes
                .convert(1048576.0, MetricUnit::Megabytes)
                .unwrap(),
            1.0
        );
    }

    #[test]
    fn unrelated_units_do_not_convert() {
        for (a, b) in [
            (MetricUnit::Seconds, MetricUnit::Bytes),
            (MetricUnit::Count, MetricUnit::Percent),
            (MetricUnit::Percent, MetricUnit::Seconds),
            (MetricUnit::OperationsPerSecond, MetricUnit::Count),
        ] {
            assert!(matches!(
                a.convert(1.0, b),
                Err(MetricsError::IncompatibleUnits { .. })
            ));
        }
        assert_eq!(
            MetricUnit::Count.convert(3.0, MetricUnit::Count).unwrap(),
            3.0
        );
    }

    #[test]
    fn names_round_trip_through_serde_and_fromstr() {
        for u in MetricUnit::ALL {
            let json = serde_json::to_string(&u).unwrap();
            assert_eq!(json, format!("\"{}\"", u.as_str()));
            assert_eq!(u.as_str().parse::<MetricUnit>().unwrap(), u);
        }
        for t in MetricType::ALL {
            assert_eq!(
                serde_json::from_str::<MetricType>(&format!("\"{t}\"")).unwrap(),
                t
            );
            assert_eq!(t.as_str().parse::<MetricType>().unwrap(), t);
        }
        for f in ExportFormat::ALL {
            assert_eq!(f.as_str().parse::<ExportFormat>().unwrap(), f);
        }
        assert!(matches!(
            "yaml".parse::<ExportFormat>(),
            Err(MetricsError::UnsupportedFormat(s)) if s == "yaml"
        ));
    }

    #[test]
    fn durations_serialise_as_milliseconds() {
        let r = TimingResult {
            operation_name: "op".into(),
            duration: Duration::from_micros(1500),
            start_time: Utc::now(),
            end_time: Utc::now(),
            success: true,
            metadata: BTreeMap::new(),
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["duration_ms"], 1.5);
        let back: TimingResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.duration_in(MetricUnit::Microseconds), Some(1500.0));
        assert_eq!(r.duration_in(MetricUnit::Bytes), None);
    }

    #[test]
    fn timer_ids_parse_and_reject_garbage() {
        let id = TimerId::new();
        assert_eq!(id.to_string().parse::<TimerId>().unwrap(), id);
        assert!("not-a-uuid".parse::<TimerId>().is_err());
    }
}
