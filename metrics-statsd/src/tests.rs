use std::net::UdpSocket;
use std::time::{Duration, Instant};

use metrics_protocol::system::*;
use metrics_protocol::*;

use crate::{StatsdConfig, StatsdMetrics, TagFlavor};

/// A receiver on 127.0.0.1 that collects lines.
struct Receiver {
    socket: UdpSocket,
    lines: Vec<String>,
    datagrams: usize,
}

impl Receiver {
    fn bind(addr: &str) -> Receiver {
        let socket = UdpSocket::bind(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Receiver {
            socket,
            lines: Vec::new(),
            datagrams: 0,
        }
    }
    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }
    /// Reads until `n` lines arrived or 5 s passed.
    fn until(&mut self, n: usize) -> &[String] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 65_536];
        while self.lines.len() < n && Instant::now() < deadline {
            if let Ok(k) = self.socket.recv(&mut buf) {
                self.datagrams += 1;
                let text = String::from_utf8_lossy(&buf[..k]).to_string();
                self.lines.extend(text.split('\n').map(str::to_owned));
            }
        }
        &self.lines
    }
}

fn backend(addr: String) -> StatsdMetrics {
    StatsdMetrics::new(StatsdConfig {
        addr,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn counters_are_aggregated_into_one_exact_line_per_flush() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    for _ in 0..1000 {
        s.increment("jobs", &[("queue", "a"), ("env", "x")]);
        s.increment("jobs", &[("env", "x"), ("queue", "a")]);
    }
    s.record_counter("jobs", 0.5, &[("queue", "a"), ("env", "x")]);
    s.flush().unwrap();
    assert_eq!(r.until(1), ["jobs:2000.5|c|#env:x,queue:a"]);
}

#[test]
fn gauges_send_absolute_values_safely_and_deltas_relatively() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    s.record_gauge("temp", 3.0, &[]);
    s.record_gauge("temp", -5.0, &[]); // last value wins
    s.adjust_gauge("conns", 2.0, &[]);
    s.adjust_gauge("conns", -1.0, &[]);
    s.flush().unwrap();
    let mut got = r.until(3).to_vec();
    got.sort();
    assert_eq!(got, ["conns:+1|g", "temp:-5|g", "temp:0|g"]);
    let zero = r.lines.iter().position(|l| l == "temp:0|g").unwrap();
    let neg = r.lines.iter().position(|l| l == "temp:-5|g").unwrap();
    assert!(zero < neg, "0 must precede the negative value");
}

#[test]
fn histograms_are_timers_where_statsd_has_no_histogram_type() {
    for flavor in [TagFlavor::Etsy, TagFlavor::None] {
        let mut r = Receiver::bind("127.0.0.1:0");
        let s = StatsdMetrics::new(StatsdConfig {
            addr: r.addr(),
            flavor,
            flush_interval_ms: 3_600_000,
            ..Default::default()
        })
        .unwrap();
        s.record_histogram("size", 42.0, &[]);
        s.record_histogram("size", -1.0, &[]); // no valid timer line for it
        s.flush().unwrap();
        assert_eq!(r.until(1), ["size:42|ms"], "{flavor}");
        let h = s.health();
        assert_eq!(
            h[0].dropped.get(&DropReason::InvalidValue),
            Some(&1),
            "{flavor}"
        );
    }
}

#[test]
fn timers_and_histograms_go_per_sample_with_rates() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    s.record_timer("db.query", Duration::from_micros(12_500), &[("t", "users")]);
    s.record_histogram("size", 42.0, &[]);
    s.flush().unwrap();
    assert_eq!(r.until(2), ["db.query:12.5|ms|#t:users", "size:42|h"]);

    let mut r = Receiver::bind("127.0.0.1:0");
    let s = StatsdMetrics::new(StatsdConfig {
        addr: r.addr(),
        timer_sample_rate: 0.5,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..2000 {
        s.record_timer("t", Duration::from_millis(1), &[]);
    }
    s.flush().unwrap();
    let n = r.until(2000).len();
    assert!(r.lines.iter().all(|l| l == "t:1|ms|@0.5"));
    assert!(
        (700..1300).contains(&n),
        "about half of 2000 sampled, got {n}"
    );
}

#[test]
fn lines_are_batched_into_datagrams_up_to_the_limit() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = StatsdMetrics::new(StatsdConfig {
        addr: r.addr(),
        max_datagram_bytes: 200,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    })
    .unwrap();
    for i in 0..100 {
        s.record_histogram("h", f64::from(i), &[]);
    }
    s.flush().unwrap();
    assert_eq!(r.until(100).len(), 100);
    assert!(
        r.datagrams > 1 && r.datagrams < 100,
        "{} datagrams",
        r.datagrams
    );
    assert_eq!(s.health()[0].details["sent_lines"], 100.0);
}

#[test]
fn reserved_characters_never_make_a_second_line() {
    let mut r = Receiver::bind("127.0.0.1:0");
    for flavor in [TagFlavor::DogStatsd, TagFlavor::Etsy, TagFlavor::None] {
        let s = StatsdMetrics::new(StatsdConfig {
            addr: r.addr(),
            flavor,
            flush_interval_ms: 3_600_000,
            ..Default::default()
        })
        .unwrap();
        s.increment("a:b|c@d#e", &[("k|:", "v\nfake:1|c"), ("x", "1,2#3@4")]);
        s.shutdown().unwrap();
    }
    let lines = r.until(3).to_vec();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "a_b_c_d_e:1|c|#k__:v_fake_1_c,x:1_2_3_4");
    assert_eq!(lines[1], "a_b_c_d_e;k__=v_fake_1_c;x=1_2_3_4:1|c");
    assert_eq!(lines[2], "a_b_c_d_e:1|c");
}

