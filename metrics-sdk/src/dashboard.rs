//! Dashboard data computed from the in-memory backend's windows: typed
//! panels a UI can draw as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_memory::MemoryMetrics;
use metrics_protocol::app::{
    ChartType, DashboardData, DashboardKind, MetricValue, MetricsAggregator, Panel, PanelSeries,
    Point,
};
use metrics_protocol::{MetricType, MetricUnit, MetricsError};
use metrics_query::{RangeBin, RangeGroup, RangeRequest};
#[cfg(feature = "system")]
use metrics_system::names;

/// At most this many metrics of one kind get their own series.
const MAX_SERIES: usize = 8;

/// The data of dashboard `kind`, over the memory backend's finest window
/// (5 minutes in bins of 10 seconds by default), ending at `now_ms`.
///
/// - **overview**: top counters (bar), operations per second of every timer
///   (line), success rate of every operation (stat), current gauges (table);
/// - **performance**: per timer, mean and max latency over time (line); the
///   p50/p95/p99 of every timer and histogram over the window (table);
///   throughput (line);
/// - **errors**: error rate per operation (bar), failures by operation and
///   error type (pie), failures per operation (stat);
/// - **resources**: CPU and memory utilisation (line, percent), load
///   average (line), this process's memory (line, bytes), file system
///   utilisation per mount point (bar), network traffic per interface and
///   direction (line, bytes per second).
///
/// Panels with nothing to show have no series; a dashboard always has all
/// its panels, so a UI's layout does not jump.
pub fn build(
    memory: &MemoryMetrics,
    kind: DashboardKind,
    now_ms: i64,
) -> Result<DashboardData, MetricsError> {
    let ctx = Ctx::new(memory, now_ms)?;
    let (title, panels) = match kind {
        DashboardKind::Overview => ("Overview", ctx.overview()),
        DashboardKind::Performance => ("Performance", ctx.performance()),
        DashboardKind::Errors => ("Errors", ctx.errors()),
        DashboardKind::Resources => ("System resources", ctx.resources()),
    };
    Ok(DashboardData {
        kind,
        title: title.into(),
        generated_at: to_time(now_ms),
        panels,
    })
}

struct Ctx<'a> {
    m: &'a MemoryMetrics,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    step: Duration,
    window: Duration,
}

fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn panel(title: &str, unit: MetricUnit, chart: ChartType, series: Vec<PanelSeries>) -> Panel {
    Panel {
        title: title.into(),
        unit,
        chart,
        series,
    }
}

fn series(
    label: impl Into<String>,
    tags: BTreeMap<String, String>,
    points: Vec<Point>,
) -> PanelSeries {
    PanelSeries {
        label: label.into(),
        tags,
        points,
    }
}

fn label_of(v: &MetricValue) -> String {
    if v.tags.is_empty() {
        v.name.clone()
    } else {
        let tags: Vec<String> = v.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}{{{}}}", v.name, tags.join(","))
    }
}

impl<'a> Ctx<'a> {
    fn new(m: &'a MemoryMetrics, now_ms: i64) -> Result<Self, MetricsError> {
        let finest = m.config().windows.first().copied().ok_or_else(|| {
            MetricsError::InvalidArgument("the memory backend has no windows".into())
        })?;
        let bin = (finest.bin.as_millis() as i64).max(1);
        let end = now_ms.div_euclid(bin) * bin + bin;
        let start = end - finest.span.as_millis() as i64;
        Ok(Ctx {
            m,
            start: to_time(start),
            end: to_time(end),
            now: to_time(now_ms),
            step: finest.bin,
            window: finest.span,
        })
    }

    /// Bins of `name` (tags contained), grouped by one tag; empty on error.
    fn range(&self, name: &str, tags: &[(&str, &str)], group_by: Option<&str>) -> Vec<RangeGroup> {
        let q = RangeRequest {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            start: self.start,
            end: self.end,
            step: self.step,
            group_by: group_by.map(str::to_owned),
            instance: Default::default(),
        };
        self.m.range_query(&q).unwrap_or_else(|e| {
            tracing::debug!(metric = name, error = %e, "range query failed");
            Vec::new()
        })
    }

    fn points(bins: &[RangeBin], f: impl Fn(&RangeBin) -> f64) -> Vec<Point> {
        bins.iter()
            .map(|b| Point {
                timestamp: b.start,
                value: f(b),
            })
            .collect()
    }

