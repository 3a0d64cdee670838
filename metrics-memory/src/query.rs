//! Range queries and calendar rollups over the windows, in the spirit of the
//! reference windowed aggregator and analytics services.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use metrics_protocol::MetricsError;
use metrics_protocol::validate::tags_contain;
use serde::{Deserialize, Serialize};

use crate::MemoryMetrics;
use crate::clock::to_datetime;

/// A range query: one metric, a tag filter, a time range, a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeQuery {
    /// Metric name.
    pub name: String,
    /// Series must carry all of these tags (containment).
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Start of the range (inclusive).
    pub start: DateTime<Utc>,
    /// End of the range (exclusive).
    pub end: DateTime<Utc>,
    /// Width of each returned bin; must be a multiple of the finest window bin.
    #[serde(with = "metrics_protocol::serde_util::duration_ms", rename = "step_ms")]
    pub step: Duration,
    /// Group the result by the value of this tag key (series without it form
    /// the group `None`); without it every matching series is merged.
    #[serde(default)]
    pub group_by: Option<String>,
}

/// Statistics of one bin of a range query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeBin {
    /// Start of the bin.
    pub start: DateTime<Utc>,
    /// Samples.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean.
    pub avg: f64,
}

/// The bins of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeSeries {
    /// The group-by tag's value (`None`: no grouping, or the tag is absent).
    pub group: Option<String>,
    /// Non-empty bins, oldest first.
    pub bins: Vec<RangeBin>,
}

/// A calendar period for [`MemoryMetrics::rollup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    /// Clock hours.
    Hour,
    /// UTC days.
    Day,
    /// ISO weeks (starting Monday).
    IsoWeek,
    /// Calendar months.
    Month,
}

impl Calendar {
    /// The start of the period holding `t`.
    pub fn period_start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let day = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
        match self {
            Calendar::Hour => t
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(t),
            Calendar::Day => day(t.date_naive()),
            Calendar::IsoWeek => {
                let d = t.date_naive();
                day(d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday())))
            }
            Calendar::Month => day(t.date_naive().with_day(1).unwrap_or(t.date_naive())),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    fn add(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            (self.min, self.max) = (min, max);
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.count += count;
        self.sum += sum;
    }

    fn bin(self, start: DateTime<Utc>) -> RangeBin {
        RangeBin {
            start,
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            avg: if self.count == 0 {
                0.0
            } else {
                self.sum / self.count as f64
            },
        }
    }
}

impl MemoryMetrics {
    /// Bins of `q.name` between `q.start` and `q.end`, `q.step` wide,
    /// optionally grouped by one tag. Data comes from the windows, so only
    /// the retention (24 h by default) can be queried; a stored bin wider
    /// than the step lands in the step bin holding its start.
    pub fn range_query(&self, q: &RangeQuery) -> Result<Vec<RangeSeries>, MetricsError> {
        let step_ms = q.step.as_millis() as i64;
        let finest = self
            .config
            .windows
            .first()
            .map_or(1, |w| w.bin.as_millis() as i64);
        if step_ms <= 0 || step_ms % finest != 0 {
            return Err(MetricsError::InvalidArgument(format!(
                "step {:?} must be a positive multiple of the finest bin ({finest} ms)",
                q.step
            )));
        }
        if q.end <= q.start {
            return Err(MetricsError::InvalidArgument(
                "range end must be after its start".into(),
            ));
        }
        let (start, end) = (q.start.timestamp_millis(), q.end.timestamp_millis());
        self.collect_bins(&q.name, &q.tags, q.group_by.as_deref(), start, end, |t| {
            start + (t - start).div_euclid(step_ms) * step_ms
        })
    }

    /// Calendar rollups (hour, day, ISO week, month) of `name` over
    /// `[start, end)`, optionally grouped by one tag.
    pub fn rollup(
        &self,
        name: &str,
        tags: &[(String, String)],
        period: Calendar,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        group_by: Option<&str>,
    ) -> Result<Vec<RangeSeries>, MetricsError> {
        self.collect_bins(
            name,
            tags,
            group_by,
            start.timestamp_millis(),
            end.timestamp_millis(),
            |t| period.period_start(to_datetime(t)).timestamp_millis(),
        )
    }

    fn collect_bins(
        &self,
        name: &str,
        tags: &[(String, String)],
        group_by: Option<&str>,
        start: i64,
        end: i64,
        bucket: impl Fn(i64) -> i64,
    ) -> Result<Vec<RangeSeries>, MetricsError> {
        let filter: Vec<(&str, &str)> =
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let now = self.now_ms();
        let mut groups: BTreeMap<Option<String>, BTreeMap<i64, Acc>> = BTreeMap::new();
        for s in self.registry.by_name(name) {
            if !tags_contain(s.tag_pairs(), &filter) {
                continue;
            }
            let group = group_by.and_then(|g| {
                s.tag_pairs()
                    .find(|(k, _)| *k == g)
                    .map(|(_, v)| v.to_owned())
            });
            let bins = groups.entry(group).or_default();
            s.for_each_bin(start, now, |bin_start, b| {
                if bin_start < end {
                    bins.entry(bucket(bin_start))
                        .or_default()
                        .add(b.count, b.sum, b.min, b.max);
                }
            });
        }
        Ok(groups
            .into_iter()
            .map(|(group, bins)| RangeSeries {
                group,
                bins: bins
                    .into_iter()
                    .filter(|(_, a)| a.count > 0)
                    .map(|(t, a)| a.bin(to_datetime(t)))
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_start_where_expected() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 15, 42, 7).unwrap(); // a Thursday
        assert_eq!(
            Calendar::Hour.period_start(t),
            Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap()
        );
        assert_eq!(
            Calendar::Day.period_start(t),
            Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()
        );
        assert_eq!(
            Calendar::IsoWeek.period_start(t),
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
        );
        assert_eq!(
            Calendar::Month.period_start(t),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
    }
}
