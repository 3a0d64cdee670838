//! `metrics-agent`: the demo application of the metrics facade.
//!
//! It chooses its backends from the environment (in-memory by default; StatsD;
//! or both through a `Fanout`), samples system resources into them, runs a
//! small workload written against the protocol traits only (as a library
//! would be), prints a live summary every few seconds, and a final export on
//! Ctrl-C or after `--duration`.
//!
//! Environment: `METRICS_BACKEND=memory|statsd|both`, `METRICS_STATSD_ADDR`
//! (default 127.0.0.1:8125), `METRICS_STATSD_FLAVOR` (dogstatsd, etsy, none),
//! `METRICS_PREFIX`, `METRICS_COMMON_TAGS=k=v,k2=v2`,
//! `METRICS_SYSTEM_SAMPLING=on|off`.

mod workload;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use metrics_memory::MemoryMetrics;
use metrics_protocol::{
    ExportFormat, Fanout, MetricCollector, MetricType, MetricsAggregator, MetricsError,
    PerformanceTimer, ResourceMonitor, SuccessFailureTracker,
};
use metrics_statsd::{StatsdConfig, StatsdMetrics};
use metrics_system::SystemMonitor;

#[derive(Parser)]
#[command(about = "Run a workload through the metrics facade and watch it live")]
struct Args {
    /// Stop after this long (e.g. 10s, 500ms, 2m); default: run until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Seconds between two live summaries.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    report_every: Duration,
    /// Format of the final export (json, csv, prometheus, openmetrics).
    #[arg(long, default_value = "prometheus")]
    format: ExportFormat,
    /// Workload threads.
    #[arg(long, default_value_t = 3)]
    workers: usize,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// The backends chosen at start-up.
struct Backends {
    memory: Option<Arc<MemoryMetrics>>,
    statsd: Option<Arc<StatsdMetrics>>,
    collector: Arc<dyn MetricCollector>,
    tracker: Arc<dyn SuccessFailureTracker>,
}

/// Success and failure counts sent to every backend that tracks them.
struct Trackers(Vec<Arc<dyn SuccessFailureTracker>>);

impl SuccessFailureTracker for Trackers {
    fn record_success<'a>(&self, op: &'a str, meta: metrics_protocol::Tags<'a>) {
        self.0.iter().for_each(|t| t.record_success(op, meta));
    }
    fn record_failure<'a>(&self, op: &'a str, err: &'a str, meta: metrics_protocol::Tags<'a>) {
        self.0.iter().for_each(|t| t.record_failure(op, err, meta));
    }
    fn get_success_rate(&self, op: &str, w: Option<Duration>) -> Result<f64, MetricsError> {
        let first = self.0.first().ok_or(MetricsError::NoData(op.to_owned()))?;
        first.get_success_rate(op, w)
    }
    fn get_failure_breakdown(
        &self,
        op: &str,
        w: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        let first = self.0.first().ok_or(MetricsError::NoData(op.to_owned()))?;
        first.get_failure_breakdown(op, w)
    }
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn build() -> Result<Backends, MetricsError> {
    let choice = env("METRICS_BACKEND").unwrap_or_else(|| "memory".into());
    let (use_memory, use_statsd) = match choice.trim().to_ascii_lowercase().as_str() {
        "memory" => (true, false),
        "statsd" => (false, true),
        "both" => (true, true),
        other => {
            return Err(MetricsError::config(
                "METRICS_BACKEND",
                other,
                "expected memory, statsd or both",
            ));
        }
    };
    let memory = use_memory.then(|| Arc::new(MemoryMetrics::new()));
    let statsd = if use_statsd {
        let mut common_tags = BTreeMap::new();
        if let Some(tags) = env("METRICS_COMMON_TAGS") {
            for pair in tags.split(',') {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    MetricsError::config(
                        "METRICS_COMMON_TAGS",
                        &tags,
                        format!("`{pair}` is not k=v"),
                    )
                })?;
                common_tags.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let flavor = match env("METRICS_STATSD_FLAVOR") {
            Some(f) => f.parse()?,
            None => StatsdConfig::default().flavor,
        };
        Some(Arc::new(StatsdMetrics::new(StatsdConfig {
            addr: env("METRICS_STATSD_ADDR").unwrap_or_else(|| "127.0.0.1:8125".into()),
            prefix: env("METRICS_PREFIX").unwrap_or_default(),
            common_tags,
            flavor,
            ..Default::default()
        })?))
    } else {
        None
    };
    let mut collectors: Vec<Arc<dyn MetricCollector>> = Vec::new();
    let mut trackers: Vec<Arc<dyn SuccessFailureTracker>> = Vec::new();
    if let Some(m) = &memory {
        collectors.push(m.clone());
        trackers.push(m.clone());
    }
    if let Some(s) = &statsd {
        collectors.push(s.clone());
        trackers.push(s.clone());
    }
    Ok(Backends {
        memory,
        statsd,
        collector: Arc::new(Fanout::new(collectors)),
        tracker: Arc::new(Trackers(trackers)),
    })
}

