//! Cost of one full poll-and-publish (`SystemMonitor::publish_once`): every
//! reading refreshed and every gauge recorded, into the no-op collector and
//! into the in-memory backend.
//!
//! Run: `cargo bench -p metrics-system --bench poll`. Kept short (1 s warm-up,
//! 3 s measurement): the machine is shared with other builds, so figures are
//! noisy; compare rows of one run.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_memory::MemoryMetrics;
use metrics_protocol::app::ResourceMonitor;
use metrics_protocol::{MetricCollector, NoopMetrics};
use metrics_system::SystemMonitor;

fn monitor(collector: Arc<dyn MetricCollector>) -> SystemMonitor {
    let m = SystemMonitor::with_collector(collector).expect("sysinfo");
    // Past the first-call CPU wait, so it is not measured.
    m.publish_once().expect("first poll");
    m
}

fn poll(c: &mut Criterion) {
    let mut g = c.benchmark_group("poll");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    let noop = monitor(Arc::new(NoopMetrics));
    g.bench_function("publish_once/noop", |b| {
        b.iter(|| noop.publish_once().expect("poll"))
    });
    let memory = monitor(Arc::new(MemoryMetrics::new()));
    g.bench_function("publish_once/memory", |b| {
        b.iter(|| memory.publish_once().expect("poll"))
    });

    // The parts, to see where a poll's time goes.
    g.bench_function("read/memory", |b| {
        b.iter(|| black_box(noop.memory_usage().expect("memory")))
    });
    g.bench_function("read/cpu", |b| {
        b.iter(|| black_box(noop.cpu_usage().expect("cpu")))
    });
    g.bench_function("read/all_disks", |b| {
        b.iter(|| black_box(noop.all_disk_usage().expect("disks")))
    });
    g.bench_function("read/disk_of_root", |b| {
        b.iter(|| black_box(noop.disk_usage(Path::new("/")).expect("disk")))
    });
    g.bench_function("read/network", |b| {
        b.iter(|| black_box(noop.network_stats().expect("network")))
    });
    g.bench_function("read/process", |b| {
        b.iter(|| black_box(noop.process_usage().expect("process")))
    });
    g.finish();
}

criterion_group!(benches, poll);
criterion_main!(benches);
