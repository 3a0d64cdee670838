//! The conformance suite against the composed system: `Agent::collector()`
//! (memory backend, stream hub and aggregation taps behind one fanout), read
//! back through its memory backend. A stream subscriber and an aggregation
//! (of a window larger than any check records, so it adds no series) are
//! active, so the taps are on the path under test.

use std::sync::Arc;

use metrics_agent::{Agent, AgentConfig, AggregationSpec};
use metrics_protocol::system::MetricsSystem;
use metrics_protocol::system::{AsyncMetricsSystem, MetricFilter, MetricStream};
use metrics_protocol::{MetricCollector, Metrics, Tags};
use metrics_tests::{Harness, Queries};

struct Composed {
    agent: Agent,
    _stream: parking_lot::Mutex<MetricStream>,
}

impl Composed {
    fn new() -> Composed {
        let agent = Agent::new(AgentConfig {
            system_sampling: false,
            ..AgentConfig::default()
        })
        .expect("the default configuration builds");
        let _stream = agent.metrics_stream(MetricFilter::default());
        let spec = AggregationSpec::count("conf.size", 1_000_000)
            .functions(["mean"])
            .expect("a known function");
        agent.aggregate(spec).expect("a valid spec");
        Composed {
            agent,
            _stream: parking_lot::Mutex::new(_stream),
        }
    }
}

impl Harness for Composed {
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.agent.collector()
    }
    fn metrics(&self) -> Metrics {
        self.agent.metrics()
    }
    fn queries(&self) -> Option<Queries> {
        Some(Queries {
            tracker: self.agent.tracker(),
            timer: self.agent.timer(),
        })
    }
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.agent
            .memory()
            .and_then(|m| m.outcome_counts(operation, tags))
            .map_or(0, |(ok, _)| ok)
    }
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.agent
            .memory()
            .and_then(|m| m.outcome_counts(operation, tags))
            .and_then(|(_, failed)| failed.get(error_type).copied())
            .unwrap_or(0)
    }
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.agent.memory()?.counter_value(name, tags)
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.agent.memory()?.gauge_value(name, tags)
    }
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.agent
            .memory()?
            .distribution(name, tags)
            .map(|d| d.count)
    }
    fn series_count(&self) -> usize {
        self.agent.memory().map_or(0, |m| m.series_count())
    }
}

metrics_tests::conformance_suite!(Composed::new());
