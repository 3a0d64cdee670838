//! Range queries and calendar rollups over the rings' bins, answered in
//! the shared range-query model (`metrics-query`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use metrics_protocol::MetricsError;
use metrics_protocol::backend::validate::tags_contain;
use metrics_query::{RangeBin, RangeGroup, RangeQueries, RangeRequest, RollupRequest};

use crate::clock::to_datetime;
use crate::series::Series;
use crate::sketch::Sketch;
use crate::stats::Exact;
use crate::{MemoryMetrics, QuantileSketch};

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

/// The merged sketch of the steps' sketches ([`RangeBin::sketch`], each
/// read with its step's min and max), at window accuracy
/// ([`QuantileSketch::windowed`]); `None` when no step has one. How the
/// steps of several sources (memory and a store, several instances) are
/// merged: sketches, not percentiles.
pub fn merge_step_sketches<'a>(
    steps: impl IntoIterator<Item = &'a RangeBin>,
) -> Option<QuantileSketch> {
    let mut q = QuantileSketch::windowed();
    let mut any = false;
    for b in steps {
        if let Some(e) = &b.sketch {
            if q.merge_bin(e, b.min, b.max) {
                any = true;
            } else {
                tracing::warn!(start = %b.start, "a step's sketch does not decode; skipped");
            }
        }
    }
    any.then_some(q)
}

/// `bin` with its percentiles read from `sketch` (its merged bins'
/// sketches, see [`RangeBin`]'s percentile rule) and the sketch kept for
/// later merges, when the sketch holds at least every sample the step
/// counts; else `bin` without a sketch or percentiles.
pub fn with_step_sketch(bin: RangeBin, sketch: Option<&QuantileSketch>) -> RangeBin {
    let mut enc = Vec::new();
    match sketch {
        Some(q) if bin.count > 0 && q.count() >= bin.count && q.encode_bin(&mut enc) => {
            bin.with_sketch(enc, |p| q.quantile(p))
        }
        _ => bin.without_sketch(),
    }
}

/// Which sketches of which series a step's percentiles were merged from,
/// and the merged sketch: the next step covered by the same ones (finer
/// steps inside one block) takes it as it is rather than merging again.
#[derive(Default)]
struct LastMerge {
    ids: Vec<(usize, usize, i64)>,
    /// The merged sketch and its encoding.
    merged: Option<(Sketch, Vec<u8>)>,
}

