//! Merging the memory backend's and the store's range answers: per group
//! and step, the store's bins first brought into the shared range model.
//! A step's percentiles are read from the merged sketches of both sources
//! (percentiles do not merge).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use metrics_memory::{merge_step_sketches, with_step_sketch};
use metrics_query::{Period, RangeBin, RangeGroup, RangeRequest};
use metrics_store::HistoryGroup;

/// Memory's and the store's rollups merged per group and period.
pub(crate) fn merge_rollups(
    period: Period,
    memory: Vec<RangeGroup>,
    stored: Vec<HistoryGroup>,
) -> Vec<RangeGroup> {
    let edges = |start: i64| {
        let end = period.end_of(DateTime::<Utc>::from_timestamp_millis(start)?);
        Some((start, end.timestamp_millis()))
    };
    merge(memory, steps(stored, edges))
}

/// `a` and `b` merged per group and step: counts, sums and extremes, and
/// the steps' sketches (the percentiles are read from the merged sketch).
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
                    let sketch = merge_step_sketches([&*t, &bin]);
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
                    *t = with_step_sketch(t.clone(), sketch.as_ref());
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

/// The edges of a range request's step starting at a time (ms).
pub(crate) fn step_edges(r: &RangeRequest) -> impl Fn(i64) -> Option<(i64, i64)> + use<> {
    let step = i64::try_from(r.step.as_millis()).unwrap_or(i64::MAX);
    move |start| Some((start, start.saturating_add(step)))
}

/// The store's groups in the range model, each step's `[start, end)` from
/// `edges(start)`.
pub(crate) fn steps(
    groups: Vec<HistoryGroup>,
    edges: impl Fn(i64) -> Option<(i64, i64)>,
) -> Vec<RangeGroup> {
    groups
        .into_iter()
        .map(|g| RangeGroup {
            group: g.group,
            bins: g
                .bins
                .iter()
                .filter_map(|b| {
                    let bin = range_bin(
                        edges(b.start_ms)?,
                        (b.covers_start_ms, b.covers_end_ms),
                        (b.count, b.sum, b.min, b.max),
                    )?;
                    Some(with_step_sketch(bin, b.quantiles.as_ref()))
                })
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
    figures: (u64, f64, f64, f64),
) -> Option<RangeBin> {
    let at = DateTime::<Utc>::from_timestamp_millis;
    Some(RangeBin::new(
        (at(start)?, at(end)?),
        (at(covers_start)?, at(covers_end)?),
        figures,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_util::metrics_of;
    use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
    use metrics_protocol::MetricsError;
    use metrics_query::{InstanceScope, RangeQueries, RollupRequest};

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
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
        let got = RangeQueries::rollup(&*m, &r).unwrap().unwrap();
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
            RangeQueries::rollup(&*m, &r),
            Some(Err(MetricsError::NoData(_)))
        ));
    }
}
