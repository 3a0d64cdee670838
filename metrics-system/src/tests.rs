//! Readings against the OS, the poller's lifecycle, and what is published.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_protocol::app::ResourceMonitor;
use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{MetricCollector, MetricsError, MockMetricCollector};
use parking_lot::Mutex;

use crate::names;
use crate::poller::THREAD_NAME;
use crate::{MIN_INTERVAL, SystemMonitor};

/// Tests that count poller threads of this process run one at a time.
static THREADS: Mutex<()> = Mutex::new(());

/// Bounded wait for a condition, polled every 10 ms.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poller threads alive in this process (Linux: `/proc/self/task/*/comm`).
#[cfg(target_os = "linux")]
fn poller_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == THREAD_NAME)
        .count()
}

/// One recorded gauge: name, value, tags.
type Recorded = (String, f64, Vec<(String, String)>);

/// The simplest collector that can fail: it keeps every gauge and counter
/// measurement, and panics on any other kind.
#[derive(Default)]
struct Capture {
    gauges: Mutex<Vec<Recorded>>,
    counters: Mutex<Vec<Recorded>>,
    /// Panics on this many first calls (to test that the poller survives).
    panics_left: Mutex<u32>,
}

impl Capture {
    fn names(&self) -> Vec<String> {
        self.gauges.lock().iter().map(|g| g.0.clone()).collect()
    }
    fn count(&self) -> usize {
        self.gauges.lock().len()
    }
    fn find(&self, name: &str, tag: (&str, &str)) -> Option<f64> {
        self.gauges
            .lock()
            .iter()
            .rev()
            .find(|g| g.0 == name && g.2.iter().any(|t| t.0 == tag.0 && t.1 == tag.1))
            .map(|g| g.1)
    }
}

