//! The composed system end to end: built from configuration, recording into
//! real backends (StatsD through a real UDP socket), health with failing
//! checks, dashboards, streams, stream aggregation and exports.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use metrics_memory::{Clock, ManualClock};
use metrics_protocol::app::{
    AsyncMetricsSystem, DashboardKind, MetricFilter, MetricsConfig, MetricsSystem, StreamEvent,
};
use metrics_protocol::backend::{DropReason, HealthStatus};
use metrics_protocol::{MetricType, MetricsError};
use metrics_sdk::{
    Agent, AgentConfig, AggFn, AggregateSink, AggregationSpec, BackendChoice, CheckOutcome, FnCheck,
};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(f)
}

fn quiet_memory() -> AgentConfig {
    AgentConfig {
        system_polling: false,
        ..AgentConfig::default()
    }
}

fn manual() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

/// A UDP socket on 127.0.0.1 standing in for the StatsD daemon.
struct Daemon {
    socket: UdpSocket,
}

impl Daemon {
    fn new() -> Daemon {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        Daemon { socket }
    }

    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// Every line received until the socket stays quiet.
    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65_536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            out.extend(text.lines().map(str::to_owned));
        }
        out
    }
}

fn statsd_config(backend: BackendChoice, daemon: &Daemon) -> AgentConfig {
    let mut c = quiet_memory();
    c.backend = backend;
    c.statsd.addr = daemon.addr();
    // Nothing is sent before shutdown: what arrives is what shutdown flushed.
    c.statsd.flush_interval_ms = 3_600_000;
    c
}

#[test]
fn memory_system_answers_queries_and_every_dashboard() {
    let clock = manual();
    let agent = Agent::with_clock(quiet_memory(), clock.clone()).unwrap();
    let (metrics, tracker, queries) = (agent.metrics(), agent.tracker(), agent.aggregator());
    for i in 0..10 {
        metrics.record_counter("http.requests", 1.0, &[("route", "/a")]);
        metrics.record_timer("db.query", Duration::from_millis(10 + i), &[]);
        tracker.record_success("checkout", &[]);
    }
    tracker.record_failure("checkout", "timeout", &[]);
    let out = agent.metrics().time("render", &[], || 7);
    assert_eq!(out, 7);
    let memory = agent.memory().unwrap();
    assert_eq!(
        memory.counter_value("http.requests", &[("route", "/a")]),
        Some(10.0)
    );
    let stats = queries.timing_stats("db.query", None).unwrap();
    assert_eq!((stats.count, stats.max), (10, Duration::from_millis(19)));
    assert_eq!(queries.timing_stats("render", None).unwrap().count, 1);
    let rate = queries.success_rate("checkout", None).unwrap();
    assert!((rate - 10.0 / 11.0).abs() < 1e-9, "{rate}");
    // The timer's success counts too (render).
    assert_eq!(queries.success_rate("render", None).unwrap(), 1.0);
    assert_eq!(
        queries.failure_breakdown("checkout", None).unwrap()["timeout"],
        1
    );
    assert!(
        agent
            .export(metrics_exposition::ExportFormat::Prometheus)
            .unwrap()
            .contains("http_requests")
    );

    for kind in DashboardKind::ALL {
        let d = agent.create_dashboard_data(kind).unwrap();
        assert_eq!(d.kind, kind);
        assert!(!d.panels.is_empty(), "{kind}");
        serde_json::to_string(&d).unwrap();
    }
    let errors = agent.create_dashboard_data(DashboardKind::Errors).unwrap();
    let pie = errors
        .panels
        .iter()
        .find(|p| p.title == "Failures by error type")
        .unwrap();
    assert_eq!(pie.series[0].tags["error_type"], "timeout");
    let perf = agent
        .create_dashboard_data(DashboardKind::Performance)
        .unwrap();
    let pct = perf
        .panels
        .iter()
        .find(|p| p.title == "Latency percentiles")
        .unwrap();
    assert!(pct.series.iter().any(|s| s.label == "db.query p99"));
    assert!("weather".parse::<DashboardKind>().is_err());

    let h = agent.system_health();
    assert!(h.healthy, "{h:#?}");
    assert!(h.backends.iter().any(|b| b.name == "memory"));
    agent.shutdown_metrics().unwrap();
    agent.shutdown_metrics().unwrap();
    assert!(agent.is_shut_down());
}

