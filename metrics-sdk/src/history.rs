//! Durable history: the memory backend's bins written to a store
//! (`metrics-store`) and range queries answered from both.
//!
//! [`HistoryRanges`] answers `query_range` from memory for the bins the
//! running process holds and from the store for older ones (earlier runs,
//! or what aged out of memory), so a range spanning a restart returns both
//! halves; windowed `summary` and `timing` merge the same two halves
//! (percentiles through the stored sketches).

use std::sync::Arc;
use std::time::Duration;

use metrics_memory::{MemoryMetrics, OlderBins, OlderOutcomes, QuantileSketch};
use metrics_protocol::app::MetricSummary;
use metrics_protocol::app::TimingStats;
use metrics_protocol::{MetricType, MetricsError};
use metrics_query::{
    InstanceScope, Outcomes, RangeAnswer, RangeGroup, RangeQueries, RangeRequest, RollupRequest,
};
use metrics_store::{
    HistoryBin, HistoryGroup, HistoryQuery, HistoryWriter, OutcomeQuery, Store, WriterStatus,
};

use crate::health::CheckOutcome;
use crate::ranges::{merge, merge_rollups, step_edges, steps};

/// How long a query waits for the store by default before answering from
/// memory alone ([`HistoryRanges::with_store_timeout`]).
pub const STORE_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Range queries over memory (recent) and the store (older).
///
/// A store that is down, not connected, or slower than the store timeout
/// (1 s by default) does not hold a query up: the answer comes from memory
/// alone, and `query_range` and `rollup` say so
/// ([`RangeAnswer::partial`]); windowed summaries, timings and outcomes
/// then count this run's bins in memory only (logged as a warning).
pub struct HistoryRanges {
    memory: Arc<MemoryMetrics>,
    writer: Arc<HistoryWriter>,
    store_timeout: Duration,
}

/// Why the store did not answer a query.
type Unanswered = String;

/// Which rows a store query takes for an [`InstanceScope`], and whether
/// memory (this process) answers its recent part.
struct Scope {
    instances: Option<Vec<String>>,
    with_memory: bool,
}

impl HistoryRanges {
    /// Ranges over `memory` and the store `writer` writes to.
    pub fn new(memory: Arc<MemoryMetrics>, writer: Arc<HistoryWriter>) -> Self {
        HistoryRanges {
            memory,
            writer,
            store_timeout: STORE_QUERY_TIMEOUT,
        }
    }

    /// Waits at most `timeout` for each store query (instead of
    /// [`STORE_QUERY_TIMEOUT`]) before answering from memory alone.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
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

    /// Where a window's stored rows end (exclusive): the end of the bin
    /// open now. Stored rows are taken whole, so a window ending at now
    /// would leave out the row of an earlier run that stopped within the
    /// open bin (this run's own rows there are memory's, left out by run).
    fn window_end_ms(&self) -> i64 {
        let finest = self.memory.finest_bin_ms().max(1);
        let now = self.memory.clock_ms();
        now.div_euclid(finest)
            .saturating_mul(finest)
            .saturating_add(finest)
    }

    /// Runs a store query on the writer's runtime, waiting at most the
    /// store timeout; why not when there is no store yet, it fails or it
    /// is slow (logged).
    fn on_store<T, F>(&self, f: impl FnOnce(Store) -> F) -> Result<T, Unanswered>
    where
        F: std::future::Future<Output = Result<T, metrics_store::StoreError>>,
    {
        let Some(store) = self.writer.store() else {
            let status = self.writer.status();
            let why = status.last_error.unwrap_or_else(|| "not connected".into());
            return Err(format!("not connected: {why}"));
        };
        let limit = self.store_timeout;
        let answer = self
            .writer
            .block_on(async { tokio::time::timeout(limit, f(store)).await });
        let why = match answer {
            Some(Ok(Ok(v))) => return Ok(v),
            Some(Ok(Err(e))) => e.to_string(),
            Some(Err(_)) => format!(
                "did not answer within {}",
                humantime::format_duration(limit)
            ),
            None => "stopped".into(),
        };
        tracing::warn!(
            url = %self.writer.status().url,
            reason = %why,
            "history store query not answered; answering from memory alone"
        );
        Err(why)
    }

    /// The rows of `q` in `scope`, without the rows memory answers for
    /// (this run's recent ones); why not when the store cannot answer.
    fn ask_store(
        &self,
        mut q: HistoryQuery,
        scope: &Scope,
    ) -> Result<Vec<HistoryGroup>, Unanswered> {
        q.instances = scope.instances.clone();
        q.skip_run_since = Some((self.writer.run().to_owned(), self.memory_since_ms()));
        self.on_store(|store| async move { store.query(&q).await })
    }

