//! Durable history: the memory backend's bins written to a store
//! (`metrics-store`) and range queries answered from both.
//!
//! [`HistoryRanges`] answers `query_range` from memory for the bins the
//! running process holds and from the store for older ones (earlier runs,
//! or what aged out of memory), so a range spanning a restart returns both
//! halves; windowed `summary` and `timing` merge the same two halves
//! (percentiles through the stored sketches).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_http::{RangeBin, RangeQueries, RangeRequest, RangeSeries};
use metrics_memory::{MemoryMetrics, OlderBins};
use metrics_protocol::system::MetricSummary;
use metrics_protocol::{MetricType, MetricsError, TimingStats};
use metrics_store::{HistoryBin, HistoryQuery, HistorySeries, HistoryWriter, WriterStatus};

use crate::MemoryRanges;
use crate::health::CheckOutcome;

/// The longest a range query waits for the store.
const STORE_QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Range queries over memory (recent) and the store (older).
pub struct HistoryRanges {
    memory: Arc<MemoryMetrics>,
    writer: Arc<HistoryWriter>,
}

impl HistoryRanges {
    /// Ranges over `memory` and the store `writer` writes to.
    pub fn new(memory: Arc<MemoryMetrics>, writer: Arc<HistoryWriter>) -> Self {
        HistoryRanges { memory, writer }
    }

    /// The first instant memory answers for (its retention): this run's
    /// rows from then on come from memory, everything else (earlier runs,
    /// even one that stopped within the current bin, and what aged out of
    /// memory) from the store.
    fn memory_since_ms(&self) -> i64 {
        let retention = self
            .memory
            .config()
            .windows
            .last()
            .map_or(0, |w| w.span.as_millis() as i64);
        self.memory.clock_ms().saturating_sub(retention)
    }