#[test]
fn a_daemon_started_later_receives_what_is_sent_once_it_is_up() {
    // Find a free port, then leave it closed.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let s = backend(addr.clone());
    for _ in 0..3 {
        s.record_histogram("early", 1.0, &[]);
        s.flush().unwrap(); // each flush is a datagram to a closed port
    }
    let h = &s.health()[0];
    assert!(h.details["send_errors"] >= 1.0, "{h:?}");
    assert!(s.dropped(DropReason::SendFailed) >= 1);
    let mut r = Receiver::bind(&addr);
    s.record_histogram("late", 7.0, &[]);
    s.flush().unwrap();
    assert_eq!(r.until(1).last().map(String::as_str), Some("late:7|h"));
    // Reachability is known after a send that went through at the first try.
    s.record_histogram("later", 8.0, &[]);
    s.flush().unwrap();
    assert_eq!(r.until(2).last().map(String::as_str), Some("later:8|h"));
    assert_eq!(s.health()[0].details["reachable"], 1.0);
    assert_eq!(
        s.health()[0].status,
        HealthStatus::Degraded,
        "drops were counted"
    );
    // Every early sample either arrived or is counted as lost.
    let lost = s.dropped(DropReason::SendFailed);
    let early = r.lines.iter().filter(|l| l.starts_with("early")).count() as u64;
    assert_eq!(early + lost, 3);
}

#[test]
fn every_sample_is_sent_or_counted_when_the_queue_overflows() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = StatsdMetrics::new(StatsdConfig {
        addr: r.addr(),
        queue_capacity: 4,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    })
    .unwrap();
    for i in 0..5000 {
        s.record_histogram("burst", f64::from(i), &[]);
    }
    s.shutdown().unwrap();
    let dropped = s.dropped(DropReason::QueueFull);
    let arrived = r.until(5000 - dropped as usize).len() as u64;
    assert_eq!(arrived + dropped, 5000);
}

#[test]
fn shutdown_flushes_everything_and_later_samples_are_counted() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    s.increment("before", &[]);
    s.record_timer("t", Duration::from_millis(3), &[]);
    s.shutdown().unwrap();
    s.shutdown().unwrap(); // idempotent
    let mut got = r.until(2).to_vec();
    got.sort();
    assert_eq!(got, ["before:1|c", "t:3|ms"]);
    s.increment("after", &[]);
    assert_eq!(s.dropped(DropReason::SendFailed), 1);
}

#[test]
fn prefix_common_tags_and_overrides() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = StatsdMetrics::new(StatsdConfig {
        addr: r.addr(),
        prefix: "svc".into(),
        common_tags: [
            ("env".to_owned(), "prod".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
        ]
        .into(),
        flush_interval_ms: 3_600_000,
        ..Default::default()
    })
    .unwrap();
    s.increment("hits", &[("zone", "b")]);
    s.flush().unwrap();
    assert_eq!(r.until(1), ["svc.hits:1|c|#env:prod,zone:b"]);
}

#[test]
fn queries_are_unsupported_and_bad_config_names_the_field() {
    let r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    assert!(matches!(
        s.export_metrics(ExportFormat::Json),
        Err(MetricsError::Unsupported {
            backend: "statsd",
            ..
        })
    ));
    assert!(matches!(
        s.get_timing_stats("x", None),
        Err(MetricsError::Unsupported { .. })
    ));
    assert!(matches!(
        s.get_success_rate("x", None),
        Err(MetricsError::Unsupported { .. })
    ));
    let id = s.start_timer("op", &[]);
    assert!(s.stop_timer(id, true).is_ok());
    assert!(matches!(
        s.stop_timer(id, true),
        Err(MetricsError::UnknownTimer(_))
    ));
    for (cfg, field) in [
        (
            StatsdConfig {
                addr: "not an address".into(),
                ..Default::default()
            },
            "addr",
        ),
        (
            StatsdConfig {
                max_datagram_bytes: 10,
                ..Default::default()
            },
            "max_datagram_bytes",
        ),
        (
            StatsdConfig {
                timer_sample_rate: 0.0,
                ..Default::default()
            },
            "timer_sample_rate",
        ),
    ] {
        let e = StatsdMetrics::new(cfg).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    assert!("weird".parse::<TagFlavor>().is_err());
}