    /// What an answer lacking the store's part says.
    fn partial(why: &str) -> String {
        format!("history store unavailable ({why}): recent history from memory only")
    }

    fn stored(&self, r: &RangeRequest, scope: &Scope) -> Result<Vec<RangeGroup>, Unanswered> {
        let q = HistoryQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start_ms: r.start.timestamp_millis(),
            end_ms: r.end.timestamp_millis(),
            step_ms: r.step.as_millis() as i64,
            group_by: r.group_by.clone(),
            ..HistoryQuery::default()
        };
        let series = self.ask_store(q, scope)?;
        Ok(steps(series, step_edges(r)))
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
        let end = self.window_end_ms();
        let q = HistoryQuery {
            name: name.to_owned(),
            start_ms: start,
            end_ms: end,
            step_ms: end.saturating_sub(start).saturating_add(1),
            ..HistoryQuery::default()
        };
        let s = self.ask_store(q, scope).ok()?.into_iter().next()?;
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
            unit: self.memory.unit_of(name, kind),
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
            covers: None,
            quantiles_cover: None,
        })
    }

    /// The store's rollup of `r` in `scope` (without what memory answers).
    fn stored_rollup(
        &self,
        r: &RollupRequest,
        scope: &Scope,
    ) -> Result<Vec<HistoryGroup>, Unanswered> {
        let q = HistoryQuery {
            name: r.name.clone(),
            tags: r.tags.clone(),
            start_ms: r.start.timestamp_millis(),
            end_ms: r.end.timestamp_millis(),
            group_by: r.group_by.clone(),
            calendar: Some(r.period),
            ..HistoryQuery::default()
        };
        self.ask_store(q, scope)
    }
}

impl RangeQueries for HistoryRanges {
    fn query_range(&self, r: &RangeRequest) -> Result<Vec<RangeGroup>, MetricsError> {
        self.query_range_answer(r).map(|a| a.series)
    }

    fn query_range_answer(&self, r: &RangeRequest) -> Result<RangeAnswer, MetricsError> {
        // Memory and the store answer on one grid, so their steps merge.
        let r = &r.aligned();
        let scope = self.scope(&r.instance);
        let no_data = || MetricsError::NoData(r.name.clone());
        let recent = if scope.with_memory {
            match self.memory.range_query(r) {
                Ok(s) => s,
                Err(MetricsError::NoData(_)) => Vec::new(),
                Err(e) => return Err(e),
            }
        } else {
            Vec::new()
        };
        let known = !recent.is_empty();
        let (stored, partial) = match self.stored(r, &scope) {
            Ok(s) => (s, None),
            Err(why) => (Vec::new(), Some(Self::partial(&why))),
        };
        let all = merge(recent, stored);
        if all.is_empty() && !known && partial.is_none() {
            return Err(no_data());
        }
        Ok(RangeAnswer {
            series: all,
            partial,
            grid: None,
        }
        .on_grid_of(r))
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
        instance: &InstanceScope,
    ) -> Option<Result<Outcomes, MetricsError>> {
        let scope = self.scope(instance);
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
            end_ms: window.map(|_| self.window_end_ms()),
            instances: scope.instances.clone(),
            // Memory answers for this run's rows it holds, if it answers.
            skip_run_since: scope
                .with_memory
                .then(|| (self.writer.run().to_owned(), skip_since)),
        };
        let older = self
            .on_store(|store| async move { store.outcomes(&q).await })
            .ok()
            .filter(|t| t.total() > 0);
        if !scope.with_memory {
            // Another instance: what the store holds of it alone.
            return Some(
                older
                    .map(|t| (t.success, t.failures))
                    .ok_or_else(|| MetricsError::NoData(operation.to_owned())),
            );
        }
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

    fn rollup(&self, r: &RollupRequest) -> Option<Result<Vec<RangeGroup>, MetricsError>> {
        self.rollup_answer(r).map(|a| a.map(|a| a.series))
    }

    fn rollup_answer(&self, r: &RollupRequest) -> Option<Result<RangeAnswer, MetricsError>> {
        let scope = self.scope(&r.instance);
        let recent = if scope.with_memory {
            match self.memory.rollup(r) {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            }
        } else {
            Vec::new()
        };
        let (stored, partial) = match self.stored_rollup(r, &scope) {
            Ok(s) => (s, None),
            Err(why) => (Vec::new(), Some(Self::partial(&why))),
        };
        let all = merge_rollups(r.period, recent, stored);
        if all.iter().all(|s| s.bins.is_empty()) && partial.is_none() {
            return Some(Err(MetricsError::NoData(r.name.clone())));
        }
        Some(Ok(RangeAnswer {
            series: all,
            partial,
            grid: None,
        }))
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
mod tests;
