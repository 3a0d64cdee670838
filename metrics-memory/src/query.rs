//! Range queries and calendar rollups over the rings' bins, in the spirit
//! of the reference windowed aggregator and analytics services.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use metrics_protocol::MetricsError;
use metrics_protocol::backend::validate::tags_contain;
use serde::{Deserialize, Serialize};

use crate::MemoryMetrics;
use crate::clock::to_datetime;
use crate::stats::Exact;

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
    /// Width of each returned bin; must be a multiple of the finest bin.
    #[serde(with = "metrics_protocol::serde_util::duration_ms", rename = "step_ms")]
    pub step: Duration,
    /// Group the result by the value of this tag key (series without it form
    /// the group `None`); without it every matching series is merged.
    #[serde(default)]
    pub group_by: Option<String>,
}

/// Statistics of one step of a range query (or one period of a rollup).
///
/// A step holds exactly the stored bins that start in it and lie wholly
/// inside the query's `[start, end)`: no sample outside the range is ever
/// counted, and no stored bin is split. `covers_start..covers_end` is the
/// time those bins really span: equal to the step when the step is a
/// multiple of the stored bin width and aligned to it; otherwise (bins
/// coarser than the step, 1 min or 15 min bins for older data with the
/// default windows, or a range edge inside a bin) it says what was counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeBin {
    /// Start of the step (or calendar period).
    pub start: DateTime<Utc>,
    /// Start of the earliest stored bin counted in this step.
    pub covers_start: DateTime<Utc>,
    /// End of the latest stored bin counted in this step (exclusive).
    pub covers_end: DateTime<Utc>,
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
pub struct RangeGroup {
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

/// One step being filled: its exact figures and the span its bins cover.
#[derive(Clone, Copy)]
struct Acc {
    exact: Exact,
    from: i64,
    to: i64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            exact: Exact::default(),
            from: i64::MAX,
            to: i64::MIN,
        }
    }
}

impl Acc {
    fn add(&mut self, (from, to): (i64, i64), bin: &Exact) {
        if bin.count == 0 {
            return;
        }
        self.from = self.from.min(from);
        self.to = self.to.max(to);
        self.exact.merge(bin);
    }

    fn merge(&mut self, o: &Acc) {
        self.add((o.from, o.to), &o.exact);
    }

    fn bin(self, start: DateTime<Utc>) -> RangeBin {
        let e = self.exact;
        RangeBin {
            start,
            covers_start: to_datetime(self.from),
            covers_end: to_datetime(self.to),
            count: e.count,
            sum: e.sum,
            min: e.min,
            max: e.max,
            avg: e.avg(),
        }
    }
}

/// The non-empty steps, oldest first, with steps whose stored bins overlap
/// in time merged into the earlier one. (While a coarser bin is filling
/// from the finer ring, the finer ring still holds the rest of its span:
/// such a coarse bin and those finer bins are counted as one step, so every
/// step's `covers` range holds exactly what it counted.)
fn disjoint(bins: BTreeMap<i64, Acc>) -> Vec<RangeBin> {
    let mut out: Vec<(i64, Acc)> = Vec::new();
    for (t, a) in bins.into_iter().filter(|(_, a)| a.exact.count > 0) {
        match out.last_mut() {
            Some((_, prev)) if a.from < prev.to => prev.merge(&a),
            _ => out.push((t, a)),
        }
    }
    out.into_iter()
        .map(|(t, a)| a.bin(to_datetime(t)))
        .collect()
}

impl MemoryMetrics {
    /// Steps of `q.name` between `q.start` and `q.end`, `q.step` wide,
    /// optionally grouped by one tag. Data comes from the rings, so only
    /// the retention (24 h by default) can be queried. Only stored bins
    /// wholly inside `[start, end)` count, each in the step holding its
    /// start; [`RangeBin::covers_start`] and [`RangeBin::covers_end`] say
    /// what a step really spans when stored bins do not line up with it.
    pub fn range_query(&self, q: &RangeQuery) -> Result<Vec<RangeGroup>, MetricsError> {
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
    ) -> Result<Vec<RangeGroup>, MetricsError> {
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
    ) -> Result<Vec<RangeGroup>, MetricsError> {
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
            s.for_each_bin(start, now, |bin_start, width, b| {
                let bin_end = bin_start.saturating_add(width);
                if bin_start >= start && bin_end <= end {
                    bins.entry(bucket(bin_start))
                        .or_default()
                        .add((bin_start, bin_end), b);
                }
            });
        }
        Ok(groups
            .into_iter()
            .map(|(group, bins)| RangeGroup {
                group,
                bins: disjoint(bins),
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