    fn now_point(&self, value: f64) -> Vec<Point> {
        vec![Point {
            timestamp: self.now,
            value,
        }]
    }

    fn names_of(&self, t: MetricType) -> Vec<String> {
        let names: BTreeSet<String> = self
            .m
            .series("")
            .into_iter()
            .filter(|s| s.metric_type == t)
            .map(|s| s.name)
            .collect();
        names.into_iter().collect()
    }

    fn per_second(&self, bins: &[RangeBin]) -> Vec<Point> {
        let secs = self.step.as_secs_f64().max(1e-3);
        Self::points(bins, |b| b.count as f64 / secs)
    }

    fn throughput(&self, timers: &[String]) -> Vec<PanelSeries> {
        timers
            .iter()
            .take(MAX_SERIES)
            .filter_map(|t| {
                let r = self.range(t, &[], None);
                let bins = r.first()?;
                Some(series(
                    t.clone(),
                    BTreeMap::new(),
                    self.per_second(&bins.bins),
                ))
            })
            .collect()
    }

    fn success_rates(&self) -> Vec<(String, f64)> {
        self.m
            .operations()
            .into_iter()
            .filter_map(|op| {
                let r = self.m.success_rate(&op, Some(self.window)).ok()?;
                Some((op, r))
            })
            .collect()
    }

    fn overview(&self) -> Vec<Panel> {
        let top = |t: MetricType| {
            self.m
                .top_metrics(t, 10)
                .unwrap_or_default()
                .into_iter()
                .map(|v| series(label_of(&v), v.tags.clone(), self.now_point(v.value)))
                .collect::<Vec<_>>()
        };
        let rates = self
            .success_rates()
            .into_iter()
            .map(|(op, r)| series(op, BTreeMap::new(), self.now_point(r * 100.0)))
            .collect();
        vec![
            panel(
                "Top counters (all time)",
                MetricUnit::Count,
                ChartType::Bar,
                top(MetricType::Counter),
            ),
            panel(
                "Timed operations per second",
                MetricUnit::OperationsPerSecond,
                ChartType::Line,
                self.throughput(&self.names_of(MetricType::Timer)),
            ),
            panel("Success rate", MetricUnit::Percent, ChartType::Stat, rates),
            panel(
                "Gauges",
                MetricUnit::Count,
                ChartType::Table,
                top(MetricType::Gauge),
            ),
        ]
    }

    fn performance(&self) -> Vec<Panel> {
        let timers = self.names_of(MetricType::Timer);
        let mut latency = Vec::new();
        for t in timers.iter().take(MAX_SERIES) {
            if let Some(r) = self.range(t, &[], None).first() {
                latency.push(series(
                    format!("{t} mean"),
                    BTreeMap::new(),
                    Self::points(&r.bins, |b| b.avg),
                ));
                latency.push(series(
                    format!("{t} max"),
                    BTreeMap::new(),
                    Self::points(&r.bins, |b| b.max),
                ));
            }
        }
        let percentiles = |names: &[String]| {
            let mut out = Vec::new();
            for n in names.iter().take(MAX_SERIES) {
                let Ok(s) = self.m.metric_summary(n, Some(self.window)) else {
                    continue;
                };
                for (label, v) in [("p50", s.p50), ("p95", s.p95), ("p99", s.p99)] {
                    if let Some(v) = v {
                        let tags = BTreeMap::from([("statistic".to_owned(), label.to_owned())]);
                        out.push(series(format!("{n} {label}"), tags, self.now_point(v)));
                    }
                }
            }
            out
        };
        vec![
            panel(
                "Latency over time",
                MetricUnit::Milliseconds,
                ChartType::Line,
                latency,
            ),
            panel(
                "Latency percentiles",
                MetricUnit::Milliseconds,
                ChartType::Table,
                percentiles(&timers),
            ),
            panel(
                "Throughput",
                MetricUnit::OperationsPerSecond,
                ChartType::Line,
                self.throughput(&timers),
            ),
            panel(
                "Distributions",
                MetricUnit::Count,
                ChartType::Table,
                percentiles(&self.names_of(MetricType::Histogram)),
            ),
        ]
    }

