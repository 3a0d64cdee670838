//! The conformance suite against the composed system: `Agent::metrics()`
//! (the memory backend under the tap of streams, aggregations and the error
//! rate) on a manual clock, read back through its memory backend and
//! queried through `Agent::aggregator()`. A stream subscriber and an
//! aggregation (of a batch larger than any check records, so it adds no
//! series) are active, so the taps are on the path under test.

use std::sync::Arc;

use metrics_memory::{ManualClock, MemoryConfig};
use metrics_protocol::app::{AsyncMetricsSystem, MetricFilter, MetricsSystem};
use metrics_sdk::{Agent, AgentConfig, AggregationSpec};
use metrics_tests::{IDLE_EXPIRY, MemoryHarness, START_MS};

fn composed() -> MemoryHarness {
    let clock = Arc::new(ManualClock::new(START_MS));
    let config = AgentConfig {
        system_polling: false,
        memory: MemoryConfig {
            idle_expiry_secs: Some(IDLE_EXPIRY.as_secs()),
            ..MemoryConfig::default()
        },
        ..AgentConfig::default()
    };
    let agent = Agent::with_clock(config, clock.clone()).expect("a valid configuration");
    let stream = agent.metrics_stream(MetricFilter::default());
    let spec = AggregationSpec::count("conf.size", 1_000_000)
        .functions(["mean"])
        .expect("a known function");
    agent.aggregate(spec).expect("a valid spec");
    let memory = agent
        .memory()
        .expect("the default backend is memory")
        .clone();
    MemoryHarness::over(agent.metrics(), memory, agent.aggregator(), clock)
        .keeping(stream)
        .keeping(agent)
}

metrics_conformance::conformance_suite!(composed());
