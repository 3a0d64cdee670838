//! Code nobody here wrote: the published `metrics-process` crate reports
//! this process through the `metrics` macros (`describe_*!`, `gauge!().set`,
//! `counter!().absolute`); through the bridge its values land in our memory
//! backend and agree with our system backend's reading of the same process.
//!
//! One test in its own binary, so no other test's threads move the counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_bridge::Recorder;
use metrics_kit::layers::Fanout;
use metrics_memory::MemoryMetrics;
use metrics_protocol::app::ResourceMonitor;
use metrics_protocol::testing::Capture;
use metrics_protocol::{MetricCollector, MetricType, MetricUnit};
use metrics_system::SystemMonitor;

/// The last description `capture` got for `name`: kind, unit, text.
fn description_of(
    capture: &Capture,
    name: &str,
) -> Option<(MetricType, Option<MetricUnit>, String)> {
    capture
        .descriptions()
        .into_iter()
        .rev()
        .find(|d| d.name == name)
        .map(|d| (d.kind, d.unit, d.help))
}

/// Spends CPU until the process has used at least `secs` CPU seconds as
/// metrics-process reports them (bounded by a generous wall-clock limit).
fn burn_cpu_until(memory: &MemoryMetrics, recorder: &Recorder, secs: f64) -> f64 {
    let collector = metrics_process::Collector::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut x = 1u64;
    loop {
        recorder.in_scope(|| collector.collect());
        let cpu = memory
            .counter_value("process_cpu_seconds_total", &[])
            .unwrap_or(0.0);
        if cpu >= secs || Instant::now() > deadline {
            return cpu;
        }
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

#[test]
fn metrics_process_values_agree_with_the_system_backend() {
    let memory = Arc::new(MemoryMetrics::new());
    let described = Capture::new();
    let recorder = Recorder::new(Arc::new(Fanout::new(vec![
        memory.clone(),
        described.clone(),
    ])));
    let process = metrics_process::Collector::default();
    recorder.in_scope(|| {
        process.describe();
        process.collect();
    });
    let ours = SystemMonitor::new()
        .and_then(|m| m.process_usage())
        .expect("our reading of this process");

    // Resident memory: both read the kernel's figure a moment apart.
    let rss = memory
        .gauge_value("process_resident_memory_bytes", &[])
        .expect("resident memory recorded through the bridge");
    let ours_rss = ours.rss_bytes as f64;
    let tolerance = (ours_rss * 0.2).max(8.0 * 1024.0 * 1024.0);
    assert!(
        (rss - ours_rss).abs() <= tolerance,
        "metrics-process {rss} bytes vs ours {ours_rss} bytes"
    );

    // Threads: this binary runs one test, so the count holds still.
    let threads = memory
        .gauge_value("process_threads", &[])
        .expect("threads recorded through the bridge");
    let ours_threads = ours.threads.expect("thread count on this OS") as f64;
    assert!(
        (threads - ours_threads).abs() <= 1.0,
        "metrics-process {threads} threads vs ours {ours_threads}"
    );

    // `describe_*!` reached the collector with kind, unit and text.
    let (kind, unit, text) = description_of(&described, "process_resident_memory_bytes")
        .expect("resident memory described");
    assert_eq!((kind, unit), (MetricType::Gauge, Some(MetricUnit::Bytes)));
    assert!(!text.is_empty());
    let (kind, unit, _) =
        description_of(&described, "process_cpu_seconds_total").expect("cpu seconds described");
    assert_eq!(
        (kind, unit),
        (MetricType::Counter, Some(MetricUnit::Seconds))
    );

    // `counter!().absolute()` on every collect: the total follows the
    // process's CPU seconds instead of adding them up. A fresh backend
    // collecting once afterwards reads at least as much.
    let cpu = burn_cpu_until(&memory, &recorder, 1.0);
    assert!(cpu >= 1.0, "no CPU second used within the time limit");
    for _ in 0..5 {
        recorder.in_scope(|| process.collect());
    }
    let repeated = memory
        .counter_value("process_cpu_seconds_total", &[])
        .expect("cpu seconds recorded");
    let fresh = Arc::new(MemoryMetrics::new());
    Recorder::new(fresh.clone()).in_scope(|| process.collect());
    let once = fresh
        .counter_value("process_cpu_seconds_total", &[])
        .expect("cpu seconds recorded once");
    assert!(
        repeated <= once && once - repeated <= 1.0,
        "after repeated collects {repeated}, a single collect {once}"
    );
    assert_eq!(memory.health()[0].total_dropped(), 0);
}
