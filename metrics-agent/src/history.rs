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
use metrics_http::{
    InstanceScope, Outcomes, RangeBin, RangeQueries, RangeRequest, RangeSeries, RollupRequest,
    RollupSeries,
};
use metrics_memory::{Calendar, MemoryMetrics, OlderBins, OlderOutcomes, QuantileSketch};
use metrics_protocol::system::MetricSummary;
use metrics_protocol::{MetricType, MetricUnit, MetricsError, TimingStats};
use metrics_store::{
    HistoryBin, HistoryQuery, HistorySeries, HistoryWriter, OutcomeQuery, Store, WriterStatus,
};

use crate::MemoryRanges;
use crate::health::CheckOutcome;
use crate::ranges::{calendar, merge_rollups};

/// The longest a range query waits for the store.
const STORE_QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Range queries over memory (recent) and the store (older).
pub struct HistoryRanges {
    memory: Arc<MemoryMetrics>,
    writer: Arc<HistoryWriter>,
}

/// Which rows a store query takes for an [`InstanceScope`], and whether
/// memory (this process) answers its recent part.
struct Scope {
    instances: Option<Vec<String>>,
    with_memory: bool,
}

impl HistoryRanges {
    /// Ranges over `memory` and the store `writer` writes to.
    pub fn new(memory: Arc<MemoryMetrics>, writer: Arc<HistoryWriter>) -> Self {
        HistoryRanges { memory, writer }
    }

