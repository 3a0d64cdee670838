//! [`MemoryRanges`]: the memory backend's range queries and rollups for the
//! HTTP service, and the rollup merging [`HistoryRanges`](crate::HistoryRanges)
//! shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use metrics_http::{
    Period, RangeBin, RangeQueries, RangeRequest, RangeSeries, RollupBin, RollupRequest,
    RollupSeries,
};
use metrics_memory::{Calendar, MemoryMetrics};
use metrics_protocol::MetricsError;
use metrics_store::HistorySeries;

/// `/api/v1/query_range` of `metrics-http` from the memory backend's binned
/// history (the protocol has no range query of its own): what the main
/// program serves.
pub struct MemoryRanges(pub Arc<MemoryMetrics>);

impl RangeQueries for MemoryRanges {
    fn query_range(
        &self,
        r: &RangeRequest,
    ) -> Result<Vec<RangeSeries>, metrics_protocol::MetricsError> {
        let q = metrics_memory::RangeQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start: r.start,
            end: r.end,
            step: r.step,
            group_by: r.group_by.clone(),
        };
        Ok(self
            .0
            .range_query(&q)?
            .into_iter()
            .map(|s| RangeSeries {
                group: s.group,
                bins: s
                    .bins
                    .into_iter()
                    .map(|b| RangeBin {
                        start: b.start,
                        count: b.count,
                        sum: b.sum,
                        min: b.min,
                        max: b.max,
                        avg: b.avg,
                    })
                    .collect(),
            })
            .collect())
    }

    fn rollup(&self, r: &RollupRequest) -> Option<Result<Vec<RollupSeries>, MetricsError>> {
        let recent = self.0.rollup(
            &r.name,
            &r.tags,
            calendar(r.period),
            r.start,
            r.end,
            r.group_by.as_deref(),
        );
        Some(recent.and_then(|recent| {
            let all = merge_rollups(r.period, recent, Vec::new());
            if all.iter().all(|s| s.bins.is_empty()) {
                Err(MetricsError::NoData(r.name.clone()))
            } else {
                Ok(all)
            }
        }))
    }
}

pub(crate) fn calendar(p: Period) -> Calendar {
    match p {
        Period::Hour => Calendar::Hour,
        Period::Day => Calendar::Day,
        Period::Week => Calendar::IsoWeek,
        Period::Month => Calendar::Month,
    }
}

/// The end of the period of `p` starting at `start` (exclusive).
fn period_end(p: Period, start: DateTime<Utc>) -> DateTime<Utc> {
    let next = match p {
        Period::Hour => start.checked_add_signed(chrono::TimeDelta::hours(1)),
        Period::Day => start.checked_add_days(chrono::Days::new(1)),
        Period::Week => start.checked_add_days(chrono::Days::new(7)),
        Period::Month => start.checked_add_months(chrono::Months::new(1)),
    };
    next.unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One period being merged: (count, sum, min, max, covers from, covers to).
type PeriodAcc = (u64, f64, f64, f64, i64, i64);

fn add_period(acc: &mut PeriodAcc, (count, sum, min, max, from, to): PeriodAcc) {
    if count == 0 {
        return;
    }
    if acc.0 == 0 {
        (acc.2, acc.3) = (min, max);
    } else {
        acc.2 = acc.2.min(min);
        acc.3 = acc.3.max(max);
    }
    acc.0 += count;
    acc.1 += sum;
    acc.4 = acc.4.min(from);
    acc.5 = acc.5.max(to);
}

/// Memory's and the store's rollups merged per group and period.
pub(crate) fn merge_rollups(
    period: Period,
    memory: Vec<metrics_memory::RangeSeries>,
    stored: Vec<HistorySeries>,
) -> Vec<RollupSeries> {
    let mut groups: BTreeMap<Option<String>, BTreeMap<i64, PeriodAcc>> = BTreeMap::new();
    let empty = (0, 0.0, 0.0, 0.0, i64::MAX, i64::MIN);
    for s in memory {
        let periods = groups.entry(s.group).or_default();
        for b in s.bins {
            let acc = periods.entry(b.start.timestamp_millis()).or_insert(empty);
            let covers = (
                b.covers_start.timestamp_millis(),
                b.covers_end.timestamp_millis(),
            );
            add_period(acc, (b.count, b.sum, b.min, b.max, covers.0, covers.1));
        }
    }
    for s in stored {
        let periods = groups.entry(s.group).or_default();
        for b in s.bins {
            let acc = periods.entry(b.start_ms).or_insert(empty);
            add_period(
                acc,
                (
                    b.count,
                    b.sum,
                    b.min,
                    b.max,
                    b.covers_start_ms,
                    b.covers_end_ms,
                ),
            );
        }
    }
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
    groups
        .into_iter()
        .map(|(group, periods)| RollupSeries {
            group,
            bins: periods
                .into_iter()
                .filter(|(_, a)| a.0 > 0)
                .filter_map(|(start, (count, sum, min, max, from, to))| {
                    let start = at(start)?;
                    Some(RollupBin {
                        start,
                        end: period_end(period, start),
                        covers_start: at(from)?,
                        covers_end: at(to)?,
                        count,
                        sum,
                        min,
                        max,
                        avg: sum / count as f64,
                    })
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_http::InstanceScope;
    use metrics_memory::{ManualClock, MemoryConfig};
    use metrics_protocol::MetricCollector;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn periods_end_where_the_next_one_starts() {
        let cases = [
            (Period::Hour, "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"),
            (Period::Day, "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"),
            (Period::Week, "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"),
            (
                Period::Month,
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                Period::Month,
                "2028-02-01T00:00:00Z",
                "2028-03-01T00:00:00Z",
            ),
        ];
        for (p, start, end) in cases {
            assert_eq!(period_end(p, at(start)), at(end), "{p:?} {start}");
        }
    }

    #[test]
    fn memory_alone_answers_rollups() {
        let t0 = at("2026-11-26T10:59:50Z");
        let clock = Arc::new(ManualClock::new(t0.timestamp_millis()));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        m.record_counter("jobs", 2.0, &[]);
        clock.advance(std::time::Duration::from_secs(10));
        m.record_counter("jobs", 3.0, &[]);
        clock.advance(std::time::Duration::from_secs(10));
        let mut r = RollupRequest {
            name: "jobs".into(),
            tags: vec![],
            period: Period::Hour,
            start: at("2026-11-26T00:00:00Z"),
            end: at("2026-11-27T00:00:00Z"),
            group_by: None,
            instance: InstanceScope::Local,
        };
        let got = MemoryRanges(m.clone()).rollup(&r).unwrap().unwrap();
        type PeriodRow = (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>, f64);
        let periods: Vec<PeriodRow> = got[0]
            .bins
            .iter()
            .map(|b| (b.start, b.end, b.covers_end, b.sum))
            .collect();
        assert_eq!(
            periods,
            vec![
                (
                    at("2026-11-26T10:00:00Z"),
                    at("2026-11-26T11:00:00Z"),
                    at("2026-11-26T11:00:00Z"),
                    2.0
                ),
                (
                    at("2026-11-26T11:00:00Z"),
                    at("2026-11-26T12:00:00Z"),
                    at("2026-11-26T11:00:10Z"),
                    3.0
                ),
            ]
        );
        r.name = "never".into();
        assert!(matches!(
            MemoryRanges(m).rollup(&r),
            Some(Err(MetricsError::NoData(_)))
        ));
    }
}
