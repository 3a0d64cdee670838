//! Range queries and calendar rollups over the rings' bins, answered in
//! the shared range-query model (`metrics-query`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use metrics_protocol::MetricsError;
use metrics_protocol::backend::validate::tags_contain;
use metrics_query::{RangeBin, RangeGroup, RangeQueries, RangeRequest, RollupRequest};

use crate::MemoryMetrics;
use crate::clock::to_datetime;
use crate::stats::Exact;

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

    fn bin(self, edges: (DateTime<Utc>, DateTime<Utc>)) -> RangeBin {
        let e = self.exact;
        RangeBin::new(
            edges,
            (to_datetime(self.from), to_datetime(self.to)),
            (e.count, e.sum, e.min, e.max),
        )
    }
}

/// The non-empty steps, oldest first, with steps whose stored bins overlap
/// in time merged into the earlier one. (While a coarser bin is filling
/// from the finer ring, the finer ring still holds the rest of its span:
/// such a coarse bin and those finer bins are counted as one step, so every
/// step's `covers` range holds exactly what it counted.)
fn disjoint(bins: BTreeMap<i64, Acc>, end_of: &impl Fn(i64) -> i64) -> Vec<RangeBin> {
    let mut out: Vec<(i64, i64, Acc)> = Vec::new();
    for (t, a) in bins.into_iter().filter(|(_, a)| a.exact.count > 0) {
        match out.last_mut() {
            Some((_, _, prev)) if a.from < prev.to => prev.merge(&a),
            _ => out.push((t, end_of(t), a)),
        }
    }
    out.into_iter()
        .map(|(t, end, a)| a.bin((to_datetime(t), to_datetime(end))))
        .collect()
}

impl MemoryMetrics {
    /// Steps of `q.name` between `q.start` and `q.end`, `q.step` wide,
    /// optionally grouped by one tag, on the request's step grid
    /// ([`RangeRequest::aligned`]: the range rounded out to whole steps
    /// from the epoch). Data comes from the rings, so only the retention
    /// (24 h by default) can be queried. The step must be a multiple of
    /// the finest bin (10 s by default), so every bin at most a step wide
    /// lies in exactly one step; a coarser bin (older history kept in
    /// 15 min bins, say, under 1 min steps) counts whole in the step
    /// holding its start, and [`RangeBin::covers_start`] and
    /// [`RangeBin::covers_end`] say what that step really spans.
    pub fn range_query(&self, q: &RangeRequest) -> Result<Vec<RangeGroup>, MetricsError> {
        let q = &q.aligned();
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
        self.collect_bins(
            &q.name,
            &q.tags,
            q.group_by.as_deref(),
            (start, end),
            |t| start + (t - start).div_euclid(step_ms) * step_ms,
            |t| t.saturating_add(step_ms),
        )
    }

    /// Calendar rollups (hour, day, ISO week, month) of `r.name` over
    /// `[r.start, r.end)`, optionally grouped by one tag; each step is one
    /// period, `[start, end)`.
    pub fn rollup(&self, r: &RollupRequest) -> Result<Vec<RangeGroup>, MetricsError> {
        let period = r.period;
        self.collect_bins(
            &r.name,
            &r.tags,
            r.group_by.as_deref(),
            (r.start.timestamp_millis(), r.end.timestamp_millis()),
            |t| period.start_of(to_datetime(t)).timestamp_millis(),
            |t| period.end_of(to_datetime(t)).timestamp_millis(),
        )
    }

    fn collect_bins(
        &self,
        name: &str,
        tags: &[(String, String)],
        group_by: Option<&str>,
        (start, end): (i64, i64),
        bucket: impl Fn(i64) -> i64,
        end_of: impl Fn(i64) -> i64,
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
                bins: disjoint(bins, &end_of),
            })
            .collect())
    }
}

/// The memory backend as a history source: its range queries and rollups
/// (an unknown name, or nothing in range, is [`MetricsError::NoData`] for a
/// rollup, as for a range query of a name never recorded).
impl RangeQueries for MemoryMetrics {
    fn query_range(&self, request: &RangeRequest) -> Result<Vec<RangeGroup>, MetricsError> {
        self.range_query(request)
    }

    fn rollup(&self, request: &RollupRequest) -> Option<Result<Vec<RangeGroup>, MetricsError>> {
        Some(MemoryMetrics::rollup(self, request).and_then(|groups| {
            if groups.iter().all(|g| g.bins.is_empty()) {
                Err(MetricsError::NoData(request.name.clone()))
            } else {
                Ok(groups)
            }
        }))
    }
}