    fn errors(&self) -> Vec<Panel> {
        let rates = self.success_rates();
        let error_rates = rates
            .iter()
            .map(|(op, r)| {
                series(
                    op.clone(),
                    BTreeMap::new(),
                    self.now_point((1.0 - r) * 100.0),
                )
            })
            .collect();
        let mut by_type = Vec::new();
        let mut totals = Vec::new();
        for (op, _) in &rates {
            let breakdown = self
                .m
                .failure_breakdown(op, Some(self.window))
                .unwrap_or_default();
            let total: u64 = breakdown.values().sum();
            totals.push(series(
                op.clone(),
                BTreeMap::new(),
                self.now_point(total as f64),
            ));
            for (err, n) in breakdown {
                let tags = BTreeMap::from([
                    ("operation".to_owned(), op.clone()),
                    ("error_type".to_owned(), err.clone()),
                ]);
                by_type.push(series(
                    format!("{op}: {err}"),
                    tags,
                    self.now_point(n as f64),
                ));
            }
        }
        vec![
            panel(
                "Error rate by operation",
                MetricUnit::Percent,
                ChartType::Bar,
                error_rates,
            ),
            panel(
                "Failures by error type",
                MetricUnit::Count,
                ChartType::Pie,
                by_type,
            ),
            panel("Failures", MetricUnit::Count, ChartType::Stat, totals),
        ]
    }

    /// Without the `system` feature nothing polls host resources.
    #[cfg(not(feature = "system"))]
    fn resources(&self) -> Vec<Panel> {
        Vec::new()
    }

