//! Sealed bins for durable history: what a store (`metrics-store`) persists.
//!
//! A writer asks periodically for the bins that ended since its last call
//! ([`MemoryMetrics::sealed_bins`]) and keeps a watermark; each bin is
//! handed out once. Reading takes each series' lock briefly, like a range
//! query, and never waits on anything else.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_protocol::app::{MetricSummary, TimingStats};
use metrics_protocol::{MetricType, MetricsError};

use crate::{QuantileSketch, stats};

use crate::MemoryMetrics;
use crate::ring::BinData;

/// One bin of one series, ready to persist.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedBin {
    /// Metric name.
    pub name: String,
    /// Tags, in the order the series was created with.
    pub tags: Vec<(String, String)>,
    /// Kind of the series.
    pub kind: MetricType,
    /// Start of the bin, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Width of the bin (the ring it came from), milliseconds.
    pub width_ms: i64,
    /// Samples in the bin.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// For a distribution's finest bin: its quantile sketch in the compact
    /// encoding, to merge with
    /// [`QuantileSketch::merge_bin`](crate::QuantileSketch::merge_bin).
    pub sketch: Option<Vec<u8>>,
}

/// What a store holds of one metric over a window, from before this
/// process's own bins (earlier runs): merged into a window's summary by
/// [`MemoryMetrics::summary_with_older`].
#[derive(Debug, Clone, Copy)]
pub struct OlderBins<'a> {
    /// The kind the rows were written as (rows of another kind than the
    /// series in memory are left out).
    pub kind: MetricType,
    /// Samples.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// The stored bins' sketches merged ([`QuantileSketch::windowed`]).
    pub quantiles: Option<&'a QuantileSketch>,
}

impl MemoryMetrics {
    /// Now on the backend's recording timeline, milliseconds since the
    /// epoch: what [`sealed_bins`](Self::sealed_bins) ranges, windows and
    /// samples are measured against. It never runs backwards, whatever the
    /// wall clock does (see the crate docs, "Time"), so a reader whose
    /// ranges follow it never skips a bin.
    pub fn clock_ms(&self) -> i64 {
        self.now_ms()
    }

    /// The width of the finest bin, milliseconds.
    pub fn finest_bin_ms(&self) -> i64 {
        self.config
            .windows
            .first()
            .map_or(1, |w| (w.bin.as_millis() as i64).max(1))
    }

    /// Every non-empty bin that starts at or after `from_ms` and ends at or
    /// before `to_ms`, of every series. With `to_ms` past the open bin's
    /// start (a final flush at shutdown), the open bin is included as it is
    /// now.
    ///
    /// A writer calling with `from_ms` = the previous call's `to_ms`, and
    /// `to_ms` at or before [`clock_ms`](Self::clock_ms) (the recording
    /// timeline, which never runs backwards), gets each finest bin once,
    /// with its sketch. A finest bin that ages out of the finest ring (5
    /// minutes with the default windows) before a call handed it out (the
    /// timeline stepped forward with the wall clock, however far, or the
    /// writer stalled) is held there until one does, for at most one more
    /// span of that ring. Only a bin that cascaded into a coarser ring after
    /// that is handed out whole when that coarser bin lies inside the range
    /// (without a sketch), else not at all.
    pub fn sealed_bins(&self, from_ms: i64, to_ms: i64) -> Vec<SealedBin> {
        let out = self.bins_between(from_ms, to_ms);
        self.history_bins.handed_out(to_ms);
        out
    }

    /// The bins starting at or after `from_ms` that have not ended yet (the
    /// open finest bin of every series with samples in it), as they are
    /// now, with their sketches so far: what a writer stores as partial
    /// rows between [`sealed_bins`](Self::sealed_bins) calls, to be
    /// replaced once the bin is sealed. Unlike `sealed_bins` this hands
    /// nothing out: the same bins come sealed later.
    pub fn open_bins(&self, from_ms: i64) -> Vec<SealedBin> {
        self.bins_between(from_ms, self.open_end_ms())
    }

    /// The end of the finest bin open now (exclusive), ms.
    fn open_end_ms(&self) -> i64 {
        let finest = self.finest_bin_ms();
        self.now_ms()
            .div_euclid(finest)
            .saturating_mul(finest)
            .saturating_add(finest)
    }