    fn scope(&self, instance: &InstanceScope) -> Scope {
        let me = self.writer.instance();
        match instance {
            InstanceScope::Local => Scope {
                instances: Some(vec![me.to_owned()]),
                with_memory: true,
            },
            InstanceScope::Named(n) => Scope {
                instances: Some(vec![n.clone()]),
                with_memory: n == me,
            },
            InstanceScope::All => Scope {
                instances: None,
                with_memory: true,
            },
        }
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

    /// Runs a store query on the writer's runtime; `None` when there is no
    /// store yet, it fails or it is slow (logged).
    fn on_store<T, F>(&self, f: impl FnOnce(Store) -> F) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, metrics_store::StoreError>>,
    {
        let store = self.writer.store()?;
        let answer = self
            .writer
            .block_on(async { tokio::time::timeout(STORE_QUERY_TIMEOUT, f(store)).await });
        match answer {
            Some(Ok(Ok(v))) => Some(v),
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, "history store query failed; answering from memory");
                None
            }
            Some(Err(_)) => {
                tracing::warn!("history store query timed out; answering from memory");
                None
            }
            None => None,
        }
    }

    /// The rows of `q` in `scope`, without the rows memory answers for
    /// (this run's recent ones); empty when the store cannot answer.
    fn ask_store(&self, mut q: HistoryQuery, scope: &Scope) -> Vec<HistorySeries> {
        q.instances = scope.instances.clone();
        q.skip_run_since = Some((self.writer.run().to_owned(), self.memory_since_ms()));
        self.on_store(|store| async move { store.query(&q).await })
            .unwrap_or_default()
    }

    fn stored(&self, r: &RangeRequest, scope: &Scope) -> Vec<RangeSeries> {
        let q = HistoryQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start_ms: r.start.timestamp_millis(),
            end_ms: r.end.timestamp_millis(),
            step_ms: r.step.as_millis() as i64,
            group_by: r.group_by.clone(),
            ..HistoryQuery::default()
        };
        self.ask_store(q, scope)
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

    /// What the store holds of `name` over `window` (all it keeps with
    /// `None`) in `scope`, from before this run's bins in memory, merged
    /// into one bin; `None` when it holds nothing or cannot answer.
    fn older(
        &self,
        name: &str,
        window: Option<Duration>,
        scope: &Scope,
    ) -> Option<(MetricType, HistoryBin)> {
        let now = self.memory.clock_ms();
        let start = match window {
            Some(w) => now.saturating_sub(i64::try_from(w.as_millis()).ok()?.max(1)),
            None => 0,
        };
        let end = now.saturating_add(1);
        let q = HistoryQuery {
            name: name.to_owned(),
            start_ms: start,
            end_ms: end,
            step_ms: end.saturating_sub(start).saturating_add(1),
            ..HistoryQuery::default()
        };
        let s = self.ask_store(q, scope).into_iter().next()?;
        let kind = s.kind?;
        // One step covers the window: merge in case it was cut.
        let mut bins = s.bins.into_iter();
        let mut acc = bins.next()?;
        for b in bins {
            acc.count += b.count;
            acc.sum += b.sum;
            acc.min = acc.min.min(b.min);
            acc.max = acc.max.max(b.max);
            if let Some(q) = b.quantiles {
                let mut buf = Vec::new();
                if q.encode_bin(&mut buf) {
                    acc.quantiles
                        .get_or_insert_with(QuantileSketch::windowed)
                        .merge_bin(&buf, b.min, b.max);
                }
            }
        }
        Some((kind, acc))
    }

    fn with_older<T>(
        &self,
        name: &str,
        window: Option<Duration>,
        scope: &Scope,
        f: impl FnOnce(Option<OlderBins<'_>>) -> Result<T, MetricsError>,
    ) -> Option<Result<T, MetricsError>> {
        // All-time answers are this run's (memory's totals).
        let older = self.older(name, Some(window?), scope);
        Some(f(older.as_ref().map(|(kind, b)| OlderBins {
            kind: *kind,
            count: b.count,
            sum: b.sum,
            min: b.min,
            max: b.max,
            quantiles: b.quantiles.as_ref(),
        })))
    }

    /// The summary of `name` from the store alone: another instance's.
    fn stored_summary(
        &self,
        name: &str,
        window: Option<Duration>,
        scope: &Scope,
    ) -> Result<MetricSummary, MetricsError> {
        let (kind, b) = self
            .older(name, window, scope)
            .filter(|(_, b)| b.count > 0)
            .ok_or_else(|| MetricsError::NoData(name.to_owned()))?;
        let dist = matches!(kind, MetricType::Histogram | MetricType::Timer);
        let q = |p: f64| {
            dist.then(|| b.quantiles.as_ref().and_then(|s| s.quantile(p)))
                .flatten()
        };
        Ok(MetricSummary {
            name: name.to_owned(),
            metric_type: kind,
            unit: if kind == MetricType::Timer {
                MetricUnit::Milliseconds
            } else {
                MetricUnit::Count
            },
            series: 0,
            count: b.count,
            sum: b.sum,
            avg: b.sum / b.count as f64,
            min: b.min,
            max: b.max,
            last: None,
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            window,
        })
    }

    /// The store's rollup of `r` in `scope` (without what memory answers).
    fn stored_rollup(
        &self,
        r: &RollupRequest,
        calendar: Calendar,
        scope: &Scope,
    ) -> Vec<HistorySeries> {
        let q = HistoryQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start_ms: r.start.timestamp_millis(),
            end_ms: r.end.timestamp_millis(),
            group_by: r.group_by.clone(),
            calendar: Some(calendar),
            ..HistoryQuery::default()
        };
        self.ask_store(q, scope)
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
        let scope = self.scope(&r.instance);
        let no_data = || MetricsError::NoData(r.name.clone());
        let recent = if scope.with_memory {
            match MemoryRanges(self.memory.clone()).query_range(r) {
                Ok(s) => s,
                Err(MetricsError::NoData(_)) => Vec::new(),
                Err(e) => return Err(e),
            }
        } else {
            Vec::new()
        };
        let known = !recent.is_empty();
        let all = merge(recent, self.stored(r, &scope));
        if all.is_empty() && !known {
            return Err(no_data());
        }
        Ok(all)
    }

    fn summary(
        &self,
        name: &str,
        window: Option<Duration>,
        instance: &InstanceScope,
    ) -> Option<Result<MetricSummary, MetricsError>> {
        let scope = self.scope(instance);
        if !scope.with_memory {
            return Some(self.stored_summary(name, window, &scope));
        }
        self.with_older(name, window, &scope, |older| {
            self.memory.summary_with_older(name, window, older)
        })
    }

    fn timing(
        &self,
        name: &str,
        window: Option<Duration>,
    ) -> Option<Result<TimingStats, MetricsError>> {
        let scope = self.scope(&InstanceScope::Local);
        self.with_older(name, window, &scope, |older| {
            self.memory.timing_with_older(name, window, older)
        })
    }

    fn outcomes(
        &self,
        operation: &str,
        window: Option<Duration>,
    ) -> Option<Result<Outcomes, MetricsError>> {
        let now = self.memory.clock_ms();
        let (start_ms, skip_since) = match window {
            // Memory answers this run's bins it still holds.
            Some(w) => (
                Some(now.saturating_sub(i64::try_from(w.as_millis()).unwrap_or(i64::MAX))),
                self.memory_since_ms(),
            ),
            // Memory's all-time totals are this whole run's.
            None => (None, i64::MIN),
        };
        let q = OutcomeQuery {
            operation: operation.to_owned(),
            start_ms,
            end_ms: window.map(|_| now.saturating_add(1)),
            instances: Some(vec![self.writer.instance().to_owned()]),
            skip_run_since: Some((self.writer.run().to_owned(), skip_since)),
        };
        let older = self
            .on_store(|store| async move { store.outcomes(&q).await })
            .filter(|t| t.total() > 0);
        Some(self.memory.outcomes_with_older(
            operation,
            window,
            older.as_ref().map(|t| OlderOutcomes {
                success: t.success,
                failures: &t.failures,
            }),
        ))
    }

    fn serves_instances(&self) -> bool {
        true
    }

    fn rollup(&self, r: &RollupRequest) -> Option<Result<Vec<RollupSeries>, MetricsError>> {
        let scope = self.scope(&r.instance);
        let cal = calendar(r.period);
        let recent = if scope.with_memory {
            match self
                .memory
                .rollup(&r.name, &r.tags, cal, r.start, r.end, r.group_by.as_deref())
            {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            }
        } else {
            Vec::new()
        };
        let stored = self.stored_rollup(r, cal, &scope);
        let all = merge_rollups(r.period, recent, stored);
        if all.iter().all(|s| s.bins.is_empty()) {
            return Some(Err(MetricsError::NoData(r.name.clone())));
        }
        Some(Ok(all))
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
    use metrics_http::Period;
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

    /// Two instances writing to one SQLite file: each answers for itself by
    /// default, for the other by name, and for both with `*`.
    #[test]
    fn instances_are_queried_one_by_one_or_all_merged() {
        use metrics_memory::{ManualClock, MemoryConfig};
        use metrics_protocol::MetricCollector;
        use metrics_store::{StoreUrl, WriterConfig};

        let dir = std::env::temp_dir().join(format!("metrics-agent-fleet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
        let t0 = 1_800_000_000_000;
        let start = |name: &str, v: f64| {
            let clock = Arc::new(ManualClock::new(t0));
            let m = Arc::new(
                MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap(),
            );
            let w = HistoryWriter::start(m.clone(), WriterConfig::new(url.clone(), name)).unwrap();
            m.record_counter("jobs", v, &[]);
            m.record_histogram("size", v, &[]);
            clock.advance(Duration::from_secs(10));
            (m, Arc::new(w))
        };
        let (_, wa) = start("host-a", 1.0);
        wa.shutdown();
        let (mb, wb) = start("host-b", 5.0);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while wb.store().is_none() {
            assert!(std::time::Instant::now() < deadline, "{:?}", wb.status());
            std::thread::sleep(Duration::from_millis(20));
        }
        let ranges = HistoryRanges::new(mb, wb.clone());
        assert!(ranges.serves_instances());
        let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
        let sum = |instance: InstanceScope| -> f64 {
            let r = RangeRequest {
                name: "jobs".into(),
                tags: vec![],
                start: at(t0),
                end: at(t0 + 60_000),
                step: Duration::from_secs(60),
                group_by: None,
                instance,
            };
            ranges.query_range(&r).unwrap()[0].bins[0].sum
        };
        assert_eq!(sum(InstanceScope::Local), 5.0);
        assert_eq!(sum(InstanceScope::Named("host-a".into())), 1.0);
        assert_eq!(sum(InstanceScope::Named("host-b".into())), 5.0);
        assert_eq!(sum(InstanceScope::All), 6.0);
        let minute = Some(Duration::from_secs(60));
        let other = InstanceScope::Named("host-a".into());
        let s = ranges.summary("size", minute, &other).unwrap().unwrap();
        assert_eq!((s.count, s.max), (1, 1.0));
        let s = ranges
            .summary("size", minute, &InstanceScope::All)
            .unwrap()
            .unwrap();
        assert_eq!((s.count, s.min, s.max), (2, 1.0, 5.0));
        let nobody = InstanceScope::Named("host-z".into());
        assert!(ranges.summary("size", minute, &nobody).unwrap().is_err());
        let day = RollupRequest {
            name: "jobs".into(),
            tags: vec![],
            period: Period::Hour,
            start: at(t0 - 3_600_000),
            end: at(t0 + 3_600_000),
            group_by: None,
            instance: InstanceScope::All,
        };
        let got = ranges.rollup(&day).unwrap().unwrap();
        assert_eq!(got[0].bins.iter().map(|b| b.sum).sum::<f64>(), 6.0);
        wb.shutdown();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Two runs of a program on one store, the second asked about both:
    /// the first run's bins come from the store, the second's from memory.
    #[test]
    fn a_range_across_a_restart_returns_both_halves() {
        use metrics_memory::{ManualClock, MemoryConfig};
        use metrics_protocol::{MetricCollector, SuccessFailureTracker};
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
        m.record_success("pay", &[]);
        m.record_failure("pay", "timeout", &[]);
        clock.advance(Duration::from_secs(10));
        m.record_counter("jobs", 4.0, &[("q", "a")]);
        m.record_success("pay", &[]);
        w.shutdown();
        // 6 series bins and 2 outcome bins.
        assert_eq!(w.status().written, 8, "{:?}", w.status());

        // The second run starts 3 s later, within the bin the first one
        // stopped in, and records into it.
        let (clock, m, w) = run(t0 + 13_000);
        m.record_counter("jobs", 8.0, &[("q", "a")]);
        m.record_histogram("size", 30.0, &[("q", "b")]);
        m.record_failure("pay", "refused", &[]);
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
            instance: InstanceScope::Local,
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
        let local = InstanceScope::Local;
        let s = ranges.summary("size", minute, &local).unwrap().unwrap();
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 60.0, 10.0, 30.0));
        let p50 = s.p50.unwrap();
        assert!((p50 - 20.0).abs() < 0.5, "{p50}");
        assert!(
            ranges.summary("size", None, &local).is_none(),
            "all time: the system's"
        );
        let t = ranges.timing("op", minute).unwrap().unwrap();
        assert_eq!(t.count, 1);
        assert!((t.p50.as_secs_f64() - 0.005).abs() < 1e-4, "{t:?}");
        assert!(ranges.summary("never", minute, &local).unwrap().is_err());

        // Outcomes: both runs, windowed and all time, failures by type.
        for window in [minute, None] {
            let (ok, failed) = ranges.outcomes("pay", window).unwrap().unwrap();
            assert_eq!(ok, 2, "{window:?}");
            let failed: Vec<(&str, u64)> = failed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            assert_eq!(failed, vec![("refused", 1), ("timeout", 1)], "{window:?}");
        }
        assert!(ranges.outcomes("never", None).unwrap().is_err());

        // A day's rollup holds both runs, saying what its bins cover.
        let day = RollupRequest {
            name: "jobs".into(),
            tags: vec![],
            period: Period::Day,
            start: at(t0 - 86_400_000),
            end: at(t0 + 86_400_000),
            group_by: Some("q".into()),
            instance: InstanceScope::Local,
        };
        let got = ranges.rollup(&day).unwrap().unwrap();
        let a = got
            .iter()
            .find(|s| s.group.as_deref() == Some("a"))
            .unwrap();
        assert_eq!(a.bins.len(), 1, "{got:?}");
        let b = &a.bins[0];
        assert_eq!(b.sum, 13.0);
        assert_eq!(b.start, Calendar::Day.period_start(at(t0)));
        assert_eq!(b.end - b.start, chrono::TimeDelta::days(1));
        assert_eq!((b.covers_start, b.covers_end), (at(t0), at(t0 + 20_000)));
        w.shutdown();
        std::fs::remove_dir_all(&dir).ok();
    }
}