    #[cfg(feature = "system")]
    fn resources(&self) -> Vec<Panel> {
        let pct = |b: &RangeBin| b.avg * 100.0;
        // CPU: the untagged series is the whole machine; per-core series carry `cpu`.
        let cpu = self
            .range(names::CPU_UTILIZATION, &[], Some(names::TAG_CPU))
            .into_iter()
            .map(|g| {
                let label = g
                    .group
                    .map_or_else(|| "all".to_owned(), |c| format!("cpu {c}"));
                series(label, BTreeMap::new(), Self::points(&g.bins, pct))
            })
            .collect();
        let memory = self
            .range(names::MEMORY_UTILIZATION, &[], None)
            .into_iter()
            .map(|g| series("memory", BTreeMap::new(), Self::points(&g.bins, pct)))
            .collect();
        let load = [
            ("1m", names::CPU_LOAD_1M),
            ("5m", names::CPU_LOAD_5M),
            ("15m", names::CPU_LOAD_15M),
        ]
        .into_iter()
        .filter_map(|(label, n)| {
            let g = self.range(n, &[], None).into_iter().next()?;
            Some(series(
                label,
                BTreeMap::new(),
                Self::points(&g.bins, |b| b.avg),
            ))
        })
        .collect();
        let process = self
            .range(names::PROCESS_MEMORY_USAGE, &[], None)
            .into_iter()
            .map(|g| series("rss", BTreeMap::new(), Self::points(&g.bins, |b| b.avg)))
            .collect();
        let disks = self
            .range(
                names::FILESYSTEM_UTILIZATION,
                &[],
                Some(names::TAG_MOUNTPOINT),
            )
            .into_iter()
            .filter_map(|g| {
                let last = g.bins.last()?;
                let mount = g.group.unwrap_or_default();
                let tags = BTreeMap::from([(names::TAG_MOUNTPOINT.to_owned(), mount.clone())]);
                Some(series(
                    mount,
                    tags,
                    vec![Point {
                        timestamp: last.start,
                        value: last.avg * 100.0,
                    }],
                ))
            })
            .collect();
        let mut network = Vec::new();
        for dir in [names::DIRECTION_RECEIVE, names::DIRECTION_TRANSMIT] {
            for g in self.range(
                names::NETWORK_IO,
                &[(names::TAG_DIRECTION, dir)],
                Some(names::TAG_DEVICE),
            ) {
                // A counter: the rate is what a bin added over the time
                // it covers.
                let secs = self.step.as_secs_f64().max(1e-3);
                let points = Self::points(&g.bins, |b| {
                    let covered = (b.covers_end - b.covers_start).num_milliseconds() as f64 / 1e3;
                    b.sum / if covered > 0.0 { covered } else { secs }
                });
                let dev = g.group.unwrap_or_default();
                let tags = BTreeMap::from([
                    (names::TAG_DEVICE.to_owned(), dev.clone()),
                    (names::TAG_DIRECTION.to_owned(), dir.to_owned()),
                ]);
                network.push(series(format!("{dev} {dir}"), tags, points));
            }
        }
        vec![
            panel("CPU utilisation", MetricUnit::Percent, ChartType::Line, cpu),
            panel(
                "Memory utilisation",
                MetricUnit::Percent,
                ChartType::Line,
                memory,
            ),
            panel("Load average", MetricUnit::Count, ChartType::Line, load),
            panel(
                "Process memory",
                MetricUnit::Bytes,
                ChartType::Line,
                process,
            ),
            panel(
                "File system utilisation",
                MetricUnit::Percent,
                ChartType::Bar,
                disks,
            ),
            panel(
                "Network traffic (bytes per second)",
                MetricUnit::Bytes,
                ChartType::Line,
                network,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::metrics_of;
    use metrics_memory::{Clock, ManualClock, MemoryConfig};
    use std::sync::Arc;

    fn memory() -> (Arc<MemoryMetrics>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let m = MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap();
        (Arc::new(m), clock)
    }

    fn panel_of<'d>(d: &'d DashboardData, title: &str) -> &'d Panel {
        d.panels
            .iter()
            .find(|p| p.title == title)
            .unwrap_or_else(|| panic!("no panel {title} in {d:#?}"))
    }

    #[test]
    fn overview_and_performance_from_windows() {
        let (m, clock) = memory();
        for i in 0..30 {
            metrics_of(&m).record_timer(
                "api.latency",
                Duration::from_millis(10 + i),
                &[("route", "/a")],
            );
            metrics_of(&m).record_counter("api.requests", 1.0, &[("route", "/a")]);
            metrics_of(&m).record_success("api.call", &[]);
            if i % 10 == 0 {
                clock.advance(Duration::from_secs(10));
            }
        }
        metrics_of(&m).record_gauge("queue.depth", 4.0, &[]);
        metrics_of(&m).record_histogram("body.bytes", 100.0, &[]);
        let d = build(&m, DashboardKind::Overview, clock.now_millis()).unwrap();
        assert_eq!(d.kind, DashboardKind::Overview);
        let top = panel_of(&d, "Top counters (all time)");
        assert_eq!(top.chart, ChartType::Bar);
        assert_eq!(top.series[0].label, "api.requests{route=/a}");
        assert_eq!(top.series[0].points[0].value, 30.0);
        let rate = panel_of(&d, "Success rate");
        assert_eq!(
            (rate.unit, rate.series[0].points[0].value),
            (MetricUnit::Percent, 100.0)
        );
        let tput = panel_of(&d, "Timed operations per second");
        let counted: f64 = tput.series[0].points.iter().map(|p| p.value * 10.0).sum();
        assert_eq!(counted, 30.0, "every timing is in some bin");
        assert!(tput.series[0].points.len() >= 3, "{tput:?}");
        assert_eq!(panel_of(&d, "Gauges").series[0].points[0].value, 4.0);

        let d = build(&m, DashboardKind::Performance, clock.now_millis()).unwrap();
        let lat = panel_of(&d, "Latency over time");
        assert_eq!(lat.unit, MetricUnit::Milliseconds);
        let max: f64 = lat
            .series
            .iter()
            .find(|s| s.label == "api.latency max")
            .unwrap()
            .points
            .iter()
            .map(|p| p.value)
            .fold(0.0, f64::max);
        assert_eq!(max, 39.0);
        let pct = panel_of(&d, "Latency percentiles");
        let p99 = pct
            .series
            .iter()
            .find(|s| s.label == "api.latency p99")
            .unwrap();
        assert!((p99.points[0].value - 39.0).abs() < 0.5, "{p99:?}");
        assert_eq!(panel_of(&d, "Distributions").series.len(), 3);
        // Typed and serialisable.
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["panels"][0]["chart"], "line");
    }