#[test]
fn statsd_only_shutdown_flushes_everything_through_udp() {
    let daemon = Daemon::new();
    let agent = Agent::new(statsd_config(BackendChoice::Statsd, &daemon)).unwrap();
    let c = agent.metrics();
    for _ in 0..5 {
        c.record_counter("jobs", 1.0, &[("queue", "mail")]);
    }
    c.record_gauge("depth", 3.0, &[]);
    agent.tracker().record_failure("send", "refused", &[]);
    let id = agent.performance_timer().start_timer("op", &[]);
    agent.performance_timer().stop_timer(id, true).unwrap();
    assert!(matches!(
        agent.performance_timer().stop_timer(id, true),
        Err(MetricsError::UnknownTimer(_))
    ));
    // Queries and dashboards need the memory backend.
    assert!(matches!(
        agent.create_dashboard_data(DashboardKind::Overview),
        Err(MetricsError::Unsupported { .. })
    ));
    assert!(matches!(
        agent.aggregator().top_metrics(MetricType::Counter, 3),
        Err(MetricsError::Unsupported { .. })
    ));
    // So do exports: there is no exporter, and each endpoint says why.
    assert!(agent.exporter().is_none());
    assert!(matches!(
        agent.export(metrics_exposition::ExportFormat::Json),
        Err(MetricsError::Unsupported { .. })
    ));
    let out = std::env::temp_dir().join(format!("statsd-only-{}.json", std::process::id()));
    let results = block_on(agent.export_metrics_async(&[out.display().to_string()]));
    assert!(
        results
            .values()
            .all(|r| matches!(r, Err(MetricsError::Unsupported { .. }))),
        "{results:?}"
    );
    assert!(!out.exists());
    agent.shutdown_metrics().unwrap();
    let lines = daemon.lines();
    for want in [
        "jobs:5|c|#queue:mail",
        "depth:3|g",
        "send.failure:1|c|#error_type:refused",
        "op.success:1|c",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("op:") && l.ends_with("|ms")),
        "{lines:?}"
    );
    // Idempotent: nothing more is sent.
    agent.shutdown_metrics().unwrap();
    assert!(daemon.lines().is_empty());
}

#[test]
fn both_backends_see_every_value_and_health_reports_statsd() {
    let daemon = Daemon::new();
    let agent = Agent::new(statsd_config(BackendChoice::Both, &daemon)).unwrap();
    agent.metrics().record_counter("hits", 2.0, &[]);
    assert_eq!(
        agent.memory().unwrap().counter_value("hits", &[]),
        Some(2.0)
    );
    let h = agent.system_health();
    let statsd = h.backends.iter().find(|b| b.name == "statsd").unwrap();
    assert!(statsd.details.contains_key("queue_depth"), "{statsd:?}");
    drop(agent); // the last handle: shuts down and flushes
    assert!(daemon.lines().iter().any(|l| l == "hits:2|c"));
}

#[test]
fn failing_panicking_and_hanging_checks_make_the_system_unhealthy() {
    let mut config = quiet_memory();
    // Long enough for a panicking check to unwind (and print its backtrace)
    // on a loaded machine; the hanging check sleeps far longer.
    config.health.check_timeout_ms = 2_000;
    let agent = Agent::new(config).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    agent.register_health_check(Arc::new(FnCheck::new("db", move || {
        r.fetch_add(1, Ordering::SeqCst);
        CheckOutcome::healthy()
    })));
    assert!(agent.system_health().healthy);
    agent.register_health_check(Arc::new(FnCheck::new("cache", || {
        CheckOutcome::degraded("hit rate 12%")
    })));
    let h = agent.system_health();
    assert_eq!((h.status, h.healthy), (HealthStatus::Degraded, false));
    agent.register_health_check(Arc::new(FnCheck::new("disk", || -> CheckOutcome {
        panic!("statvfs exploded")
    })));
    agent.register_health_check(Arc::new(FnCheck::new("queue", || {
        std::thread::sleep(Duration::from_secs(10));
        CheckOutcome::healthy()
    })));
    let h = agent.system_health();
    assert_eq!(h.status, HealthStatus::Unhealthy);
    let by_name: BTreeMap<_, _> = h.checks.iter().map(|c| (c.name.as_str(), c)).collect();
    assert_eq!(by_name["db"].status, HealthStatus::Healthy);
    assert_eq!(by_name["cache"].status, HealthStatus::Degraded);
    assert_eq!(by_name["disk"].status, HealthStatus::Unhealthy);
    assert!(
        by_name["disk"]
            .message
            .as_deref()
            .unwrap()
            .contains("statvfs exploded")
    );
    assert_eq!(by_name["queue"].status, HealthStatus::Unhealthy);
    assert!(
        by_name["queue"]
            .message
            .as_deref()
            .unwrap()
            .contains("timed out")
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        3,
        "the healthy check ran every time"
    );
}