fn summary(b: &Backends, started: Instant) {
    println!("\n--- {:.0?} ---", started.elapsed());
    if let Some(m) = &b.memory {
        let window = Some(Duration::from_secs(300));
        match m.get_timing_stats(workload::LATENCY, window) {
            Ok(t) => println!(
                "{:<28} n={:<7} p50={:>7.2}ms p95={:>7.2}ms p99={:>7.2}ms max={:>7.2}ms",
                workload::LATENCY,
                t.count,
                t.p50,
                t.p95,
                t.p99,
                t.max
            ),
            Err(e) => println!("{:<28} {e}", workload::LATENCY),
        }
        if let Ok(rate) = m.get_success_rate(workload::OPERATION, window) {
            let failures = m
                .get_failure_breakdown(workload::OPERATION, window)
                .unwrap_or_default();
            println!(
                "{:<28} {:.1}% ok, failures {failures:?}",
                "success rate (5 m)",
                rate * 100.0
            );
        }
        if let Ok(top) = m.get_top_metrics(MetricType::Counter, 4) {
            for v in top {
                println!("{:<28} {:>10} {:?}", v.name, v.value, v.tags);
            }
        }
        // The untagged series: the whole machine, and this process.
        if let Some(cpu) = m.gauge_value("system.cpu.utilization", &[]) {
            println!("{:<28} {:.1}%", "system cpu", cpu * 100.0);
        }
        if let Some(rss) = m.gauge_value("process.memory.usage", &[]) {
            println!("{:<28} {:.1} MiB", "process rss", rss / 1048576.0);
        }
    }
    for h in b.collector.health() {
        println!(
            "health {:<8} {:<9} dropped {:?} {}",
            h.name,
            h.status.to_string(),
            h.dropped,
            h.details
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backends = match build() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let sampling = !matches!(
        env("METRICS_SYSTEM_SAMPLING").as_deref(),
        Some("off" | "false" | "0")
    );
    let monitor = if sampling {
        match SystemMonitor::with_collector(backends.collector.clone()) {
            Ok(m) => match m.start_resource_monitoring(Duration::from_secs(1)) {
                Ok(()) => Some(m),
                Err(e) => {
                    eprintln!("warning: system sampling not started: {e}");
                    None
                }
            },
            Err(e) => {
                eprintln!("warning: system sampling not available: {e}");
                None
            }
        }
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)) {
            eprintln!("warning: Ctrl-C handler not installed: {e}");
        }
    }
    let names: Vec<&str> = [
        ("memory", backends.memory.is_some()),
        ("statsd", backends.statsd.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect();
    println!(
        "metrics-agent: backends {}, system sampling {}, {} workers, {}",
        names.join(" + "),
        if monitor.is_some() { "on" } else { "off" },
        args.workers,
        args.duration
            .map(|d| format!("running {d:?}"))
            .unwrap_or_else(|| "Ctrl-C to stop".into())
    );
    let workers = workload::start(
        args.workers,
        backends.collector.clone(),
        backends.tracker.clone(),
        stop.clone(),
    );
    let started = Instant::now();
    let mut next_report = started + args.report_every;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::SeqCst);
        }
        if Instant::now() >= next_report {
            summary(&backends, started);
            next_report += args.report_every;
        }
    }
    for w in workers {
        let _ = w.join();
    }
    if let Some(m) = &monitor {
        m.stop_resource_monitoring();
    }
    summary(&backends, started);
    let mut status = ExitCode::SUCCESS;
    if let Some(m) = &backends.memory {
        match m.export_metrics(args.format) {
            Ok(text) => println!("\n--- final export ({}) ---\n{text}", args.format),
            Err(e) => {
                eprintln!("error: export failed: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    if let Some(s) = &backends.statsd {
        if let Err(e) = s.shutdown() {
            eprintln!("error: StatsD shutdown: {e}");
            status = ExitCode::from(1);
        }
    }
    status
}