    /// Every non-empty bin starting at or after `from_ms` and ending at or
    /// before `to_ms`, of every series (see [`sealed_bins`](Self::sealed_bins)).
    fn bins_between(&self, from_ms: i64, to_ms: i64) -> Vec<SealedBin> {
        let now = self.now_ms().max(to_ms);
        let finest = self.finest_bin_ms();
        let mut out = Vec::new();
        let mut found: Vec<(i64, i64, crate::stats::Exact)> = Vec::new();
        for s in self.registry.all() {
            found.clear();
            s.for_each_bin(from_ms, now, |start, width, b| {
                if b.count > 0 && start >= from_ms && start.saturating_add(width) <= to_ms {
                    found.push((start, width, *b));
                }
            });
            if found.is_empty() {
                continue;
            }
            // Several entries for one finest bin (a live counter slot beside
            // the bin it spilled into) merge into one.
            found.sort_by_key(|(start, width, _)| (*start, *width));
            found.dedup_by(|b, a| {
                if a.0 == b.0 && a.1 == b.1 {
                    a.2.merge_from(&b.2);
                    true
                } else {
                    false
                }
            });
            let tags: Vec<(String, String)> = s
                .tag_pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let st = s.state.lock();
            for (start, width, b) in &found {
                let sketch = st.quantiles.as_ref().and_then(|q| {
                    let mut buf = Vec::new();
                    (*width == finest && q.finest_encoding(*start, &mut buf)).then_some(buf)
                });
                out.push(SealedBin {
                    name: s.name.to_string(),
                    tags: tags.clone(),
                    kind: s.kind,
                    start_ms: *start,
                    width_ms: *width,
                    count: b.count,
                    sum: b.sum,
                    min: b.min,
                    max: b.max,
                    sketch,
                });
            }
        }
        out
    }
}

/// One bin of one operation's outcomes (successes, failures by error
/// type), ready to persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedOutcomes {
    /// The operation.
    pub operation: String,
    /// Start of the bin, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Width of the bin (the ring it came from), milliseconds.
    pub width_ms: i64,
    /// Successes in the bin.
    pub success: u64,
    /// Failures in the bin by error type.
    pub failures: BTreeMap<String, u64>,
}

/// What a store holds of one operation's outcomes from before this
/// process's own bins: merged by [`MemoryMetrics::outcomes_with_older`].
#[derive(Debug, Clone, Copy)]
pub struct OlderOutcomes<'a> {
    /// Successes.
    pub success: u64,
    /// Failures by error type.
    pub failures: &'a BTreeMap<String, u64>,
}

impl MemoryMetrics {
    /// Every non-empty outcome bin of every operation that starts at or
    /// after `from_ms` and ends at or before `to_ms`: the outcome
    /// counterpart of [`sealed_bins`](Self::sealed_bins), with the same
    /// watermark rules.
    pub fn sealed_outcomes(&self, from_ms: i64, to_ms: i64) -> Vec<SealedOutcomes> {
        let out = self.outcomes_between(from_ms, to_ms);
        self.history_outcomes.handed_out(to_ms);
        out
    }

    /// The outcome bins starting at or after `from_ms` that have not ended
    /// yet, as they are now: the outcome counterpart of
    /// [`open_bins`](Self::open_bins), handing nothing out.
    pub fn open_outcomes(&self, from_ms: i64) -> Vec<SealedOutcomes> {
        self.outcomes_between(from_ms, self.open_end_ms())
    }

    fn outcomes_between(&self, from_ms: i64, to_ms: i64) -> Vec<SealedOutcomes> {
        let now = self.now_ms().max(to_ms);
        self.tracker
            .sealed(from_ms, to_ms, now)
            .into_iter()
            .map(
                |(operation, start_ms, width_ms, success, failures)| SealedOutcomes {
                    operation,
                    start_ms,
                    width_ms,
                    success,
                    failures,
                },
            )
            .collect()
    }

    /// Successes and failures by error type of `operation` over
    /// `time_window` (all time with `None`), with `older` added: what a
    /// store holds from earlier runs (and what aged out of memory).
    /// [`MetricsError::NoData`] when neither has any outcome.
    pub fn outcomes_with_older(
        &self,
        operation: &str,
        time_window: Option<Duration>,
        older: Option<OlderOutcomes<'_>>,
    ) -> Result<(u64, BTreeMap<String, u64>), MetricsError> {
        let range = self.window_range(time_window)?;
        let mine = self.tracker.outcomes(operation, range);
        if mine.is_none() && older.is_none() {
            return Err(MetricsError::NoData(operation.to_owned()));
        }
        let (mut ok, mut failures) = mine.unwrap_or_default();
        if let Some(o) = older {
            ok += o.success;
            for (k, c) in o.failures {
                *failures.entry(k.clone()).or_default() += c;
            }
        }
        Ok((ok, failures))
    }
}