#[test]
fn error_rate_over_the_window_drives_health() {
    let clock = manual();
    let mut config = quiet_memory();
    config.health.error_rate_window_secs = 60;
    let agent = Agent::with_clock(config, clock.clone()).unwrap();
    let t = agent.tracker();
    for _ in 0..9 {
        t.record_success("pay", &[]);
    }
    t.record_failure("pay", "declined", &[]);
    let h = agent.system_health();
    assert!((h.error_rate - 0.1).abs() < 1e-9);
    assert!(h.healthy, "10% is at the degraded threshold, not past it");
    for _ in 0..5 {
        t.record_failure("pay", "declined", &[]);
    }
    let h = agent.system_health();
    assert_eq!(h.status, HealthStatus::Degraded, "{h:#?}");
    for _ in 0..20 {
        t.record_failure("pay", "declined", &[]);
    }
    assert_eq!(agent.system_health().status, HealthStatus::Unhealthy);
    // The failures age out of the window.
    clock.advance(Duration::from_secs(120));
    let h = agent.system_health();
    assert_eq!((h.error_rate, h.healthy), (0.0, true));
}

#[test]
fn a_slow_subscriber_loses_the_oldest_values_and_is_told() {
    let mut config = quiet_memory();
    config.stream_buffer = 4;
    let agent = Agent::new(config).unwrap();
    let slow = agent.metrics_stream(MetricFilter::default().name_prefix("req"));
    let mut outcomes = agent.metrics_stream(MetricFilter::default().name_prefix("pay."));
    let c = agent.metrics();
    for i in 0..100 {
        c.record_counter("req", f64::from(i), &[]);
        c.record_counter("other", 1.0, &[]);
    }
    agent
        .tracker()
        .record_failure("pay", "declined", &[("region", "eu")]);
    // Recording was never held up: memory has every value.
    assert_eq!(
        agent.memory().unwrap().counter_value("req", &[]),
        Some(4950.0)
    );
    agent.shutdown_metrics().unwrap();
    let events: Vec<StreamEvent> = block_on(slow.collect());
    assert_eq!(events[0], StreamEvent::Lagged { missed: 96 });
    let values: Vec<f64> = events[1..]
        .iter()
        .map(|e| match e {
            StreamEvent::Metric(v) => v.value,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, vec![96.0, 97.0, 98.0, 99.0]);
    let first = block_on(outcomes.next()).unwrap();
    let StreamEvent::Metric(v) = first else {
        panic!("{first:?}")
    };
    assert_eq!(v.name, "pay.failure");
    assert_eq!(v.tags["error_type"], "declined");
    assert_eq!(v.tags["region"], "eu");
    let h = agent.system_health();
    let stream = h.backends.iter().find(|b| b.name == "stream").unwrap();
    assert_eq!(stream.details["missed"], 96.0);
}

#[test]
fn time_batches_aggregate_into_the_agent_and_the_partial_batch_flushes() {
    let clock = manual();
    // Start on a batch boundary so the test reads simply.
    clock.set(1_700_000_000_000 / 10_000 * 10_000);
    let agent = Agent::with_clock(quiet_memory(), clock.clone()).unwrap();
    let spec = AggregationSpec::time("latency", Duration::from_secs(10))
        .functions(["mean", "count", "max"])
        .unwrap()
        .default_tag("service", "api");
    agent.aggregate(spec).unwrap();
    let c = agent.metrics();
    for ms in [10, 20, 30] {
        c.record_timer("latency", Duration::from_millis(ms), &[("route", "/a")]);
    }
    c.record_timer("latency", Duration::from_millis(100), &[("route", "/b")]);
    clock.advance(Duration::from_secs(10));
    block_on(agent.collect_metrics_async()).unwrap(); // closes the batch now
    let m = agent.memory().unwrap();
    let a = [("route", "/a"), ("service", "api")];
    assert_eq!(m.gauge_value("latency.mean", &a), Some(20.0));
    assert_eq!(m.gauge_value("latency.count", &a), Some(3.0));
    assert_eq!(
        m.gauge_value("latency.max", &[("route", "/b"), ("service", "api")]),
        Some(100.0)
    );
    // A partial batch: sent at shutdown, not lost.
    c.record_timer("latency", Duration::from_millis(7), &[("route", "/a")]);
    clock.advance(Duration::from_secs(3));
    agent.shutdown_metrics().unwrap();
    assert_eq!(m.gauge_value("latency.mean", &a), Some(7.0));
    assert_eq!(m.gauge_value("latency.count", &a), Some(1.0));
}

#[test]
fn count_batches_aggregate_into_a_stream_and_the_rest_flushes_at_shutdown() {
    let agent = Agent::new(quiet_memory()).unwrap();
    let results = agent.metrics_stream(MetricFilter::default().name_prefix("bytes."));
    let spec = AggregationSpec::count("bytes", 4)
        .function(AggFn::Sum)
        .function(AggFn::Percentile(50.0));
    agent
        .aggregate_into(spec, AggregateSink::Stream(agent.streams().clone()))
        .unwrap();
    let c = agent.metrics();
    for v in [1.0, 2.0, 3.0, 4.0, 10.0, 20.0] {
        c.record_histogram("bytes", v, &[]);
    }
    agent.shutdown_metrics().unwrap();
    let got: Vec<(String, f64, String)> = block_on(results.collect::<Vec<_>>())
        .into_iter()
        .map(|e| match e {
            // Percentiles come from the sketch (within 0.5%): compare to 1 decimal.
            StreamEvent::Metric(v) => (
                v.name.clone(),
                (v.value * 10.0).round() / 10.0,
                v.metadata["samples"].clone(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("bytes.sum".into(), 10.0, "4".into()),
            ("bytes.p50".into(), 2.0, "4".into()),
            ("bytes.sum".into(), 30.0, "2".into()),
            ("bytes.p50".into(), 10.0, "2".into()),
        ]
    );
}

/// A one-request HTTP server on 127.0.0.1; yields the request body.
fn http_sink() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ingest.prom", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).unwrap();
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                    return body.to_owned();
                }
            }
            if n == 0 {
                return String::new();
            }
        }
    });
    (url, h)
}

