//! What the demo prints: the live summary (timings, outcomes, the health
//! report and what the stream subscriber saw), the stream subscriber itself,
//! and stdout that a closed pipe ends quietly. Setting the agent up and the
//! run loop are in `main.rs`; the workload in `workload.rs`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use metrics_protocol::MetricType;
use metrics_protocol::app::{
    AsyncMetricsSystem, HealthReport, MetricFilter, MetricsSystem, StreamEvent,
};
use metrics_sdk::Agent;

use crate::workload;

/// Writes to stdout; a closed pipe (`| head`) ends the run quietly
/// instead of panicking.
pub(crate) struct Out {
    pub(crate) closed: AtomicBool,
}

impl Out {
    pub(crate) fn print(&self, text: &str) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            self.closed.store(true, Ordering::Relaxed);
        }
    }
}

fn health_lines(out: &mut String, h: &HealthReport) {
    let dropped: u64 = h.dropped.values().sum();
    let _ = writeln!(
        out,
        "health: {} (error rate {:.1}%, {} dropped{})",
        h.status,
        h.error_rate * 100.0,
        dropped,
        if dropped > 0 {
            format!(" {:?}", h.dropped)
        } else {
            String::new()
        }
    );
    for b in &h.backends {
        let details: Vec<String> = b.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "  backend {:<12} {:<9} {}{}",
            b.name,
            b.status.to_string(),
            details.join(" "),
            b.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    for c in &h.checks {
        let line = format!(
            "  check   {:<12} {:<9} {}",
            c.name,
            c.status.to_string(),
            c.message.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

pub(crate) fn summary(agent: &Agent, started: Instant, streamed: &StreamCounts) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n--- {:.0?} ---", started.elapsed());
    let window = Some(Duration::from_secs(300));
    if agent.memory().is_some() {
        let queries = agent.aggregator();
        for name in [workload::LATENCY, workload::DB_QUERY] {
            match queries.timing_stats(name, window) {
                Ok(t) => {
                    let _ = writeln!(
                        out,
                        "{name:<24} n={:<7} p50={:>7.2}ms p95={:>7.2}ms p99={:>7.2}ms max={:>7.2}ms",
                        t.count,
                        ms(t.p50),
                        ms(t.p95),
                        ms(t.p99),
                        ms(t.max)
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "{name:<24} {e}");
                }
            }
        }
        for op in [workload::OPERATION, workload::DB_QUERY] {
            if let Ok(rate) = queries.success_rate(op, window) {
                let failures = queries.failure_breakdown(op, window).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{:<24} {:>5.1}% ok (5 m), failures {failures:?}",
                    format!("{op} success"),
                    rate * 100.0
                );
            }
        }
        if let Some(memory) = agent.memory() {
            let (mut hits, mut misses) = (0.0, 0.0);
            for s in memory.series(workload::CACHE_LOOKUPS) {
                match s
                    .tags
                    .iter()
                    .find(|(k, _)| k == "result")
                    .map(|(_, v)| v.as_str())
                {
                    Some("hit") => hits += s.value,
                    Some("miss") => misses += s.value,
                    _ => {}
                }
            }
            let entries = memory
                .gauge_value(workload::CACHE_ENTRIES, &[])
                .unwrap_or(0.0);
            let _ = writeln!(
                out,
                "{:<24} {hits} hits, {misses} misses ({:.1}% hit), {entries} entries (via the `metrics` crate)",
                "response cache",
                if hits + misses > 0.0 {
                    100.0 * hits / (hits + misses)
                } else {
                    0.0
                }
            );
        }
        if let Ok(top) = queries.top_metrics(MetricType::Counter, 4) {
            for v in top {
                let tags: Vec<String> = v.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "{:<24} {:>10} {{{}}}", v.name, v.value, tags.join(","));
            }
        }
    } else {
        let _ = writeln!(
            out,
            "(StatsD only: the daemon holds the numbers; health below)"
        );
    }
    // Read now through the ResourceMonitor (the poller publishes the same
    // readings as gauges every collection interval).
    let monitor = agent.resource_monitor();
    if let Ok(cpu) = monitor.cpu_usage() {
        let _ = writeln!(
            out,
            "{:<24} {:.1}% of {} cores",
            "system cpu", cpu.percent, cpu.logical_cores
        );
    }
    if let Ok(p) = monitor.process_usage() {
        let _ = writeln!(
            out,
            "{:<24} {:.1} MiB rss, {:.1}% cpu",
            "this process",
            p.rss_bytes as f64 / 1_048_576.0,
            p.cpu_percent.unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        out,
        "{:<24} {} values, {} lost to lag",
        "stream (failures)",
        streamed.values.load(Ordering::Relaxed),
        streamed.missed.load(Ordering::Relaxed)
    );
    health_lines(&mut out, &agent.system_health());
    out
}

/// What the demo's stream subscriber saw.
#[derive(Default)]
pub(crate) struct StreamCounts {
    values: AtomicU64,
    missed: AtomicU64,
}

/// Subscribes to every failure and counts what arrives, as a task on
/// `runtime`, as an application's async task would.
pub(crate) fn watch_failures(
    runtime: &tokio::runtime::Handle,
    agent: &Agent,
    counts: Arc<StreamCounts>,
) -> tokio::task::JoinHandle<()> {
    let filter = MetricFilter::default().name_prefix(format!("{}.failure", workload::OPERATION));
    let mut stream = agent.metrics_stream(filter);
    runtime.spawn(async move {
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Metric(_) => counts.values.fetch_add(1, Ordering::Relaxed),
                StreamEvent::Lagged { missed } => {
                    counts.missed.fetch_add(missed, Ordering::Relaxed)
                }
            };
        }
    })
}

/// A duration in milliseconds, for the summary's columns.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
