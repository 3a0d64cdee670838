//! [`MemoryRanges`]: the memory backend's range queries and rollups for the
//! HTTP service, and the rollup merging [`HistoryRanges`](crate::HistoryRanges)
//! shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use metrics_http::{Period, RangeBin, RangeGroup, RangeQueries, RangeRequest, RollupRequest};
use metrics_memory::{Calendar, MemoryMetrics};
use metrics_protocol::MetricsError;
use metrics_store::HistoryGroup;

/// `/api/v1/query_range` of `metrics-http` from the memory backend's binned
/// history (the protocol has no range query of its own): what the main
/// program serves.
pub struct MemoryRanges(pub Arc<MemoryMetrics>);

impl RangeQueries for MemoryRanges {
    fn query_range(
        &self,
        r: &RangeRequest,
    ) -> Result<Vec<RangeGroup>, metrics_protocol::MetricsError> {
        let q = metrics_memory::RangeQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start: r.start,
            end: r.end,
            step: r.step,
            group_by: r.group_by.clone(),
        };
        let series = self.0.range_query(&q)?.into_iter();
        Ok(steps(series.map(|s| (s.group, s.bins)), step_edges(r)))
    }

    fn rollup(&self, r: &RollupRequest) -> Option<Result<Vec<RangeGroup>, MetricsError>> {
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

/// Memory's and the store's rollups merged per group and period.
pub(crate) fn merge_rollups(
    period: Period,
    memory: Vec<metrics_memory::RangeGroup>,
    stored: Vec<HistoryGroup>,
) -> Vec<RangeGroup> {
    let edges = |start: i64| {
        let end = period_end(period, DateTime::<Utc>::from_timestamp_millis(start)?);
        Some((start, end.timestamp_millis()))
    };
    merge(
        steps(memory.into_iter().map(|s| (s.group, s.bins)), edges),
        steps(stored.into_iter().map(|s| (s.group, s.bins)), edges),
    )
}

/// `a` and `b` merged per group and step.
pub(crate) fn merge(a: Vec<RangeGroup>, b: Vec<RangeGroup>) -> Vec<RangeGroup> {
    let mut groups: BTreeMap<Option<String>, BTreeMap<DateTime<Utc>, RangeBin>> = BTreeMap::new();
    for s in a.into_iter().chain(b) {
        let steps = groups.entry(s.group).or_default();
        for bin in s.bins {
            match steps.get_mut(&bin.start) {
                None => {
                    steps.insert(bin.start, bin);
                }
                Some(t) if bin.count > 0 => {
                    if t.count == 0 {
                        (t.min, t.max) = (bin.min, bin.max);
                    } else {
                        t.min = t.min.min(bin.min);
                        t.max = t.max.max(bin.max);
                    }
                    t.covers_start = t.covers_start.min(bin.covers_start);
                    t.covers_end = t.covers_end.max(bin.covers_end);
                    t.count += bin.count;
                    t.sum += bin.sum;
                    t.avg = t.sum / t.count as f64;
                }
                Some(_) => {}
            }
        }
    }
    groups
        .into_iter()
        .map(|(group, steps)| RangeGroup {
            group,
            bins: steps.into_values().collect(),
        })
        .collect()
}

/// A bin of the memory backend's or the store's answer: its start, the
/// span its bins cover (ms since the epoch) and (count, sum, min, max).
pub(crate) trait StepData {
    /// Start of the step, ms.
    fn start_ms(&self) -> i64;
    /// What the step's bins cover, ms.
    fn covers_ms(&self) -> (i64, i64);
    /// (count, sum, min, max).
    fn figures(&self) -> (u64, f64, f64, f64);
}

impl StepData for metrics_memory::RangeBin {
    fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }
    fn covers_ms(&self) -> (i64, i64) {
        let covers = (self.covers_start, self.covers_end);
        (covers.0.timestamp_millis(), covers.1.timestamp_millis())
    }
    fn figures(&self) -> (u64, f64, f64, f64) {
        (self.count, self.sum, self.min, self.max)
    }
}

impl StepData for metrics_store::HistoryBin {
    fn start_ms(&self) -> i64 {
        self.start_ms
    }
    fn covers_ms(&self) -> (i64, i64) {
        (self.covers_start_ms, self.covers_end_ms)
    }
    fn figures(&self) -> (u64, f64, f64, f64) {
        (self.count, self.sum, self.min, self.max)
    }
}

/// The edges of a range request's step starting at a time (ms).
pub(crate) fn step_edges(r: &RangeRequest) -> impl Fn(i64) -> Option<(i64, i64)> + use<> {
    let step = i64::try_from(r.step.as_millis()).unwrap_or(i64::MAX);
    move |start| Some((start, start.saturating_add(step)))
}

/// Groups of memory's or the store's bins as the HTTP service's series,
/// each step's `[start, end)` from `edges(start)`.
pub(crate) fn steps<B: StepData>(
    groups: impl Iterator<Item = (Option<String>, Vec<B>)>,
    edges: impl Fn(i64) -> Option<(i64, i64)>,
) -> Vec<RangeGroup> {
    groups
        .map(|(group, bins)| RangeGroup {
            group,
            bins: bins
                .iter()
                .filter_map(|b| range_bin(edges(b.start_ms())?, b.covers_ms(), b.figures()))
                .collect(),
        })
        .collect()
}

/// One step of an answer from its edges `[start, end)`, the span its bins
/// cover and its (count, sum, min, max), times in ms since the epoch;
/// `None` for a time past what dates can hold.
pub(crate) fn range_bin(
    (start, end): (i64, i64),
    (covers_start, covers_end): (i64, i64),
    (count, sum, min, max): (u64, f64, f64, f64),
) -> Option<RangeBin> {
    let at = DateTime::<Utc>::from_timestamp_millis;
    Some(RangeBin {
        start: at(start)?,
        end: at(end)?,
        covers_start: at(covers_start)?,
        covers_end: at(covers_end)?,
        count,
        sum,
        min,
        max,
        avg: sum / count.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::metrics_of;
    use metrics_http::InstanceScope;
    use metrics_memory::{ManualClock, MemoryConfig};

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
        metrics_of(&m).record_counter("jobs", 2.0, &[]);
        clock.advance(std::time::Duration::from_secs(10));
        metrics_of(&m).record_counter("jobs", 3.0, &[]);
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
