//! The conformance suite against the StatsD backend, read back through a
//! real UDP receiver on 127.0.0.1 that folds lines the way a daemon does.
//! Write-only and without an injectable clock: the queries and the clock
//! checks return early.

use std::sync::Arc;

use metrics_conformance::udp::{UdpHarness, UdpReceiver};
use metrics_protocol::Metrics;
use metrics_statsd::{StatsdConfig, StatsdMetrics};

fn statsd() -> UdpHarness {
    let receiver = UdpReceiver::start().expect("bind a UDP receiver on 127.0.0.1");
    let backend = StatsdMetrics::new(StatsdConfig {
        addr: receiver.addr().to_string(),
        flush_interval_ms: 3_600_000, // flushes come from settle()
        shutdown_timeout_ms: 60_000,  // a flush on a loaded machine
        ..StatsdConfig::default()
    })
    .expect("a StatsD backend");
    UdpHarness::new(Metrics::new(Arc::new(backend)), receiver)
}

metrics_conformance::conformance_suite!(statsd());
