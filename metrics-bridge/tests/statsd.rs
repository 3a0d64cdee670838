//! The bridge over the StatsD backend: `metrics` macros become StatsD lines
//! on a real UDP socket (127.0.0.1).

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_bridge::Recorder;
use metrics_protocol::MetricCollector;
use metrics_statsd::{StatsdConfig, StatsdMetrics, TagFlavor};

#[test]
fn macros_reach_a_statsd_daemon_as_lines() {
    let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind a receiver");
    daemon
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let statsd = Arc::new(
        StatsdMetrics::new(StatsdConfig {
            addr: daemon.local_addr().expect("address").to_string(),
            flavor: TagFlavor::DogStatsd,
            ..Default::default()
        })
        .expect("statsd backend"),
    );
    Recorder::new(statsd.clone()).in_scope(|| {
        metrics::counter!("jobs", "queue" => "mail").increment(3);
        metrics::counter!("jobs", "queue" => "mail").increment(4);
        metrics::gauge!("pool.size").set(12.0);
        metrics::histogram!("payload", "dir" => "in").record(512.0);
        metrics::counter!("bad\nname").increment(1);
    });
    statsd.shutdown().expect("flush on shutdown");

    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 65_536];
    while Instant::now() < deadline
        && !(text.contains("jobs:") && text.contains("pool.size:") && text.contains("payload:"))
    {
        if let Ok(n) = daemon.recv(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            text.push('\n');
        }
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.contains(&"jobs:7|c|#queue:mail"), "{lines:?}");
    assert!(lines.contains(&"pool.size:12|g"), "{lines:?}");
    assert!(lines.contains(&"payload:512|h|#dir:in"), "{lines:?}");
    assert!(!text.contains("bad"), "{lines:?}");
    let health = statsd.health();
    assert_eq!(health[0].dropped.values().sum::<u64>(), 1, "{health:?}");
}