impl MemoryMetrics {
    /// [`metric_summary`](metrics_protocol::app::MetricsAggregator::metric_summary)
    /// with `older` merged in: what a store holds of the window from
    /// before this process's own bins (counts, sums and extremes exactly,
    /// percentiles through the stored sketches). Only a window (`Some`)
    /// merges: all-time totals are this process's. A name only `older`
    /// knows is summarised from it alone.
    pub fn summary_with_older(
        &self,
        metric_name: &str,
        time_window: Option<Duration>,
        older: Option<OlderBins<'_>>,
    ) -> Result<MetricSummary, MetricsError> {
        self.maintain();
        let range = self.window_range(time_window)?;
        let series = self.registry.by_name(metric_name);
        let older = older.filter(|o| range.is_some() && o.count > 0);
        let kind = match (series.first(), &older) {
            (Some(first), _) => first.kind,
            (None, Some(o)) => o.kind,
            (None, None) => return Err(MetricsError::NoData(metric_name.to_owned())),
        };
        let dist = matches!(kind, MetricType::Histogram | MetricType::Timer);
        let mut acc = stats::Stats::default();
        // A gauge's `last` is the value of the series set most recently.
        let mut last: Option<(i64, f64)> = None;
        // The earliest bin and sketch block counted (see `covers`).
        let (mut first_bin, mut first_block) = (i64::MAX, i64::MAX);
        for s in &series {
            let (value, total) = s.read();
            let touched = s.touched_ms.load(Ordering::Relaxed);
            if last.is_none_or(|(t, _)| touched >= t) {
                last = Some((touched, value));
            }
            let sketch = match range {
                None => {
                    acc.merge_exact(&total.exact());
                    total.sketch
                }
                Some((since, now)) => {
                    s.for_each_bin(since, now, |start, _, b| {
                        first_bin = first_bin.min(start);
                        acc.merge_exact(b);
                    });
                    s.window_sketch(since, now).map(|(sk, block)| {
                        first_block = first_block.min(block.unwrap_or(i64::MAX));
                        Box::new(sk)
                    })
                }
            };
            if let Some(sk) = sketch {
                match &mut acc.sketch {
                    Some(a) => a.merge(&sk),
                    None => acc.sketch = Some(sk),
                }
            }
        }
        if let Some(o) = older.filter(|o| o.kind == kind) {
            acc.merge_exact(&stats::Exact {
                count: o.count,
                sum: o.sum,
                min: o.min,
                max: o.max,
            });
            if let Some(q) = o.quantiles.filter(|_| dist) {
                q.merge_into_window(&mut acc.sketch);
            }
        }
        if acc.count == 0 {
            return Err(MetricsError::NoData(metric_name.to_owned()));
        }
        Ok(MetricSummary {
            name: metric_name.to_owned(),
            metric_type: kind,
            unit: self.unit_of(metric_name, kind),
            series: series.len(),
            count: acc.count,
            sum: acc.sum,
            avg: acc.avg(),
            min: acc.min,
            max: acc.max,
            last: (kind == MetricType::Gauge).then(|| last.map_or(0.0, |(_, v)| v)),
            p50: dist.then(|| acc.quantile(0.5)).flatten(),
            p90: dist.then(|| acc.quantile(0.9)).flatten(),
            p95: dist.then(|| acc.quantile(0.95)).flatten(),
            p99: dist.then(|| acc.quantile(0.99)).flatten(),
            window: time_window,
            covers: covered(range, first_bin, older.is_some()),
            quantiles_cover: covered(range, first_block, older.is_some()).filter(|_| dist),
        })
    }