/// `bin` with the percentiles of the sketches of `series` overlapping what
/// its bins cover (see [`RangeBin`]'s percentile rule), when they are
/// distributions.
fn with_sketches(bin: RangeBin, series: &[Arc<Series>], last: &mut LastMerge) -> RangeBin {
    let (from, to) = (
        bin.covers_start.timestamp_millis(),
        bin.covers_end.timestamp_millis(),
    );
    let mut ids = Vec::with_capacity(last.ids.len());
    let mut pieces = Vec::new();
    for (i, s) in series.iter().enumerate() {
        if let Some(q) = &s.state.lock().quantiles {
            q.overlapping_ids(from, to, &mut pieces);
            ids.extend(pieces.drain(..).map(|(ring, idx)| (i, ring, idx)));
        }
    }
    if ids.is_empty() {
        // Not a distribution, or no sketch left of these bins.
        last.ids.clear();
        return bin;
    }
    // The open bin changes between two reads: never taken as it was.
    let open = ids.iter().any(|(_, ring, _)| *ring == usize::MAX);
    if open || ids != last.ids || last.merged.is_none() {
        let mut merged = Sketch::new(1);
        for s in series {
            if let Some(q) = &s.state.lock().quantiles {
                q.merge_overlapping(from, to, &mut merged);
            }
        }
        let mut enc = Vec::new();
        merged.encode(&mut enc);
        last.merged = Some((merged, enc));
    }
    last.ids = ids;
    let Some((merged, enc)) = &last.merged else {
        return bin;
    };
    if bin.count == 0 || merged.count() < bin.count {
        return bin.without_sketch();
    }
    // What `with_step_sketch` reads, without decoding the encoding again:
    // within the step's exact extremes, as `QuantileSketch::quantile`.
    let (min, max) = (bin.min, bin.max);
    bin.with_sketch(enc.clone(), |p| {
        merged.quantile(p).map(|v| v.clamp(min, max))
    })
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
    /// [`RangeBin::covers_end`] say what that step really spans. A
    /// distribution's steps carry their percentiles, from the sketches
    /// covering their bins (see [`RangeBin`]): one sketch per finest bin
    /// for the finest ring's span, one per block beyond it (15 minute
    /// blocks over the hour, 6 hour blocks over the day with the default
    /// windows), so a step finer than a block has the block's percentiles.
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
        type Group = (BTreeMap<i64, Acc>, Vec<Arc<Series>>);
        let mut groups: BTreeMap<Option<String>, Group> = BTreeMap::new();
        for s in self.registry.by_name(name) {
            if !tags_contain(s.tag_pairs(), &filter) {
                continue;
            }
            let group = group_by.and_then(|g| {
                s.tag_pairs()
                    .find(|(k, _)| *k == g)
                    .map(|(_, v)| v.to_owned())
            });
            let (bins, series) = groups.entry(group).or_default();
            s.for_each_bin(start, now, |bin_start, width, b| {
                let bin_end = bin_start.saturating_add(width);
                if bin_start >= start && bin_end <= end {
                    bins.entry(bucket(bin_start))
                        .or_default()
                        .add((bin_start, bin_end), b);
                }
            });
            series.push(s);
        }
        Ok(groups
            .into_iter()
            .map(|(group, (bins, series))| {
                let mut last = LastMerge::default();
                RangeGroup {
                    group,
                    bins: disjoint(bins, &end_of)
                        .into_iter()
                        .map(|b| with_sketches(b, &series, &mut last))
                        .collect(),
                }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use metrics_protocol::Metrics;
    use metrics_query::{RangeBin, RangeRequest};

    use crate::clock::to_datetime;
    use crate::{ManualClock, MemoryConfig, MemoryMetrics, WINDOW_ACCURACY};

    /// A minute edge (so 10 s bins, 1 min bins and 15 min blocks start on it).
    const E: i64 = 1_790_000_100_000 / 900_000 * 900_000;

    fn at_edge() -> (Arc<ManualClock>, Arc<MemoryMetrics>, Metrics) {
        let clock = Arc::new(ManualClock::new(E));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let h = Metrics::new(m.clone());
        (clock, m, h)
    }

    fn request(name: &str, (from, to): (i64, i64), step_s: u64) -> RangeRequest {
        RangeRequest {
            name: name.into(),
            tags: vec![],
            start: to_datetime(from),
            end: to_datetime(to),
            step: Duration::from_secs(step_s),
            group_by: None,
            instance: Default::default(),
        }
    }

    /// The exact nearest-rank quantile of `samples`.
    fn exact(samples: &[f64], q: f64) -> f64 {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
        s[rank - 1]
    }

    /// `bin`'s p50, p95 and p99 are within the bins' sketch accuracy of
    /// the exact quantiles of `samples`.
    fn assert_percentiles(bin: &RangeBin, samples: &[f64]) {
        assert_eq!(bin.count, samples.len() as u64, "{bin:?}");
        for (q, got) in [(0.5, bin.p50), (0.95, bin.p95), (0.99, bin.p99)] {
            let want = exact(samples, q);
            let got = got.unwrap_or_else(|| panic!("no p{q} in {bin:?}"));
            assert!(
                (got - want).abs() <= want.abs() * WINDOW_ACCURACY,
                "p{q}: {got}, exact {want} ({} samples from {})",
                samples.len(),
                bin.covers_start
            );
        }
    }

    /// Three known distributions, one per 10 s bin: 1..=100 at E, 1000..=1200
    /// at E + 10 s, 7 (twice) and 50 at E + 60 s.
    fn three_bins(clock: &ManualClock, h: &Metrics) -> [Vec<f64>; 3] {
        let a: Vec<f64> = (1..=100).map(f64::from).collect();
        let b: Vec<f64> = (1000..=1200).map(f64::from).collect();
        let c = vec![7.0, 7.0, 50.0];
        for (offset, vs) in [(1_000, &a), (11_000, &b), (61_000, &c)] {
            clock.set(E + offset);
            for v in vs {
                h.record_histogram("lat", *v, &[]);
            }
        }
        [a, b, c]
    }

    #[test]
    fn each_step_has_the_percentiles_of_its_own_bins() {
        let (clock, m, h) = at_edge();
        let [a, b, c] = three_bins(&clock, &h);
        clock.set(E + 120_000);
        let bins = &m
            .range_query(&request("lat", (E, E + 120_000), 10))
            .unwrap()[0]
            .bins;
        assert_eq!(bins.len(), 3, "{bins:?}");
        assert_percentiles(&bins[0], &a);
        assert_percentiles(&bins[1], &b);
        assert_percentiles(&bins[2], &c);
        // Distinct distributions give distinct figures (no step borrows
        // another's sketch).
        assert!(bins[0].p99 < bins[1].p50 && bins[2].p50 < bins[0].p50);
        // The sketch rides along for merging, never into the JSON.
        assert!(bins.iter().all(|b| b.sketch.is_some()));
        let v = serde_json::to_value(&bins[0]).unwrap();
        assert!(v.get("sketch").is_none() && v["p95"].is_number(), "{v}");
    }

    /// The bin still open counts in a step that holds it whole, and its
    /// samples are in that step's percentiles, whether it holds a few
    /// samples (kept as keys) or many.
    #[test]
    fn the_open_bins_samples_are_in_its_steps_percentiles() {
        let (clock, m, h) = at_edge();
        let [a, b, c] = three_bins(&clock, &h);
        // Still in c's bin (E + 60 s to E + 70 s): it is open.
        clock.set(E + 62_000);
        let bins = &m
            .range_query(&request("lat", (E, E + 120_000), 10))
            .unwrap()[0]
            .bins;
        assert_eq!(bins.len(), 3, "{bins:?}");
        assert_percentiles(&bins[0], &a);
        assert_percentiles(&bins[1], &b);
        assert_percentiles(&bins[2], &c);
        // Many samples in the open bin: past the keys, into its sketch.
        let many: Vec<f64> = (1..=1000).map(f64::from).collect();
        clock.set(E + 81_000);
        for v in &many {
            h.record_histogram("lat", *v, &[]);
        }
        let bins = &m
            .range_query(&request("lat", (E + 80_000, E + 90_000), 10))
            .unwrap()[0]
            .bins;
        assert_percentiles(&bins[0], &many);
    }

    #[test]
    fn a_step_across_two_bins_merges_both_sketches() {
        let (clock, m, h) = at_edge();
        let [a, b, c] = three_bins(&clock, &h);
        clock.set(E + 120_000);
        let bins = &m
            .range_query(&request("lat", (E, E + 120_000), 60))
            .unwrap()[0]
            .bins;
        assert_eq!(bins.len(), 2, "{bins:?}");
        let both: Vec<f64> = a.iter().chain(&b).copied().collect();
        // p50 lies in the second bin's samples, p99 too: neither bin's
        // figure, nor their mean, is the merged one.
        assert_percentiles(&bins[0], &both);
        let mean_of_p50s = (exact(&a, 0.5) + exact(&b, 0.5)) / 2.0;
        assert!((bins[0].p50.unwrap() - mean_of_p50s).abs() > 100.0);
        assert_percentiles(&bins[1], &c);
    }

    #[test]
    fn counters_and_gauges_have_no_percentiles() {
        let (clock, m, h) = at_edge();
        clock.set(E + 1_000);
        h.record_counter("jobs", 3.0, &[]);
        h.record_gauge("depth", 4.0, &[]);
        clock.set(E + 20_000);
        for name in ["jobs", "depth"] {
            let bins = &m.range_query(&request(name, (E, E + 20_000), 10)).unwrap()[0].bins;
            let b = &bins[0];
            assert_eq!(
                (b.p50, b.p95, b.p99, b.sketch.is_some()),
                (None, None, None, false)
            );
            let v = serde_json::to_value(b).unwrap();
            assert!(v.get("p50").is_none() && v.get("p95").is_none(), "{v}");
        }
    }

    #[test]
    fn a_step_finer_than_a_sketch_block_has_the_blocks_percentiles() {
        let (clock, m, h) = at_edge();
        let [a, b, c] = three_bins(&clock, &h);
        // Ten minutes on (and a sample then, which moves the rings on),
        // the 10 s sketches are merged into the 15 minute block starting
        // at E, the exact bins into 1 minute bins.
        clock.set(E + 600_000);
        h.record_histogram("lat", 2000.0, &[]);
        let bins = &m
            .range_query(&request("lat", (E, E + 120_000), 60))
            .unwrap()[0]
            .bins;
        assert_eq!(bins.len(), 2, "{bins:?}");
        // Each step counts its own bins ...
        assert_eq!((bins[0].count, bins[1].count), (301, 3));
        // ... and has the percentiles of the block covering them: all
        // three distributions (clamped to the step's own min and max).
        let block: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
        for q in [0.5, 0.95, 0.99] {
            let want = exact(&block, q);
            for (bin, got) in bins.iter().map(|x| (x, [x.p50, x.p95, x.p99])) {
                let got = got[[0.5, 0.95, 0.99].iter().position(|p| *p == q).unwrap()].unwrap();
                let want = want.clamp(bin.min, bin.max);
                assert!(
                    (got - want).abs() <= want * WINDOW_ACCURACY,
                    "p{q}: {got}, {want}"
                );
            }
        }
    }
}
