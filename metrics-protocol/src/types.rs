//! Plain data types: tags, metric kinds and units, timer ids, timing results
//! and statistics.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::MetricsError;

/// Borrowed tags of one recording call: `&[("method", "GET"), ("code", "200")]`.
///
/// Passing a slice of borrowed pairs means a call site allocates nothing;
/// `&[]` means no tags. Order does not matter: backends treat `a=1,b=2` and
/// `b=2,a=1` as the same series.
pub type Tags<'a> = &'a [(&'a str, &'a str)];

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MetricUnit {
    /// Seconds.
    #[cfg_attr(feature = "serde", serde(rename = "seconds"))]
    Seconds,
    /// Milliseconds (the default unit of timers).
    #[cfg_attr(feature = "serde", serde(rename = "milliseconds"))]
    Milliseconds,
    /// Microseconds.
    #[cfg_attr(feature = "serde", serde(rename = "microseconds"))]
    Microseconds,
    /// Bytes.
    #[cfg_attr(feature = "serde", serde(rename = "bytes"))]
    Bytes,
    /// Kilobytes (1024 bytes).
    #[cfg_attr(feature = "serde", serde(rename = "kilobytes"))]
    Kilobytes,
    /// Megabytes (1024 * 1024 bytes).
    #[cfg_attr(feature = "serde", serde(rename = "megabytes"))]
    Megabytes,
    /// A dimensionless count.
    #[cfg_attr(feature = "serde", serde(rename = "count"))]
    Count,
    /// A percentage, 0 to 100.
    #[cfg_attr(feature = "serde", serde(rename = "percent"))]
    Percent,
    /// Operations per second.
    #[cfg_attr(feature = "serde", serde(rename = "ops/sec"))]
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

/// The id of a running timer, returned by `start_timer`.
///
/// Ids are handed out in sequence by the timer table that started them
/// (cheap: no randomness, no allocation); `TimerId(0)` is never a running
/// timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct TimerId(pub u64);

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer-{}", self.0)
    }
}

impl FromStr for TimerId {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        s.strip_prefix("timer-")
            .unwrap_or(s)
            .parse()
            .map(TimerId)
            .map_err(|e| MetricsError::InvalidArgument(format!("bad timer id `{s}`: {e}")))
    }
}

#[cfg(feature = "app")]
/// Statistics of a timer. Every figure is a [`Duration`].
///
/// `count`, `sum`, `min`, `max` and `avg` are exact; the percentiles come
/// from the backend's quantile sketch, within the relative error its docs
/// state. Serialised as milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimingStats {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub sum: Duration,
    /// Mean.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub avg: Duration,
    /// Smallest sample.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub min: Duration,
    /// Largest sample.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub max: Duration,
    /// Median.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub p50: Duration,
    /// 90th percentile.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub p90: Duration,
    /// 95th percentile.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub p95: Duration,
    /// 99th percentile.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::duration_ms"))]
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub p99: Duration,
}

#[cfg(feature = "app")]
impl TimingStats {
    /// Builds the statistics from figures in milliseconds, as a backend that
    /// keeps timers in milliseconds holds them; a negative, NaN or
    /// unrepresentable figure reads as zero.
    pub fn from_millis(count: u64, sum: f64, min: f64, max: f64, quantiles: [f64; 4]) -> Self {
        let d = |ms: f64| Duration::try_from_secs_f64(ms / 1e3).unwrap_or_default();
        let avg = if count == 0 { 0.0 } else { sum / count as f64 };
        TimingStats {
            count,
            sum: d(sum),
            avg: d(avg),
            min: d(min),
            max: d(max),
            p50: d(quantiles[0]),
            p90: d(quantiles[1]),
            p95: d(quantiles[2]),
            p99: d(quantiles[3]),
        }
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
    fn names_round_trip_through_fromstr() {
        for u in MetricUnit::ALL {
            assert_eq!(u.as_str().parse::<MetricUnit>().unwrap(), u);
        }
        for t in MetricType::ALL {
            assert_eq!(t.as_str().parse::<MetricType>().unwrap(), t);
        }
    }

    #[cfg(feature = "app")]
    #[test]
    fn serde_names_and_milliseconds() {
        for u in MetricUnit::ALL {
            let json = serde_json::to_string(&u).unwrap();
            assert_eq!(json, format!("\"{}\"", u.as_str()));
        }
        for t in MetricType::ALL {
            assert_eq!(
                serde_json::from_str::<MetricType>(&format!("\"{t}\"")).unwrap(),
                t
            );
        }
        let s = TimingStats::from_millis(1, 1.5, 1.5, 1.5, [1.5; 4]);
        let v: serde_json::Value = serde_json::to_value(s).unwrap();
        assert_eq!(v["sum"], 1.5);
    }

    #[test]
    fn durations_convert_to_time_units_only() {
        let d = Duration::from_micros(1500);
        assert_eq!(MetricUnit::Microseconds.from_duration(d), Some(1500.0));
        assert_eq!(MetricUnit::Bytes.from_duration(d), None);
    }

    #[test]
    fn timer_ids_parse_and_reject_garbage() {
        let id = TimerId(42);
        assert_eq!(id.to_string(), "timer-42");
        assert_eq!(id.to_string().parse::<TimerId>().unwrap(), id);
        assert_eq!("7".parse::<TimerId>().unwrap(), TimerId(7));
        assert!("not-an-id".parse::<TimerId>().is_err());
    }

    #[cfg(feature = "app")]
    #[test]
    fn timing_stats_from_milliseconds_are_durations() {
        let s = TimingStats::from_millis(4, 10.0, 1.0, 4.0, [2.0, 3.5, 3.9, 4.0]);
        assert_eq!(s.avg, Duration::from_micros(2500));
        assert_eq!(s.p90, Duration::from_micros(3500));
        assert_eq!(
            TimingStats::from_millis(1, f64::NAN, -1.0, 1.0, [0.0; 4]).sum,
            Duration::ZERO
        );
    }
}