    #[test]
    fn errors_dashboard_breaks_failures_down() {
        let (m, clock) = memory();
        for _ in 0..6 {
            metrics_of(&m).record_success("checkout", &[]);
        }
        metrics_of(&m).record_failure("checkout", "timeout", &[]);
        metrics_of(&m).record_failure("checkout", "timeout", &[]);
        metrics_of(&m).record_failure("checkout", "card_declined", &[]);
        metrics_of(&m).record_failure("login", "bad_password", &[]);
        let d = build(&m, DashboardKind::Errors, clock.now_millis()).unwrap();
        let rate = panel_of(&d, "Error rate by operation");
        let checkout = rate.series.iter().find(|s| s.label == "checkout").unwrap();
        assert!((checkout.points[0].value - 100.0 / 3.0).abs() < 1e-9);
        let login = rate.series.iter().find(|s| s.label == "login").unwrap();
        assert_eq!(login.points[0].value, 100.0);
        let pie = panel_of(&d, "Failures by error type");
        assert_eq!(pie.chart, ChartType::Pie);
        let timeouts = pie
            .series
            .iter()
            .find(|s| s.label == "checkout: timeout")
            .unwrap();
        assert_eq!(timeouts.points[0].value, 2.0);
        assert_eq!(timeouts.tags["error_type"], "timeout");
        assert_eq!(pie.series.len(), 3);
        let totals = panel_of(&d, "Failures");
        assert_eq!(
            totals.series.iter().map(|s| s.points[0].value).sum::<f64>(),
            4.0
        );
    }

    #[cfg(feature = "system")]
    #[test]
    fn resources_dashboard_reads_the_system_gauges() {
        let (m, clock) = memory();
        for (i, rx) in [1000.0, 2000.0, 3000.0].into_iter().enumerate() {
            metrics_of(&m).record_gauge(names::CPU_UTILIZATION, 0.25 + i as f64 * 0.1, &[]);
            metrics_of(&m).record_gauge(names::CPU_UTILIZATION, 0.5, &[(names::TAG_CPU, "0")]);
            metrics_of(&m).record_gauge(
                names::MEMORY_UTILIZATION,
                0.4,
                &[(names::TAG_STATE, names::STATE_USED)],
            );
            metrics_of(&m).record_gauge(names::PROCESS_MEMORY_USAGE, 2e6, &[]);
            metrics_of(&m).record_gauge(names::CPU_LOAD_1M, 0.7, &[]);
            metrics_of(&m).record_gauge(
                names::FILESYSTEM_UTILIZATION,
                0.81,
                &[(names::TAG_MOUNTPOINT, "/"), (names::TAG_DEVICE, "sda1")],
            );
            metrics_of(&m).record_counter(
                names::NETWORK_IO,
                rx,
                &[
                    (names::TAG_DEVICE, "eth0"),
                    (names::TAG_DIRECTION, names::DIRECTION_RECEIVE),
                ],
            );
            clock.advance(Duration::from_secs(10));
        }
        let d = build(&m, DashboardKind::Resources, clock.now_millis()).unwrap();
        let cpu = panel_of(&d, "CPU utilisation");
        let all = cpu.series.iter().find(|s| s.label == "all").unwrap();
        let values: Vec<f64> = all
            .points
            .iter()
            .map(|p| (p.value * 1e6).round() / 1e6)
            .collect();
        assert_eq!(values, vec![25.0, 35.0, 45.0]);
        assert!(cpu.series.iter().any(|s| s.label == "cpu 0"));
        assert_eq!(
            panel_of(&d, "Memory utilisation").series[0].points[0].value,
            40.0
        );
        assert_eq!(panel_of(&d, "Process memory").unit, MetricUnit::Bytes);
        assert_eq!(panel_of(&d, "Load average").series[0].label, "1m");
        let disk = panel_of(&d, "File system utilisation");
        assert_eq!(disk.series[0].label, "/");
        assert!((disk.series[0].points[0].value - 81.0).abs() < 1e-9);
        let net = panel_of(&d, "Network traffic (bytes per second)");
        let rates: Vec<f64> = net.series[0].points.iter().map(|p| p.value).collect();
        // Increments of 1,000, 2,000 and 3,000 bytes, one per 10 s bin.
        assert_eq!(rates, vec![100.0, 200.0, 300.0]);
    }

    #[test]
    fn every_kind_builds_on_an_empty_backend() {
        let (m, clock) = memory();
        for kind in DashboardKind::ALL {
            let d = build(&m, kind, clock.now_millis()).unwrap();
            if kind == DashboardKind::Resources && !cfg!(feature = "system") {
                assert!(d.panels.is_empty(), "{d:?}");
                continue;
            }
            assert!(!d.panels.is_empty());
            assert!(d.panels.iter().all(|p| p.series.is_empty()), "{d:?}");
        }
        assert!(
            "weather"
                .parse::<DashboardKind>()
                .unwrap_err()
                .to_string()
                .contains("weather")
        );
    }
}