    /// [`timing_stats`](metrics_protocol::app::MetricsAggregator::timing_stats)
    /// with `older` merged in, as [`summary_with_older`](Self::summary_with_older).
    pub fn timing_with_older(
        &self,
        operation_name: &str,
        window: Option<Duration>,
        older: Option<OlderBins<'_>>,
    ) -> Result<TimingStats, MetricsError> {
        let s = self.summary_with_older(operation_name, window, older)?;
        if s.metric_type != MetricType::Timer {
            return Err(MetricsError::InvalidArgument(format!(
                "`{operation_name}` is a {}, not a timer",
                s.metric_type
            )));
        }
        let q = |p: Option<f64>| p.unwrap_or(0.0);
        Ok(TimingStats::from_millis(
            s.count,
            s.sum,
            s.min,
            s.max,
            [q(s.p50), q(s.p90), q(s.p95), q(s.p99)],
        ))
    }
}

/// How much of the window `range` (`since`, `now`) an answer covers whose
/// earliest bin starts at `first` (`i64::MAX`: none): from that bin to
/// now, never more than the window; all of it when stored history filled
/// the part before this process's bins.
fn covered(range: Option<(i64, i64)>, first: i64, older: bool) -> Option<Duration> {
    let (since, now) = range?;
    let from = if older { since } else { first.max(since) };
    Some(Duration::from_millis(
        now.saturating_sub(from.min(now)).max(0) as u64,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use metrics_protocol::Metrics;

    use crate::{ManualClock, MemoryConfig, MemoryMetrics, QuantileSketch};

    #[test]
    fn each_bin_is_handed_out_once_with_its_sketch() {
        let clock = Arc::new(ManualClock::new(1_000_000_000));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let w = Metrics::new(m.clone());
        for v in 1..=100 {
            w.record_histogram("lat", f64::from(v), &[("route", "/a")]);
        }
        w.record_counter("hits", 2.0, &[]);
        w.record_counter("hits", 3.0, &[]);
        // Nothing has ended yet.
        assert!(m.sealed_bins(0, 1_000_000_000).is_empty());
        clock.advance(std::time::Duration::from_secs(10));
        w.record_counter("hits", 7.0, &[]);
        let bins = m.sealed_bins(0, 1_000_010_000);
        assert_eq!(bins.len(), 2, "{bins:?}");
        let hits = bins.iter().find(|b| b.name == "hits").unwrap();
        assert_eq!(
            (hits.count, hits.sum, hits.start_ms),
            (2, 5.0, 1_000_000_000)
        );
        let lat = bins.iter().find(|b| b.name == "lat").unwrap();
        assert_eq!(lat.tags, vec![("route".to_owned(), "/a".to_owned())]);
        assert_eq!((lat.count, lat.min, lat.max), (100, 1.0, 100.0));
        let mut q = QuantileSketch::windowed();
        assert!(q.merge_bin(lat.sketch.as_deref().unwrap(), lat.min, lat.max));
        let p50 = q.quantile(0.5).unwrap();
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        // The next range starts where this one ended: nothing twice.
        assert!(m.sealed_bins(1_000_010_000, 1_000_010_000).is_empty());
        // A final flush takes the open bin as it is.
        let last = m.sealed_bins(1_000_010_000, 1_000_020_000);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].sum, 7.0);
    }

    /// The open bin as it is so far, any number of times, without handing
    /// it out: it still comes sealed, whole, once it ended.
    #[test]
    fn open_bins_show_the_bin_so_far_and_still_come_sealed() {
        use metrics_protocol::SuccessFailureTracker;
        let t0 = 1_000_000_000;
        let clock = Arc::new(ManualClock::new(t0 + 3_000));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let w = Metrics::new(m.clone());
        w.record_counter("hits", 2.0, &[]);
        w.record_histogram("lat", 5.0, &[]);
        m.record_failure("pay", "timeout", &[]);
        let open = m.open_bins(t0);
        assert_eq!(open.len(), 2, "{open:?}");
        let hits = open.iter().find(|b| b.name == "hits").unwrap();
        assert_eq!((hits.start_ms, hits.width_ms, hits.sum), (t0, 10_000, 2.0));
        assert!(open.iter().any(|b| b.name == "lat" && b.sketch.is_some()));
        assert_eq!(m.open_outcomes(t0)[0].failures.get("timeout"), Some(&1));
        clock.advance(std::time::Duration::from_secs(2));
        w.record_counter("hits", 3.0, &[]);
        let open = m.open_bins(t0);
        let hits = open.iter().find(|b| b.name == "hits").unwrap();
        assert_eq!((hits.count, hits.sum), (2, 5.0));
        // Nothing was handed out: the bin comes sealed once it ended.
        assert!(m.sealed_bins(t0, t0).is_empty());
        clock.advance(std::time::Duration::from_secs(10));
        assert!(m.open_bins(t0 + 10_000).is_empty());
        let sealed = m.sealed_bins(t0, t0 + 10_000);
        assert_eq!(sealed.len(), 2);
        assert_eq!(m.sealed_outcomes(t0, t0 + 10_000).len(), 1);
    }

    #[test]
    fn outcome_bins_are_handed_out_once_and_merge_with_older() {
        use metrics_protocol::SuccessFailureTracker;
        let clock = Arc::new(ManualClock::new(1_000_000_000));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        m.record_success("pay", &[]);
        m.record_success("pay", &[("r", "eu")]);
        m.record_failure("pay", "timeout", &[]);
        assert!(m.sealed_outcomes(0, 1_000_000_000).is_empty());
        clock.advance(std::time::Duration::from_secs(10));
        m.record_failure("pay", "refused", &[]);
        let bins = m.sealed_outcomes(0, 1_000_010_000);
        assert_eq!(bins.len(), 1, "{bins:?}");
        assert_eq!((bins[0].start_ms, bins[0].success), (1_000_000_000, 2));
        assert_eq!(bins[0].failures.get("timeout"), Some(&1));
        assert!(m.sealed_outcomes(1_000_010_000, 1_000_010_000).is_empty());
        let last = m.sealed_outcomes(1_000_010_000, 1_000_020_000);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].failures.get("refused"), Some(&1));
        // Older outcomes add up with this run's, all time and windowed.
        let older_failures = [("timeout".to_owned(), 5)].into_iter().collect();
        let older = crate::OlderOutcomes {
            success: 10,
            failures: &older_failures,
        };
        let (ok, f) = m.outcomes_with_older("pay", None, Some(older)).unwrap();
        assert_eq!(
            (ok, f.get("timeout"), f.get("refused")),
            (12, Some(&6), Some(&1))
        );
        let minute = Some(std::time::Duration::from_secs(60));
        let (ok, _) = m.outcomes_with_older("pay", minute, Some(older)).unwrap();
        assert_eq!(ok, 12);
        assert!(m.outcomes_with_older("nope", None, None).is_err());
        let (ok, _) = m.outcomes_with_older("nope", None, Some(older)).unwrap();
        assert_eq!(ok, 10);
    }

    #[test]
    fn bad_sketch_bytes_are_refused_whole() {
        let mut q = QuantileSketch::windowed();
        assert!(!q.merge_bin(&[0xff; 3], 1.0, 2.0));
        assert!(!q.merge_bin(&[], 1.0, 2.0));
        assert_eq!(q.count(), 0);
        // Only a windowed sketch takes bins (the accuracies differ).
        let mut s = QuantileSketch::windowed();
        s.add(5.0);
        let mut buf = Vec::new();
        assert!(s.encode_bin(&mut buf));
        assert!(!QuantileSketch::new().merge_bin(&buf, 5.0, 5.0));
        assert!(!QuantileSketch::new().encode_bin(&mut Vec::new()));
        assert!(q.merge_bin(&buf, 5.0, 5.0));
        assert_eq!((q.count(), q.quantile(0.5)), (1, Some(5.0)));
    }

    /// Stored bytes come from a database: any bytes are refused or merged,
    /// never a panic.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..50_000 {
            let len = (next() % 48) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut q = QuantileSketch::windowed();
            if q.merge_bin(&bytes, -1.0, 1.0) {
                let _ = q.quantile(0.5);
            }
        }
        // A genuine encoding reaching the extremes of both signs passes;
        // every one-byte change of it is refused or merged without a panic.
        let mut s = QuantileSketch::windowed();
        for v in [
            1e-300,
            1e300,
            -1e-300,
            -1e300,
            0.0,
            1.0,
            f64::MAX,
            -f64::MAX,
        ] {
            s.add(v);
        }
        let mut good = Vec::new();
        assert!(s.encode_bin(&mut good));
        assert!(QuantileSketch::windowed().merge_bin(&good, -f64::MAX, f64::MAX));
        for i in 0..good.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff, good[i] ^ 1] {
                let mut bad = good.clone();
                bad[i] = b;
                let mut q = QuantileSketch::windowed();
                if q.merge_bin(&bad, -1.0, 1.0) {
                    let _ = q.quantile(0.99);
                }
            }
        }
    }
}