#[test]
fn export_goes_to_files_and_http_and_one_failure_stops_nothing() {
    let agent = Agent::new(quiet_memory()).unwrap();
    agent.metrics().record_counter("exported", 3.0, &[]);
    let dir = std::env::temp_dir().join(format!("metrics-sdk-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.json");
    let (url, server) = http_sink();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x", l.local_addr().unwrap())
    };
    let endpoints = vec![
        closed.clone(),
        file.display().to_string(),
        url.clone(),
        dir.join("no/such/dir/out.csv").display().to_string(),
    ];
    let results = block_on(agent.export_metrics_async(&endpoints));
    assert_eq!(results.len(), 4);
    assert!(results[&closed].is_err());
    assert!(results[&endpoints[3]].is_err());
    results[&file.display().to_string()].as_ref().unwrap();
    results[&url].as_ref().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(json.to_string().contains("exported"));
    assert!(server.join().unwrap().contains("exported_total 3"));

    // No endpoints given: the configured ones.
    let csv = dir.join("configured.csv");
    agent
        .initialize_metrics(&MetricsConfig {
            collection_interval: 5.0,
            retention_days: 1.0,
            export_endpoints: vec![csv.display().to_string()],
        })
        .unwrap();
    let results = block_on(agent.export_metrics_async(&[]));
    assert!(results.values().all(Result::is_ok), "{results:?}");
    assert!(std::fs::read_to_string(&csv).unwrap().contains("exported"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn initialize_metrics_applies_what_it_can_and_names_what_it_cannot() {
    let mut config = quiet_memory();
    config.system_polling = true;
    config.collection_interval = 5.0;
    let agent = Agent::new(config).unwrap();
    assert!(agent.resource_monitor().is_monitoring());
    let bad = MetricsConfig {
        collection_interval: 0.0,
        ..MetricsConfig::default()
    };
    let e = agent.initialize_metrics(&bad).unwrap_err().to_string();
    assert!(e.contains("collection_interval") && e.contains('0'), "{e}");
    let other_retention = MetricsConfig {
        retention_days: 7.0,
        ..MetricsConfig::default()
    };
    let e = agent
        .initialize_metrics(&other_retention)
        .unwrap_err()
        .to_string();
    assert!(e.contains("retention_days") && e.contains('7'), "{e}");
    agent
        .initialize_metrics(&MetricsConfig {
            collection_interval: 0.5,
            ..MetricsConfig::default()
        })
        .unwrap();
    assert_eq!(agent.config().collection_interval, 0.5);
    assert!(agent.resource_monitor().is_monitoring());
    // The poller publishes into the agent.
    std::thread::sleep(Duration::from_millis(1500));
    let m = agent.memory().unwrap();
    assert!(
        m.gauge_value("process.memory.usage", &[])
            .is_some_and(|v| v > 0.0)
    );
    assert_eq!(
        agent
            .system_health()
            .backends
            .iter()
            .find(|b| b.name == "system")
            .unwrap()
            .details["sampling"],
        1.0
    );
    agent.shutdown_metrics().unwrap();
    assert!(!agent.resource_monitor().is_monitoring());
    assert!(agent.initialize_metrics(&MetricsConfig::default()).is_err());
}

#[test]
fn the_system_is_built_from_a_file_and_the_environment() {
    let daemon = Daemon::new();
    let dir = std::env::temp_dir().join(format!("metrics-sdk-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics.toml");
    std::fs::write(
        &path,
        "backend = \"memory\"\nsystem_polling = false\n[statsd]\nprefix = \"file\"\nflush_interval_ms = 3600000\n",
    )
    .unwrap();
    let env: BTreeMap<&str, String> = BTreeMap::from([
        ("METRICS_BACKEND", "both".to_owned()),
        ("METRICS_STATSD_ADDR", daemon.addr()),
        ("METRICS_PREFIX", "api".to_owned()),
        ("METRICS_COMMON_TAGS", "env=test,dc=local".to_owned()),
    ]);
    let config = AgentConfig::load(Some(&path), |k| env.get(k).cloned()).unwrap();
    assert_eq!(config.backend, BackendChoice::Both);
    let agent = Agent::new(config).unwrap();
    agent.metrics().record_counter("boots", 1.0, &[]);
    agent.shutdown_metrics().unwrap();
    assert!(
        daemon
            .lines()
            .iter()
            .any(|l| l == "api.boots:1|c|#dc:local,env:test"),
        "env wins over the file"
    );

    // Bad values name the field and the value, from either source.
    let bad_env = BTreeMap::from([("METRICS_BACKEND", "carrier-pigeon".to_owned())]);
    let e = AgentConfig::load(Some(&path), |k| bad_env.get(k).cloned())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("METRICS_BACKEND") && e.contains("carrier-pigeon"),
        "{e}"
    );
    std::fs::write(&path, "collection_interval = \"soon\"\n").unwrap();
    let e = AgentConfig::load(Some(&path), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("collection_interval") && e.contains("soon"),
        "{e}"
    );
    let mut c = quiet_memory();
    c.backend = BackendChoice::Statsd;
    c.statsd.addr = "no-port-here".into();
    let e = Agent::new(c).unwrap_err().to_string();
    assert!(e.contains("no-port-here"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dropping_the_system_stops_its_threads_and_keeps_no_cycle() {
    let clock = manual();
    let agent = Agent::with_clock(quiet_memory(), clock.clone()).unwrap();
    let agg = agent
        .aggregate(AggregationSpec::count("x", 10).function(AggFn::Sum))
        .unwrap();
    agent.metrics().record_counter("x", 1.0, &[]);
    let memory = agent.memory().unwrap().clone();
    drop(agent);
    // The partial batch went into the agent before it shut down.
    assert_eq!(memory.gauge_value("x.sum", &[]), Some(1.0));
    assert_eq!(agg.stats().1, 1);
    let _ = clock.now_millis();
}

#[test]
fn the_readme_configuration_example_is_a_valid_configuration() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in the README");
    let c = AgentConfig::from_toml_str(block).unwrap();
    c.validate().unwrap();
    assert_eq!(c.backend, BackendChoice::Both);
    assert_eq!(c.statsd.common_tags["env"], "prod");
    assert_eq!(c.health.check_timeout_ms, 2000);
    assert_eq!(c.aggregations[0].functions, ["mean", "p95", "count"]);
}

#[test]
fn aggregations_in_the_configuration_start_with_the_system() {
    let mut config = AgentConfig::from_toml_str(
        r#"
        system_polling = false
        [[aggregations]]
        metric = "queue.wait"
        count = 2
        functions = ["max"]
        default_tags = { pool = "io" }
        [[aggregations]]
        metric = "queue.wait"
        count = 3
        functions = ["count"]
        target = "stream"
        "#,
    )
    .unwrap();
    config.stream_buffer = 8;
    let agent = Agent::new(config).unwrap();
    let stream = agent.metrics_stream(MetricFilter::default().name_prefix("queue.wait.count"));
    for v in [4.0, 9.0, 1.0] {
        agent.metrics().record_histogram("queue.wait", v, &[]);
    }
    let m = agent.memory().unwrap();
    assert_eq!(
        m.gauge_value("queue.wait.max", &[("pool", "io")]),
        Some(9.0)
    );
    assert_eq!(
        m.gauge_value("queue.wait.count", &[]),
        None,
        "stream target only"
    );
    agent.shutdown_metrics().unwrap();
    // The partial batch (the third sample) reached the agent at shutdown.
    assert_eq!(
        m.gauge_value("queue.wait.max", &[("pool", "io")]),
        Some(1.0)
    );
    let events: Vec<StreamEvent> = block_on(stream.collect());
    assert!(
        matches!(&events[..], [StreamEvent::Metric(v)] if v.value == 3.0),
        "{events:?}"
    );
}

#[test]
fn aggregation_results_reach_the_backends_and_streams_but_no_aggregation() {
    let agent = Agent::new(quiet_memory()).unwrap();
    let stream = agent.metrics_stream(MetricFilter::default().name_prefix("lat"));
    agent
        .aggregate(AggregationSpec::count("lat", 2).function(AggFn::Max))
        .unwrap();
    let of_results = agent
        .aggregate(AggregationSpec::count("lat.max", 1).function(AggFn::Count))
        .unwrap();
    let metrics = agent.metrics();
    metrics.record_histogram("lat", 5.0, &[]);
    metrics.record_histogram("lat", 9.0, &[]);
    let memory = agent.memory().unwrap();
    assert_eq!(memory.gauge_value("lat.max", &[]), Some(9.0));
    // The result was written below the tap: no aggregation saw it.
    assert_eq!(of_results.stats(), (0, 0, 0));
    assert_eq!(memory.gauge_value("lat.max.count", &[]), None);
    // What the application itself records under that name is aggregated.
    metrics.record_gauge("lat.max", 1.0, &[]);
    assert_eq!(of_results.stats(), (1, 1, 0));
    assert_eq!(memory.gauge_value("lat.max.count", &[]), Some(1.0));
    agent.shutdown_metrics().unwrap();
    let seen: Vec<(String, f64)> = block_on(stream.collect::<Vec<_>>())
        .into_iter()
        .map(|e| match e {
            StreamEvent::Metric(v) => (v.name, v.value),
            other => panic!("{other:?}"),
        })
        .collect();
    let want = [
        ("lat", 5.0),
        ("lat", 9.0),
        ("lat.max", 9.0),
        ("lat.max", 1.0),
        ("lat.max.count", 1.0),
    ];
    assert_eq!(
        seen,
        want.map(|(n, v)| (n.to_owned(), v)),
        "the streams see results too"
    );
}

#[test]
fn bound_handles_and_timers_by_id_go_through_the_taps() {
    let agent = Agent::with_clock(quiet_memory(), manual()).unwrap();
    let stream = agent.metrics_stream(MetricFilter::default().name_prefix("jobs"));
    let sizes = agent
        .aggregate(AggregationSpec::count("jobs.size", 10).function(AggFn::Sum))
        .unwrap();
    let metrics = agent.metrics();
    let done = metrics.counter("jobs.done", &[("queue", "mail")]);
    done.increment();
    done.add(2.0);
    done.add(-1.0); // refused where it is recorded, and counted
    metrics.histogram("jobs.size", &[]).record(4.0);
    let timer = agent.performance_timer();
    let id = timer.start_timer("jobs.run", &[]);
    timer.stop_timer(id, false).unwrap();
    assert_eq!(
        sizes.stats().0,
        1,
        "the bound histogram reached its aggregation"
    );
    let memory = agent.memory().unwrap();
    assert_eq!(
        memory.counter_value("jobs.done", &[("queue", "mail")]),
        Some(3.0)
    );
    let h = agent.system_health();
    assert_eq!(h.error_rate, 1.0, "the stopped timer's failure is counted");
    assert_eq!(h.dropped.get(&DropReason::NegativeCounter), Some(&1));
    let own = h.backends.iter().find(|b| b.name == "agent").unwrap();
    assert_eq!(own.details["running_timers"], 0.0);
    agent.shutdown_metrics().unwrap();
    let names: Vec<String> = block_on(stream.collect::<Vec<_>>())
        .into_iter()
        .map(|e| match e {
            StreamEvent::Metric(v) => v.name,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "jobs.done",
            "jobs.done",
            "jobs.size",
            "jobs.run",
            "jobs.run.failure",
            "jobs.size.sum"
        ]
    );
}
