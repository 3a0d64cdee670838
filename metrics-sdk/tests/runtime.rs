//! One runtime: the composed system's background work (the HTTP service,
//! resource polls, health checks, the aggregation ticker) runs as tasks
//! on the application's runtime, adding no thread of its own; without one,
//! on a single runtime the agent starts and stops. One test in this binary,
//! so no other test's threads are counted.

#![cfg(all(feature = "http", feature = "system", target_os = "linux"))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_protocol::app::MetricsSystem;
use metrics_protocol::backend::HealthStatus;
use metrics_sdk::{Agent, AgentConfig, AggregationSpec, CheckOutcome, FnCheck};

mod common;
use common::get;

/// The names of this process's threads.
fn threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn background_work_runs_on_one_runtime() {
    // 1. On the application's runtime: no thread of the system's own but
    //    the memory backend's clock.
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-runtime")
        .enable_all()
        .build()
        .unwrap();
    let config = AgentConfig {
        system_polling: true,
        collection_interval: 1.0,
        ..AgentConfig::default()
    };
    let mut running = Agent::builder()
        .config(config)
        .runtime(app.handle().clone())
        .serve("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let agent = running.agent().clone();
    assert!(!agent.owns_runtime());
    // A check that hangs for the whole test: bounded by the timeout.
    let (_hold, hung) = std::sync::mpsc::channel::<()>();
    let hung = std::sync::Mutex::new(hung);
    agent.register_health_check(Arc::new(FnCheck::new("hung", move || {
        let _ = hung.lock().unwrap().recv();
        CheckOutcome::healthy()
    })));
    agent
        .aggregate(
            AggregationSpec::time("job.ms", Duration::from_millis(200))
                .functions(["max"])
                .unwrap(),
        )
        .unwrap();
    let metrics = running.metrics();
    metrics.record_histogram("job.ms", 7.0, &[]);
    let addr = running.http_addr().unwrap();
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("job_ms"), "{body}");
    // The poller polls, the ticker closes the batch.
    eventually("two resource polls", || {
        agent
            .system_health()
            .backends
            .iter()
            .any(|b| b.name == "system" && b.details.get("samples").is_some_and(|&n| n >= 2.0))
    });
    eventually("the aggregation's result", || {
        agent
            .aggregator()
            .metric_summary("job.ms.max", None)
            .is_ok_and(|s| s.max == 7.0)
    });
    let report = agent.system_health();
    let hung = report.checks.iter().find(|c| c.name == "hung").unwrap();
    assert_eq!(hung.status, HealthStatus::Unhealthy, "{hung:?}");
    let names = threads();
    let own: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("metrics-") && !n.starts_with("metrics-memory"))
        .chain(names.iter().filter(|n| n.starts_with("health")))
        .collect();
    assert!(
        own.is_empty(),
        "threads of the system's own: {own:?} in {names:?}"
    );
    running.shutdown().unwrap();

    // 2. Without a runtime: one the agent starts (a single worker), gone
    //    once the agent is.
    let alone = Agent::new(AgentConfig {
        system_polling: false,
        ..AgentConfig::default()
    })
    .unwrap();
    assert!(alone.owns_runtime());
    alone
        .aggregate(
            AggregationSpec::time("job.ms", Duration::from_millis(200))
                .functions(["min"])
                .unwrap(),
        )
        .unwrap();
    alone.metrics().record_histogram("job.ms", 3.0, &[]);
    eventually("the aggregation's result", || {
        alone
            .aggregator()
            .metric_summary("job.ms.min", None)
            .is_ok_and(|s| s.min == 3.0)
    });
    let workers = threads().iter().filter(|n| *n == "metrics-runtime").count();
    assert!(workers >= 1, "{:?}", threads());
    alone.shutdown_metrics().unwrap();
    drop(alone);
    eventually("the agent's runtime is gone", || {
        !threads().iter().any(|n| n == "metrics-runtime")
    });
}