/// Owned tags of a measurement, in the order given.
fn owned_tags(m: &Measurement<'_>) -> Vec<(String, String)> {
    m.key()
        .tags()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl MetricCollector for Capture {
    fn record(&self, m: &Measurement<'_>) {
        let name = m.key().name();
        match m.value() {
            Value::Counter(value) => {
                assert!(
                    name.starts_with("system.network."),
                    "unexpected counter {name}"
                );
                self.counters
                    .lock()
                    .push((name.to_owned(), value, owned_tags(m)));
            }
            Value::Gauge(value) => {
                {
                    let mut left = self.panics_left.lock();
                    if *left > 0 {
                        *left -= 1;
                        panic!("collector failure on purpose");
                    }
                }
                self.gauges
                    .lock()
                    .push((name.to_owned(), value, owned_tags(m)));
            }
            other => panic!("unexpected {other:?} into {name}"),
        }
    }
}

#[test]
fn memory_reading_is_consistent() {
    let m = SystemMonitor::new().unwrap().memory_usage().unwrap();
    assert!(m.total_bytes > 0);
    assert_eq!(m.used_bytes + m.available_bytes, m.total_bytes);
    assert!(m.free_bytes <= m.total_bytes);
    assert!(m.swap_used_bytes <= m.swap_total_bytes);
    let expect = m.used_bytes as f64 / m.total_bytes as f64 * 100.0;
    assert!((m.percent - expect).abs() < 1e-9);
}

#[test]
fn cpu_reading_is_consistent() {
    let monitor = SystemMonitor::new().unwrap();
    let cpu = monitor.cpu_usage().unwrap();
    assert!(cpu.logical_cores > 0);
    assert_eq!(cpu.per_core_percent.len(), cpu.logical_cores);
    assert!((0.0..=100.0).contains(&cpu.percent));
    assert!(
        cpu.per_core_percent
            .iter()
            .all(|p| (0.0..=100.0).contains(p))
    );
    if let Some(physical) = cpu.physical_cores {
        assert!(physical <= cpu.logical_cores);
    }
    #[cfg(target_os = "linux")]
    assert!(cpu.load_average.is_some(), "Linux has /proc/loadavg");
}

#[test]
fn this_process_cpu_percent_is_known_from_the_first_reading() {
    let monitor = SystemMonitor::new().unwrap();
    let p = monitor.process_usage().unwrap();
    assert_eq!(p.pid, std::process::id());
    assert!(p.cpu_percent.is_some_and(|c| c >= 0.0));
    assert!(p.rss_bytes > 0);
    assert!(p.virtual_bytes >= p.rss_bytes);
    #[cfg(target_os = "linux")]
    assert!(p.threads.is_some_and(|t| t >= 1));
}

#[test]
fn disk_of_a_path_is_its_mount_and_a_missing_path_is_not_found() {
    let monitor = SystemMonitor::new().unwrap();
    let root = monitor.disk_usage(Path::new("/")).unwrap();
    assert_eq!(root.mount_point, "/");
    assert!(root.total_bytes > 0);
    assert!(root.used_bytes + root.free_bytes <= root.total_bytes);
    let here = monitor.disk_usage(Path::new(".")).unwrap();
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    assert!(cwd.starts_with(&here.mount_point));

    let missing = Path::new("/definitely/not/here/metrics-system");
    match monitor.disk_usage(missing) {
        Err(MetricsError::NotFound(msg)) => assert!(msg.contains("/definitely/not/here")),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn all_disks_include_the_root_file_system() {
    let monitor = SystemMonitor::new().unwrap();
    let disks = monitor.all_disk_usage().unwrap();
    assert!(
        disks.iter().any(|d| d.mount_point == "/"),
        "no `/` in {disks:?}"
    );
    for d in &disks {
        assert!((0.0..=100.0).contains(&d.percent), "{d:?}");
    }
}

#[test]
fn network_totals_are_the_sum_of_the_interfaces() {
    let n = SystemMonitor::new().unwrap().network_stats().unwrap();
    let sum: u64 = n.interfaces.iter().map(|i| i.bytes_received).sum();
    assert_eq!(n.bytes_received, sum);
    let sum: u64 = n.interfaces.iter().map(|i| i.packets_sent).sum();
    assert_eq!(n.packets_sent, sum);
    #[cfg(target_os = "linux")]
    assert!(n.interfaces.iter().any(|i| i.name == "lo"), "{n:?}");
}

#[test]
fn snapshot_serialises_with_the_documented_top_level_keys() {
    let snap = SystemMonitor::new().unwrap().snapshot().unwrap();
    let json = serde_json::to_value(&snap).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["memory", "cpu", "disk", "disks", "network", "process"] {
        assert!(keys.contains(&key), "missing {key} in {keys:?}");
    }
    assert_eq!(json["disk"]["mount_point"], "/");
    assert!(json["process"]["uptime"].is_number());
}

#[test]
fn intervals_below_the_minimum_are_rejected_with_a_clear_error() {
    let monitor = SystemMonitor::new().unwrap();
    let err = monitor
        .start_resource_monitoring(MIN_INTERVAL - Duration::from_millis(1))
        .unwrap_err();
    assert!(matches!(&err, MetricsError::InvalidArgument(m) if m.contains("minimum")));
    assert!(!monitor.is_monitoring());
    assert!(MIN_INTERVAL >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
}

#[test]
fn publish_once_records_the_documented_names_into_a_mock() {
    let seen = Arc::new(Mutex::new(
        Vec::<(String, f64, Vec<(String, String)>)>::new(),
    ));
    let mut mock = MockMetricCollector::new();
    let sink = Arc::clone(&seen);
    mock.expect_record()
        .withf(|m| matches!(m.value(), Value::Gauge(_)))
        .returning(move |m| {
            sink.lock()
                .push((m.key().name().to_owned(), m.value().as_f64(), owned_tags(m)));
        });
    let counters = Arc::new(Mutex::new(
        Vec::<(String, f64, Vec<(String, String)>)>::new(),
    ));
    let sink = Arc::clone(&counters);
    mock.expect_record()
        .withf(|m| matches!(m.value(), Value::Counter(_)))
        .returning(move |m| {
            sink.lock()
                .push((m.key().name().to_owned(), m.value().as_f64(), owned_tags(m)));
        });
    // Any other kind of measurement matches no expectation and fails the
    // test; nothing published may be refused (a bad name, tag or value).
    mock.expect_reject().never();

    let monitor = SystemMonitor::with_collector(Arc::new(mock)).unwrap();
    monitor.publish_once().unwrap();

    let seen = seen.lock();
    let has = |name: &str, tag: Option<(&str, &str)>| {
        seen.iter().any(|(n, _, tags)| {
            n == name && tag.is_none_or(|(k, v)| tags.iter().any(|t| t.0 == k && t.1 == v))
        })
    };
    for name in seen.iter().map(|g| g.0.as_str()) {
        assert!(names::ALL.contains(&name), "undocumented name {name}");
    }
    assert!(has(names::MEMORY_USAGE, Some(("state", "used"))));
    assert!(has(names::MEMORY_USAGE, Some(("state", "free"))));
    assert!(has(names::MEMORY_UTILIZATION, Some(("state", "used"))));
    assert!(has(names::CPU_UTILIZATION, None));
    assert!(has(names::CPU_UTILIZATION, Some(("cpu", "0"))));
    assert!(has(names::CPU_LOGICAL_CORES, None));
    assert!(has(names::FILESYSTEM_USAGE, Some(("mountpoint", "/"))));
    assert!(has(
        names::FILESYSTEM_UTILIZATION,
        Some(("mountpoint", "/"))
    ));
    // The network totals are counters; the first poll is their baseline.
    {
        let counters = counters.lock();
        let has_counter = |name: &str, tag: (&str, &str)| {
            counters
                .iter()
                .any(|(n, _, tags)| n == name && tags.iter().any(|t| t.0 == tag.0 && t.1 == tag.1))
        };
        assert!(has_counter(names::NETWORK_IO, ("direction", "receive")));
        assert!(has_counter(
            names::NETWORK_PACKETS,
            ("direction", "transmit")
        ));
        assert!(has_counter(
            names::NETWORK_ERRORS,
            ("direction", "transmit")
        ));
        #[cfg(target_os = "linux")]
        assert!(has_counter(names::NETWORK_IO, ("device", "lo")));
        for (n, v, _) in counters.iter() {
            assert!(names::ALL.contains(&n.as_str()), "undocumented name {n}");
            assert_eq!(*v, 0.0, "{n}: the first poll adds nothing");
        }
    }
    assert!(
        !has(names::NETWORK_IO, None),
        "network totals are not gauges"
    );
    assert!(has(names::PROCESS_MEMORY_USAGE, None));
    assert!(has(names::PROCESS_CPU_UTILIZATION, None));
    assert!(has(names::PROCESS_UPTIME, None));
    #[cfg(target_os = "linux")]
    {
        assert!(has(names::PROCESS_THREADS, None));
        assert!(has(names::CPU_LOAD_1M, None));
    }
    // Utilisations are 0..1 ratios, sizes are bytes.
    for (n, v, _) in seen.iter() {
        if n.ends_with(".utilization") {
            assert!((0.0..=1.0).contains(v), "{n} = {v}");
        }
    }
    let total = seen
        .iter()
        .find(|g| g.0 == names::MEMORY_LIMIT)
        .map(|g| g.1)
        .unwrap();
    assert!(total > 1024.0 * 1024.0, "memory limit in bytes: {total}");
}

#[test]
fn poller_publishes_into_a_collector_until_stopped() {
    let _one = THREADS.lock();
    let capture = Arc::new(Capture::default());
    let monitor = SystemMonitor::with_collector(capture.clone()).unwrap();
    assert!(!monitor.is_monitoring());
    monitor.start_resource_monitoring(MIN_INTERVAL).unwrap();
    assert!(monitor.is_monitoring());
    // Two polls: the first at start, the second one interval later.
    eventually("two polls", || monitor.poll_stats().polls >= 2);
    eventually("a process gauge", || {
        capture
            .names()
            .iter()
            .any(|n| n == names::PROCESS_MEMORY_USAGE)
    });
    assert!(
        capture
            .find(names::MEMORY_USAGE, (names::TAG_STATE, names::STATE_USED))
            .is_some_and(|v| v > 0.0)
    );
    // Network totals arrive as amounts added to counters, never negative.
    {
        let counters = capture.counters.lock();
        assert!(counters.iter().any(|c| c.0 == names::NETWORK_IO));
        assert!(counters.iter().all(|c| c.1 >= 0.0), "{counters:?}");
    }

    monitor.stop_resource_monitoring();
    assert!(!monitor.is_monitoring());
    assert_eq!(monitor.shared_owners(), 1, "stop joins the thread");
    #[cfg(target_os = "linux")]
    assert_eq!(poller_threads(), 0, "stop joins the thread");
    let after_stop = (capture.count(), monitor.poll_stats());
    // Stopping twice is harmless; a stopped monitor can start again.
    monitor.stop_resource_monitoring();
    assert_eq!((capture.count(), monitor.poll_stats()), after_stop);
    monitor.start_resource_monitoring(MIN_INTERVAL).unwrap();
    eventually("a poll after restart", || {
        monitor.poll_stats().polls > after_stop.1.polls
    });
    monitor.stop_resource_monitoring();
    assert_eq!(monitor.poll_stats().panics, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn starting_twice_runs_one_poller() {
    let _one = THREADS.lock();
    let monitor = SystemMonitor::new().unwrap();
    monitor
        .start_resource_monitoring(Duration::from_secs(3600))
        .unwrap();
    monitor
        .start_resource_monitoring(Duration::from_secs(3600))
        .unwrap();
    // The monitor and exactly one poller thread own the shared state.
    assert_eq!(monitor.shared_owners(), 2);
    // The second start did not restart it: only the immediate first poll ran.
    eventually("the first poll", || monitor.poll_stats().polls == 1);
    assert_eq!(poller_threads(), 1);
    assert_eq!(monitor.poll_stats().polls, 1);
    monitor.stop_resource_monitoring();
    assert_eq!(monitor.shared_owners(), 1);
    assert_eq!(poller_threads(), 0);
}

#[test]
fn stop_wakes_a_poller_sleeping_a_long_interval() {
    let _one = THREADS.lock();
    let monitor = SystemMonitor::new().unwrap();
    monitor
        .start_resource_monitoring(Duration::from_secs(3600))
        .unwrap();
    eventually("the first poll", || monitor.poll_stats().polls == 1);
    // Would block for an hour if stop waited for the sleep to end.
    monitor.stop_resource_monitoring();
    assert!(!monitor.is_monitoring());
}

#[test]
fn drop_stops_and_joins_the_poller() {
    let _one = THREADS.lock();
    let capture = Arc::new(Capture::default());
    let monitor = SystemMonitor::with_collector(capture.clone()).unwrap();
    monitor
        .start_resource_monitoring(Duration::from_secs(3600))
        .unwrap();
    eventually("the first poll", || capture.count() > 0);
    drop(monitor);
    // The thread held the last other reference to the collector.
    assert_eq!(Arc::strong_count(&capture), 1);
    #[cfg(target_os = "linux")]
    assert_eq!(poller_threads(), 0);
}

#[test]
fn a_panicking_poll_is_counted_and_later_polls_still_publish() {
    let _one = THREADS.lock();
    let capture = Arc::new(Capture::default());
    *capture.panics_left.lock() = 1;
    let monitor = SystemMonitor::with_collector(capture.clone()).unwrap();
    monitor.start_resource_monitoring(MIN_INTERVAL).unwrap();
    eventually("a poll after the panic", || {
        monitor.poll_stats().panics == 1 && capture.count() > 0
    });
    assert!(monitor.is_monitoring(), "the poller survived the panic");
    monitor.stop_resource_monitoring();
}

#[test]
fn busy_work_in_this_process_shows_in_its_cpu_percent() {
    let monitor = SystemMonitor::new().unwrap();
    monitor.process_usage().unwrap();
    // Spin until the kernel has charged this process some CPU time and a
    // full minimum span has passed, then read again.
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < crate::readings::CPU_MIN_SPAN * 2 {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    let p = monitor.process_usage().unwrap();
    assert!(p.cpu_percent.is_some_and(|c| c > 0.0), "{p:?}");
}

/// A monitor built on an application's handle publishes through it, and
/// describes what it publishes there first.
#[test]
fn with_metrics_describes_and_publishes_through_the_handle() {
    use metrics_protocol::{MetricType, MetricUnit};
    let capture = metrics_protocol::testing::Capture::new();
    let monitor = SystemMonitor::with_metrics(capture.metrics()).unwrap();
    let described = capture.descriptions();
    let process_memory = described
        .iter()
        .find(|d| d.name == names::PROCESS_MEMORY_USAGE)
        .expect("process memory described");
    assert_eq!(process_memory.kind, MetricType::Gauge);
    assert_eq!(process_memory.unit, Some(MetricUnit::Bytes));
    let network = described
        .iter()
        .find(|d| d.name == names::NETWORK_IO)
        .expect("network bytes described");
    assert_eq!(network.kind, MetricType::Counter);
    assert!(capture.records().is_empty(), "nothing published yet");

    // A failed reading (no CPU statistics here) still publishes the rest.
    let _ = monitor.publish_once();
    let limit = capture
        .gauge(names::MEMORY_LIMIT, &[])
        .expect("memory limit");
    assert!(limit > 1024.0 * 1024.0, "memory limit in bytes: {limit}");
    let used = capture
        .gauge(
            names::MEMORY_USAGE,
            &[(names::TAG_STATE, names::STATE_USED)],
        )
        .expect("memory used");
    assert!(used > 0.0 && used <= limit);
    assert!(capture.gauge(names::PROCESS_UPTIME, &[]).is_some());
    assert_eq!(capture.health()[0].total_dropped(), 0);
}

/// Sizes and durations are described with their units, so an exporter
/// names them in base units (`_bytes`, `_seconds`) with the help text.
#[test]
fn published_sizes_and_durations_carry_their_units() {
    use metrics_exposition::{ExportFormat, Exporter};
    let memory = Arc::new(metrics_memory::MemoryMetrics::new());
    let exporter = Exporter::new(memory.clone());
    let monitor = SystemMonitor::with_collector(memory.clone()).unwrap();
    // A failed reading (no CPU statistics here) still publishes the rest.
    let _ = monitor.publish_once();
    let text = exporter.export(ExportFormat::OpenMetrics).unwrap();
    for want in [
        "# TYPE process_memory_usage_bytes gauge",
        "# UNIT process_memory_usage_bytes bytes",
        "# HELP process_memory_usage_bytes Resident set size of this process",
        "# TYPE process_uptime_seconds gauge",
        "# TYPE system_memory_limit_bytes gauge",
        "# TYPE system_network_io_bytes counter",
        "# UNIT system_network_io_bytes bytes",
        "# TYPE system_network_packets counter",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    #[cfg(target_os = "linux")]
    {
        let prom = exporter.export(ExportFormat::Prometheus).unwrap();
        assert!(prom.contains("# TYPE process_threads gauge\n"), "{prom}");
        assert!(prom.contains("\nprocess_threads "), "{prom}");
        assert!(
            prom.contains("# TYPE system_network_io_bytes_total counter\n"),
            "{prom}"
        );
        assert!(!prom.contains("_value"), "a stray _value suffix in\n{prom}");
    }
}

#[cfg(all(feature = "tokio", target_os = "linux"))]
#[test]
fn on_a_runtime_the_poller_is_a_task_and_no_thread() {
    let _one = THREADS.lock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let capture = Arc::new(Capture::default());
    let monitor = SystemMonitor::with_collector(capture.clone()).unwrap();
    monitor.poll_on(runtime.handle().clone());
    monitor.start_resource_monitoring(MIN_INTERVAL).unwrap();
    assert!(monitor.is_monitoring());
    eventually("two polls", || monitor.poll_stats().polls >= 2);
    assert_eq!(poller_threads(), 0, "no thread of the monitor's own");
    assert!(
        capture
            .find(names::MEMORY_USAGE, (names::TAG_STATE, names::STATE_USED))
            .is_some_and(|v| v > 0.0)
    );
    // Starting again while it runs keeps the one task.
    monitor.start_resource_monitoring(MIN_INTERVAL).unwrap();
    monitor.stop_resource_monitoring();
    assert!(!monitor.is_monitoring());
    eventually("the aborted task let go of the monitor", || {
        monitor.shared_owners() == 1
    });
    let stopped = monitor.poll_stats().polls;
    std::thread::sleep(MIN_INTERVAL * 2);
    assert_eq!(monitor.poll_stats().polls, stopped, "no poll after stop");
    assert_eq!(monitor.poll_stats().panics, 0);
}