    /// This instance's rows of `name` from `start_ms` to `end_ms` in steps
    /// of `step_ms`, without the rows memory answers for (this run's
    /// recent ones); empty when there is no store or it fails (logged).
    fn ask_store(
        &self,
        name: &str,
        tags: &[(String, String)],
        (start_ms, end_ms, step_ms): (i64, i64, i64),
        group_by: Option<String>,
    ) -> Vec<HistorySeries> {
        let Some(store) = self.writer.store() else {
            return Vec::new();
        };
        let q = HistoryQuery {
            name: name.to_owned(),
            tags: tags.to_vec(),
            start_ms,
            end_ms,
            step_ms,
            group_by,
            instances: Some(vec![store.instance().to_owned()]),
            before_ms: None,
            skip_run_since: Some((self.writer.run().to_owned(), self.memory_since_ms())),
        };
        let answer = self
            .writer
            .block_on(async { tokio::time::timeout(STORE_QUERY_TIMEOUT, store.query(&q)).await });
        match answer {
            Some(Ok(Ok(series))) => series,
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, "history store query failed; answering from memory");
                Vec::new()
            }
            Some(Err(_)) => {
                tracing::warn!("history store query timed out; answering from memory");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn stored(&self, r: &RangeRequest) -> Vec<RangeSeries> {
        let span = (
            r.start.timestamp_millis(),
            r.end.timestamp_millis(),
            r.step.as_millis() as i64,
        );
        self.ask_store(&r.name, &r.tags, span, r.group_by.clone())
            .into_iter()
            .map(|s| RangeSeries {
                group: s.group,
                bins: s
                    .bins
                    .into_iter()
                    .filter_map(|b| {
                        Some(RangeBin {
                            start: DateTime::<Utc>::from_timestamp_millis(b.start_ms)?,
                            count: b.count,
                            sum: b.sum,
                            min: b.min,
                            max: b.max,
                            avg: b.sum / b.count.max(1) as f64,
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// What the store holds of `name` over `window` (one step of it), from
    /// before this run's bins in memory; `None` when it holds nothing or
    /// cannot answer.
    fn older(&self, name: &str, window: Duration) -> Option<(MetricType, HistoryBin)> {
        let now = self.memory.clock_ms();
        let w = i64::try_from(window.as_millis()).ok()?.max(1);
        let span = (
            now.saturating_sub(w),
            now.saturating_add(1),
            w.saturating_add(1),
        );
        let s = self.ask_store(name, &[], span, None).into_iter().next()?;
        let kind = s.kind?;
        // One step covers the window: merge in case it was cut.
        let mut bins = s.bins.into_iter();
        let mut acc = bins.next()?;
        for b in bins {
            acc.count += b.count;
            acc.sum += b.sum;
            acc.min = acc.min.min(b.min);
            acc.max = acc.max.max(b.max);
        }
        Some((kind, acc))
    }

    fn with_older<T>(
        &self,
        name: &str,
        window: Option<Duration>,
        f: impl FnOnce(Option<OlderBins<'_>>) -> Result<T, MetricsError>,
    ) -> Option<Result<T, MetricsError>> {
        // All-time answers are this run's (memory's totals).
        let older = self.older(name, window?);
        Some(f(older.as_ref().map(|(kind, b)| OlderBins {
            kind: *kind,
            count: b.count,
            sum: b.sum,
            min: b.min,
            max: b.max,
            quantiles: b.quantiles.as_ref(),
        })))
    }
}

/// `a` and `b` merged per group and step.
fn merge(a: Vec<RangeSeries>, b: Vec<RangeSeries>) -> Vec<RangeSeries> {
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
        .map(|(group, steps)| RangeSeries {
            group,
            bins: steps.into_values().collect(),
        })
        .collect()
}

impl RangeQueries for HistoryRanges {
    fn query_range(&self, r: &RangeRequest) -> Result<Vec<RangeSeries>, MetricsError> {
        let recent = match MemoryRanges(self.memory.clone()).query_range(r) {
            Ok(s) => s,
            Err(MetricsError::NoData(m)) => {
                let older = self.stored(r);
                return if older.is_empty() {
                    Err(MetricsError::NoData(m))
                } else {
                    Ok(older)
                };
            }
            Err(e) => return Err(e),
        };
        Ok(merge(recent, self.stored(r)))
    }

    fn summary(
        &self,
        name: &str,
        window: Option<Duration>,
    ) -> Option<Result<MetricSummary, MetricsError>> {
        self.with_older(name, window, |older| {
            self.memory.summary_with_older(name, window, older)
        })
    }

    fn timing(
        &self,
        name: &str,
        window: Option<Duration>,
    ) -> Option<Result<TimingStats, MetricsError>> {
        self.with_older(name, window, |older| {
            self.memory.timing_with_older(name, window, older)
        })
    }
}

/// The store's state as a health check outcome: unhealthy while it cannot
/// be written (bins queue up), degraded once bins were dropped.
pub fn store_health(s: &WriterStatus) -> CheckOutcome {
    if !s.healthy {
        CheckOutcome::unhealthy(format!(
            "history store {}: {}; {} bins pending, {} dropped",
            s.url,
            s.last_error.as_deref().unwrap_or("unavailable"),
            s.pending,
            s.dropped
        ))
    } else if s.dropped > 0 {
        CheckOutcome::degraded(format!(
            "history store {}: {} bins dropped while it was unavailable",
            s.url, s.dropped
        ))
    } else {
        CheckOutcome::healthy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_protocol::HealthStatus;

    fn bin(t: i64, v: f64) -> RangeBin {
        RangeBin {
            start: DateTime::<Utc>::from_timestamp_millis(t).unwrap(),
            count: 1,
            sum: v,
            min: v,
            max: v,
            avg: v,
        }
    }

    #[test]
    fn halves_merge_per_group_and_step() {
        let mem = vec![RangeSeries {
            group: None,
            bins: vec![bin(10, 4.0), bin(20, 1.0)],
        }];
        let stored = vec![RangeSeries {
            group: None,
            bins: vec![bin(0, 2.0), bin(10, 2.0)],
        }];
        let m = merge(mem, stored);
        assert_eq!(m.len(), 1);
        let got: Vec<(u64, f64, f64, f64)> = m[0]
            .bins
            .iter()
            .map(|b| (b.count, b.sum, b.min, b.avg))
            .collect();
        assert_eq!(
            got,
            vec![(1, 2.0, 2.0, 2.0), (2, 6.0, 2.0, 3.0), (1, 1.0, 1.0, 1.0)]
        );
    }

    #[test]
    fn health_follows_the_writer() {
        let mut s = WriterStatus {
            healthy: true,
            ..WriterStatus::default()
        };
        assert_eq!(store_health(&s), CheckOutcome::healthy());
        s.dropped = 3;
        assert_eq!(store_health(&s).status, HealthStatus::Degraded);
        s.healthy = false;
        s.last_error = Some("connection refused".into());
        let o = store_health(&s);
        assert_eq!(o.status, HealthStatus::Unhealthy);
        assert!(o.message.unwrap().contains("refused"));
    }

    /// Two runs of a program on one store, the second asked about both:
    /// the first run's bins come from the store, the second's from memory.
    #[test]
    fn a_range_across_a_restart_returns_both_halves() {
        use metrics_memory::{ManualClock, MemoryConfig};
        use metrics_protocol::MetricCollector;
        use metrics_store::{StoreUrl, WriterConfig};

        let dir =
            std::env::temp_dir().join(format!("metrics-agent-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
        let t0 = 1_800_000_000_000;
        let run = |at: i64| {
            let clock = Arc::new(ManualClock::new(at));
            let m = Arc::new(
                MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap(),
            );
            let w =
                HistoryWriter::start(m.clone(), WriterConfig::new(url.clone(), "host")).unwrap();
            (clock, m, Arc::new(w))
        };
        // The first run: 1 + 2 in its first bin, 4 in the next, then stops.
        let (clock, m, w) = run(t0);
        m.record_counter("jobs", 1.0, &[("q", "a")]);
        m.record_counter("jobs", 2.0, &[("q", "b")]);
        m.record_counter("retired", 1.0, &[]);
        for v in [10.0, 20.0] {
            m.record_histogram("size", v, &[("q", "a")]);
        }
        m.record_timer("op", Duration::from_millis(5), &[]);
        clock.advance(Duration::from_secs(10));
        m.record_counter("jobs", 4.0, &[("q", "a")]);
        w.shutdown();
        assert_eq!(w.status().written, 6, "{:?}", w.status());

        // The second run starts 3 s later, within the bin the first one
        // stopped in, and records into it.
        let (clock, m, w) = run(t0 + 13_000);
        m.record_counter("jobs", 8.0, &[("q", "a")]);
        m.record_histogram("size", 30.0, &[("q", "b")]);
        clock.advance(Duration::from_secs(10));
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while w.store().is_none() {
            assert!(std::time::Instant::now() < deadline, "{:?}", w.status());
            std::thread::sleep(Duration::from_millis(20));
        }
        let ranges = HistoryRanges::new(m, w.clone());
        let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
        let mut r = RangeRequest {
            name: "jobs".into(),
            tags: vec![],
            start: at(t0),
            end: at(t0 + 60_000),
            step: Duration::from_secs(10),
            group_by: None,
        };
        let got = ranges.query_range(&r).unwrap();
        let sums: Vec<(DateTime<Utc>, f64)> =
            got[0].bins.iter().map(|b| (b.start, b.sum)).collect();
        assert_eq!(sums, vec![(at(t0), 3.0), (at(t0 + 10_000), 12.0)]);
        // Tag containment and grouping reach the stored half too.
        r.tags = vec![("q".into(), "a".into())];
        r.group_by = Some("q".into());
        let got = ranges.query_range(&r).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].group.as_deref(), Some("a"));
        let sums: Vec<f64> = got[0].bins.iter().map(|b| b.sum).collect();
        assert_eq!(sums, vec![1.0, 12.0]);
        // A name only the store knows.
        r.name = "retired".into();
        (r.tags, r.group_by) = (vec![], None);
        let got = ranges.query_range(&r).unwrap();
        assert_eq!(got[0].bins.len(), 1);
        assert_eq!(got[0].bins[0].sum, 1.0);
        // A window's summary and timing merge both halves, percentiles
        // through the stored sketches (within the window accuracy); all
        // time is left to the system (this run's totals).
        let minute = Some(Duration::from_secs(60));
        let s = ranges.summary("size", minute).unwrap().unwrap();
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 60.0, 10.0, 30.0));
        let p50 = s.p50.unwrap();
        assert!((p50 - 20.0).abs() < 0.5, "{p50}");
        assert!(
            ranges.summary("size", None).is_none(),
            "all time: the system's"
        );
        let t = ranges.timing("op", minute).unwrap().unwrap();
        assert_eq!(t.count, 1);
        assert!((t.p50.as_secs_f64() - 0.005).abs() < 1e-4, "{t:?}");
        assert!(ranges.summary("never", minute).unwrap().is_err());
        w.shutdown();
        std::fs::remove_dir_all(&dir).ok();
    }
}
