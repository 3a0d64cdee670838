//! The agent offers the `metrics` crate bridge in one call (its own test
//! binary: a global recorder is set once per process).

use metrics_exposition::ExportFormat;
use metrics_protocol::app::MetricsSystem;
use metrics_sdk::{Agent, AgentConfig};

#[test]
fn one_call_makes_the_metrics_macros_record_into_the_agent() {
    let agent = Agent::new(AgentConfig {
        system_polling: false,
        ..AgentConfig::default()
    })
    .expect("agent");
    let recorder = agent.install_metrics_recorder().expect("first install");

    std::thread::spawn(|| {
        metrics::describe_counter!("bridged.jobs", metrics::Unit::Count, "Jobs run.");
        for _ in 0..10 {
            metrics::counter!("bridged.jobs", "queue" => "mail").increment(2);
        }
        metrics::histogram!("bridged.size").record(512.0);
    })
    .join()
    .expect("recording thread");

    let memory = agent.memory().expect("memory backend");
    assert_eq!(
        memory.counter_value("bridged.jobs", &[("queue", "mail")]),
        Some(20.0)
    );
    let summary = agent
        .aggregator()
        .metric_summary("bridged.size", None)
        .expect("summary of a bridged histogram");
    assert_eq!(summary.count, 1);
    let text = agent.export(ExportFormat::Prometheus).expect("export");
    assert!(
        text.contains("bridged_jobs_total{queue=\"mail\"} 20"),
        "{text}"
    );
    assert_eq!(recorder.stats().cached_keys, 2);

    // `metrics` takes one global recorder per process.
    assert!(agent.install_metrics_recorder().is_err());
}
