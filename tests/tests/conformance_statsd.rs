//! The conformance suite against the StatsD backend, read back through a
//! real UDP receiver on 127.0.0.1 that folds lines the way a daemon does.

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::{MetricCollector, Metrics, Tags};
use metrics_statsd::{StatsdConfig, StatsdMetrics};
use metrics_tests::Harness;
use metrics_tests::udp::UdpReceiver;

struct Statsd {
    backend: Arc<StatsdMetrics>,
    receiver: UdpReceiver,
}

impl Statsd {
    fn new() -> Self {
        let receiver = UdpReceiver::start().expect("bind a UDP receiver on 127.0.0.1");
        let backend = StatsdMetrics::new(StatsdConfig {
            addr: receiver.addr().to_string(),
            flush_interval_ms: 3_600_000, // flushes come from settle()
            ..Default::default()
        })
        .expect("a StatsD backend");
        Statsd {
            backend: Arc::new(backend),
            receiver,
        }
    }

    fn key(name: &str, tags: Tags<'_>) -> metrics_tests::udp::SeriesKey {
        (name.to_owned(), metrics_tests::sorted_owned(tags))
    }
}

impl Harness for Statsd {
    fn collector(&self) -> Arc<dyn MetricCollector> {
        self.backend.clone()
    }
    fn metrics(&self) -> Metrics {
        Metrics::new(self.backend.clone())
    }
    fn settle(&self) {
        self.backend.flush().expect("flush");
        self.receiver
            .wait_quiet(Duration::from_millis(100), Duration::from_secs(5));
        assert!(
            self.receiver.series().bad.is_empty(),
            "malformed lines: {:?}",
            self.receiver.series().bad
        );
    }
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.receiver
            .series()
            .counters
            .get(&Self::key(name, tags))
            .copied()
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.receiver
            .series()
            .gauges
            .get(&Self::key(name, tags))
            .copied()
    }
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.receiver
            .series()
            .samples
            .get(&Self::key(name, tags))
            .copied()
    }
    fn series_count(&self) -> usize {
        self.receiver.series().len()
    }
}

metrics_tests::conformance_suite!(Statsd::new());
