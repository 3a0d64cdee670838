use std::net::UdpSocket;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_protocol::backend::{DropReason, HealthStatus};
use metrics_protocol::{MetricCollector, Metrics, MetricsError, PerformanceTimer};

use crate::{StatsdConfig, StatsdMetrics, TagFlavor};

/// A backend and the handle a library records through.
struct Statsd {
    statsd: Arc<StatsdMetrics>,
    metrics: Metrics,
}

impl Statsd {
    fn new(config: StatsdConfig) -> Statsd {
        let statsd = Arc::new(StatsdMetrics::new(config).unwrap());
        Statsd {
            metrics: Metrics::new(statsd.clone()),
            statsd,
        }
    }
    fn shutdown(&self) -> Result<(), MetricsError> {
        self.statsd.shutdown()
    }
    fn dropped(&self, reason: DropReason) -> u64 {
        self.statsd.dropped(reason)
    }
}

impl Deref for Statsd {
    type Target = Metrics;
    fn deref(&self) -> &Metrics {
        &self.metrics
    }
}

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
    /// Reads until nothing arrived for 300 ms (at most 10 s in all).
    fn drain(&mut self) -> &[String] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut quiet = Instant::now() + Duration::from_millis(300);
        let mut buf = [0u8; 65_536];
        while Instant::now() < quiet.min(deadline) {
            if let Ok(k) = self.socket.recv(&mut buf) {
                self.datagrams += 1;
                let text = String::from_utf8_lossy(&buf[..k]).to_string();
                self.lines.extend(text.split('\n').map(str::to_owned));
                quiet = Instant::now() + Duration::from_millis(300);
            }
        }
        &self.lines
    }
    /// The sum of the values of counter lines named `name`.
    fn counter_total(&self, name: &str) -> f64 {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .filter_map(|rest| rest.strip_suffix("|c")?.parse::<f64>().ok())
            .sum()
    }
    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }
    /// Reads until `n` lines arrived or 20 s passed.
    fn until(&mut self, n: usize) -> &[String] {
        let deadline = Instant::now() + Duration::from_secs(20);
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

fn backend(addr: String) -> Statsd {
    Statsd::new(StatsdConfig {
        addr,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    })
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
        let s = Statsd::new(StatsdConfig {
            addr: r.addr(),
            flavor,
            flush_interval_ms: 3_600_000,
            ..Default::default()
        });
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
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        timer_sample_rate: 0.5,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    });
    for _ in 0..2000 {
        s.record_timer("t", Duration::from_millis(1), &[]);
    }
    s.flush().unwrap();
    let n = r.drain().len();
    assert!(r.lines.iter().all(|l| l == "t:1|ms|@0.5"));
    assert!(
        (700..1300).contains(&n),
        "about half of 2000 sampled, got {n}"
    );
}

#[test]
fn lines_are_batched_into_datagrams_up_to_the_limit() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        max_datagram_bytes: 200,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    });
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
        let s = Statsd::new(StatsdConfig {
            addr: r.addr(),
            flavor,
            flush_interval_ms: 3_600_000,
            ..Default::default()
        });
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
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        queue_capacity: 4,
        flush_interval_ms: 3_600_000,
        ..Default::default()
    });
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
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        prefix: "svc".into(),
        common_tags: [
            ("env".to_owned(), "prod".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
        ]
        .into(),
        flush_interval_ms: 3_600_000,
        ..Default::default()
    });
    s.increment("hits", &[("zone", "b")]);
    s.flush().unwrap();
    assert_eq!(r.until(1), ["svc.hits:1|c|#env:prod,zone:b"]);
}

#[test]
fn timers_by_id_stop_once_and_bad_config_names_the_field() {
    let r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    let id = s.statsd.start_timer("op", &[]);
    assert!(s.statsd.stop_timer(id, true).is_ok());
    assert!(matches!(
        s.statsd.stop_timer(id, true),
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
        (
            StatsdConfig {
                max_series: 0,
                ..Default::default()
            },
            "max_series",
        ),
        (
            StatsdConfig {
                max_send_attempts: 0,
                ..Default::default()
            },
            "max_send_attempts",
        ),
    ] {
        let e = StatsdMetrics::new(cfg).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    assert!("weird".parse::<TagFlavor>().is_err());
    // A flavor's name is its configuration value, and reads back as it.
    for f in [TagFlavor::None, TagFlavor::DogStatsd, TagFlavor::Etsy] {
        let name = serde_json::to_value(f).unwrap();
        assert_eq!(f.to_string(), name.as_str().unwrap());
        assert_eq!(f.to_string().parse::<TagFlavor>().unwrap(), f);
    }
}

/// An address with nothing listening (a port just freed).
fn closed_addr() -> String {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

fn detail(s: &Statsd, key: &str) -> f64 {
    s.health()[0].details.get(key).copied().unwrap_or(f64::NAN)
}

#[test]
fn counter_totals_refused_by_a_late_daemon_go_out_with_a_later_flush() {
    let addr = closed_addr();
    let s = backend(addr.clone());
    for _ in 0..3 {
        for _ in 0..10 {
            s.increment("jobs", &[]);
        }
        s.flush().unwrap(); // refused: the total goes back to the series
    }
    assert_eq!(s.health()[0].details["reachable"], 0.0);
    assert_eq!(s.health()[0].status, HealthStatus::Unhealthy);
    let mut r = Receiver::bind(&addr);
    s.increment("jobs", &[]);
    // The loss of the last datagram sent before the daemon came up is
    // learnt at the next flush, which carries the total again.
    for _ in 0..3 {
        s.flush().unwrap();
    }
    r.drain();
    assert_eq!(r.counter_total("jobs"), 31.0, "{:?}", r.lines);
    assert_eq!(s.dropped(DropReason::SendFailed), 0);
    assert!(detail(&s, "lost_lines") >= 1.0);
    assert_eq!(detail(&s, "retry_pending_samples"), 0.0);
}

#[test]
fn values_given_up_after_the_attempt_limit_are_counted_in_samples() {
    let s = Statsd::new(StatsdConfig {
        addr: closed_addr(),
        flush_interval_ms: 3_600_000,
        max_send_attempts: 2,
        ..Default::default()
    });
    for _ in 0..7 {
        s.increment("jobs", &[]);
    }
    s.record_gauge("level", 3.0, &[]);
    s.adjust_gauge("level", 1.0, &[]);
    // Sent, refused and put back, sent again, refused and given up.
    for _ in 0..4 {
        s.flush().unwrap();
    }
    assert_eq!(
        s.dropped(DropReason::SendFailed),
        9,
        "7 increments, 2 gauge samples"
    );
    assert_eq!(
        detail(&s, "sent_lines"),
        0.0,
        "nothing was accepted for good"
    );
    assert!(detail(&s, "lost_lines") >= 2.0);
    let h = &s.health()[0];
    assert!(
        h.message
            .as_deref()
            .unwrap_or("")
            .contains("last send error"),
        "{h:?}"
    );
}

#[test]
fn a_daemon_closed_and_reopened_on_the_same_port_gets_every_increment_or_they_are_counted() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let addr = r.addr();
    let s = Statsd::new(StatsdConfig {
        addr: addr.clone(),
        flush_interval_ms: 3_600_000,
        max_send_attempts: 20,
        ..Default::default()
    });
    let mut recorded = 0u64;
    let mut total = 0.0;
    for round in 0..4 {
        for _ in 0..25 {
            s.increment("hits", &[]);
            recorded += 1;
        }
        s.flush().unwrap();
        if round == 1 {
            r.drain();
            total += r.counter_total("hits");
            drop(r); // the daemon goes away
            for _ in 0..10 {
                s.increment("hits", &[]);
                recorded += 1;
                s.flush().unwrap();
            }
            r = Receiver::bind(&addr); // and comes back on the same port
        }
    }
    for _ in 0..3 {
        s.flush().unwrap();
    }
    r.drain();
    total += r.counter_total("hits");
    let dropped = s.dropped(DropReason::SendFailed);
    assert_eq!(total as u64 + dropped, recorded, "{:?}", s.health());
    assert_eq!(dropped, 0, "the outage was shorter than the retry limits");
    let h = &s.health()[0];
    assert_eq!(h.details["reachable"], 1.0);
    assert_ne!(h.status, HealthStatus::Unhealthy);
}

#[test]
fn health_turns_healthy_again_once_sends_succeed_and_keeps_the_last_error() {
    let addr = closed_addr();
    let s = Statsd::new(StatsdConfig {
        addr: addr.clone(),
        flush_interval_ms: 20,
        ..Default::default()
    });
    s.increment("x", &[]);
    s.flush().unwrap();
    s.increment("x", &[]);
    s.flush().unwrap();
    assert_eq!(s.health()[0].status, HealthStatus::Unhealthy);
    let mut r = Receiver::bind(&addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let h = loop {
        s.increment("x", &[]);
        s.flush().unwrap();
        let h = s.health().remove(0);
        if h.status == HealthStatus::Healthy || Instant::now() > deadline {
            break h;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(h.status, HealthStatus::Healthy, "{h:?}");
    assert_eq!(h.details["reachable"], 1.0);
    assert!(h.details["last_error_age_s"] > 0.0);
    assert!(h.message.unwrap().contains("last send error"));
    r.drain();
    assert!(r.counter_total("x") >= 2.0);
}

#[test]
fn shutdown_with_the_daemon_down_counts_the_last_datagram_and_fails() {
    let s = backend(closed_addr());
    for _ in 0..5 {
        s.increment("only", &[]);
    }
    s.record_timer("t", Duration::from_millis(2), &[]);
    let e = s.shutdown().unwrap_err().to_string();
    assert!(e.contains("lost"), "{e}");
    assert_eq!(s.dropped(DropReason::SendFailed), 6);
    assert_eq!(detail(&s, "sent_lines"), 0.0);
    assert_eq!(detail(&s, "lost_lines"), 2.0);
}

#[test]
fn counters_and_gauges_go_out_before_queued_timers() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        // One line per datagram, 200 a second: most timers are still queued
        // when the backend shuts down.
        max_datagram_bytes: 64,
        max_datagrams_per_sec: 200,
        shutdown_timeout_ms: 60_000,
        ..Default::default()
    });
    let long = "a.timer.name.long.enough.to.fill.a.datagram.alone";
    for i in 0..600 {
        s.record_timer(long, Duration::from_millis(i % 50), &[]);
    }
    s.increment("c", &[]);
    s.record_gauge("g", 5.0, &[]);
    // Shut down while reading, so that the receiver's buffer never fills.
    let done = std::thread::spawn(move || s.shutdown());
    let lines = r.until(602).to_vec();
    done.join().unwrap().unwrap();
    assert_eq!(lines.len(), 602);
    let c = lines.iter().position(|l| l == "c:1|c").unwrap();
    let g = lines.iter().position(|l| l == "g:5|g").unwrap();
    assert!(c < 300 && g < 300, "counter at {c}, gauge at {g} of 602");
}

#[test]
fn pacing_spreads_a_burst_over_time() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let start = Instant::now();
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        max_datagram_bytes: 64,
        max_datagrams_per_sec: 500,
        ..Default::default()
    });
    let long = "a.histogram.name.long.enough.to.fill.a.datagram";
    for _ in 0..100 {
        s.record_histogram(long, 1.0, &[]); // one datagram each
    }
    s.flush().unwrap();
    // A lower bound the token bucket guarantees: 32 at once, then 500/s.
    assert!(start.elapsed() >= Duration::from_millis((100 - 32) * 2 - 5));
    assert_eq!(r.until(100).len(), 100);
}

#[test]
fn series_past_the_limit_fold_into_one_counted_overflow_series() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        max_series: 3,
        ..Default::default()
    });
    for i in 0..5 {
        s.increment("req", &[("user", &i.to_string())]);
        s.increment("req", &[("user", &i.to_string())]);
    }
    s.flush().unwrap();
    r.drain();
    let total: f64 = r
        .lines
        .iter()
        .filter_map(|l| l.split_once(':')?.1.split_once('|')?.0.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 10.0, "{:?}", r.lines);
    assert!(
        r.lines
            .iter()
            .any(|l| l == "metrics_statsd.series_overflow:4|c"),
        "{:?}",
        r.lines
    );
    let h = &s.health()[0];
    assert_eq!(h.details["series"], 3.0);
    assert_eq!(h.details["series_overflowed_samples"], 4.0);
    assert_eq!(h.overflowed_metrics, ["req"]);
}

#[test]
fn idle_series_are_evicted_and_come_back_when_recorded_again() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        idle_flushes: 2,
        ..Default::default()
    });
    s.increment("a", &[]);
    s.record_timer("t", Duration::from_millis(1), &[]);
    s.flush().unwrap();
    assert_eq!(detail(&s, "series"), 2.0);
    s.increment("b", &[]);
    s.flush().unwrap();
    s.increment("b", &[]);
    s.flush().unwrap();
    let h = &s.health()[0];
    assert_eq!(
        h.details["series"], 1.0,
        "a and t idle for 2 flushes: {h:?}"
    );
    assert_eq!(h.details["series_evicted"], 2.0);
    s.increment("a", &[]);
    s.flush().unwrap();
    r.drain();
    assert_eq!(r.counter_total("a"), 2.0);
    assert_eq!(r.counter_total("b"), 2.0);
}

#[test]
fn series_keys_never_collide_whatever_the_tag_values_hold() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    s.increment("n", &[("a", "x\0b\0\u{3}\0\0\0y")]);
    s.increment("n", &[("a", "x"), ("b", "y")]);
    s.increment("n", &[("a", "x")]);
    s.increment("nx", &[]);
    s.increment("n", &[("a", "x")]);
    s.flush().unwrap();
    let mut got = r.until(4).to_vec();
    got.sort();
    assert_eq!(
        got,
        [
            "n:1|c|#a:x,b:y",
            "n:1|c|#a:x_b_____y",
            "n:2|c|#a:x",
            "nx:1|c"
        ]
    );
    assert_eq!(s.health()[0].details["series"], 4.0);
}

#[test]
fn invalid_names_and_tags_are_refused_after_valid_traffic_on_the_same_series() {
    // Names and tags are checked where the key is built, not here: a key
    // that differs from a known series only by what the rules forbid is
    // refused before it reaches the table, and counted in its health.
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    let tags = [("route", "/a"), ("code", "200")];
    for _ in 0..100 {
        s.increment("req", &tags);
        s.increment("req", &[tags[1], tags[0]]);
        s.record_timer("lat", Duration::from_millis(3), &tags);
    }
    s.increment("req\n", &tags);
    s.increment("", &tags);
    s.increment("req", &[("route", "/a"), ("route", "/a")]);
    s.increment("req", &[("route", "/a"), ("", "200")]);
    s.increment("req", &[("route", "/a"), ("co\u{7}de", "200")]);
    s.record_timer("lat\0", Duration::from_millis(3), &tags);
    s.record_timer("lat", Duration::from_millis(3), &[tags[0], tags[0]]);
    // Values are checked on a series the table holds, as through a key.
    s.record_counter("req", -1.0, &tags);
    s.record_counter("req", f64::NAN, &[tags[1], tags[0]]);
    assert_eq!(s.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(s.dropped(DropReason::InvalidValue), 1);
    assert_eq!(s.dropped(DropReason::InvalidName), 3);
    assert_eq!(s.dropped(DropReason::DuplicateTag), 2);
    assert_eq!(s.dropped(DropReason::InvalidTag), 2);
    s.flush().unwrap();
    let got = r.until(101).to_vec();
    assert_eq!(got.iter().filter(|l| l.starts_with("req:")).count(), 1);
    assert!(
        got.contains(&"req:200|c|#code:200,route:/a".to_owned()),
        "{got:?}"
    );
    assert_eq!(
        got.iter().filter(|l| l.starts_with("lat:3|ms")).count(),
        100
    );
    assert_eq!(s.health()[0].details["series"], 2.0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_local_receiver_that_falls_behind_is_waited_for_not_overflowed() {
    // The receiver reads nothing for 300 ms: 20,000 lines (about 1 MB with
    // kernel overhead) would overflow its default buffer several times over
    // if sent unpaced; the sender watches its queue and waits instead.
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        queue_capacity: 20_000,
        max_datagrams_per_sec: 0,
        shutdown_timeout_ms: 60_000,
        ..Default::default()
    });
    for i in 0..20_000 {
        s.record_histogram("h", f64::from(i % 100), &[]);
    }
    let done = std::thread::spawn(move || s.shutdown());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.until(20_000).len(), 20_000);
    done.join().unwrap().unwrap();
}

#[test]
fn counters_are_flushed_on_time_while_timers_keep_the_queue_busy() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let r = Receiver::bind("127.0.0.1:0");
    let s = Arc::new(Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 50,
        queue_capacity: 1000,
        max_datagrams_per_sec: 100, // slow: the queue never empties
        ..Default::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                s.record_timer("t", Duration::from_millis(1), &[]);
            }
        })
    };
    s.increment("c", &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 65_536];
    let mut found = false;
    while !found && Instant::now() < deadline {
        if let Ok(k) = r.socket.recv(&mut buf) {
            found = String::from_utf8_lossy(&buf[..k])
                .split('\n')
                .any(|l| l == "c:1|c");
        }
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert!(found, "the counter waited for the queue to empty");
}

#[test]
fn outcomes_are_success_and_failure_counters_with_the_error_type() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    let tags = [("tier", "1"), ("region", "eu")];
    s.record_success("upload", &tags);
    s.record_success("upload", &[tags[1], tags[0]]); // same series
    s.record_failure("upload", "timeout", &tags);
    s.record_failure("upload", "timeout", &[tags[1], tags[0]]);
    s.record_failure("upload", "auth", &tags);
    // A caller's `error_type` tag is replaced by the failure's.
    s.record_failure(
        "upload",
        "auth",
        &[("error_type", "spoofed"), tags[0], tags[1]],
    );
    s.start("job", &[]).failure("io");
    s.start("job", &[]).success();
    drop(s.start("job", &[])); // abandoned
    s.flush().unwrap();
    let mut got: Vec<String> = r
        .until(7)
        .iter()
        .filter(|l| !l.contains("|ms"))
        .cloned()
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "job.failure:1|c|#error_type:abandoned",
            "job.failure:1|c|#error_type:io",
            "job.success:1|c",
            "upload.failure:2|c|#error_type:auth,region:eu,tier:1",
            "upload.failure:2|c|#error_type:timeout,region:eu,tier:1",
            "upload.success:2|c|#region:eu,tier:1",
        ]
    );
    assert_eq!(r.lines.iter().filter(|l| l.starts_with("job:")).count(), 3);
    assert_eq!(s.health()[0].total_dropped(), 0);
}

#[test]
fn a_stopped_timer_sends_its_duration_and_outcome_and_evictions_are_counted() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    let ok = s.statsd.start_timer("render", &[("fmt", "pdf")]);
    let bad = s.statsd.start_timer("render", &[("fmt", "pdf")]);
    std::thread::sleep(Duration::from_millis(5));
    let d = s.statsd.stop_timer(ok, true).unwrap();
    assert!(d >= Duration::from_millis(5), "{d:?}");
    s.statsd.stop_timer(bad, false).unwrap();
    s.flush().unwrap();
    let mut got = r.until(4).to_vec();
    got.sort();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], "render.failure:1|c|#error_type:timer,fmt:pdf");
    assert_eq!(got[1], "render.success:1|c|#fmt:pdf");
    for l in &got[2..] {
        let ms: f64 = l
            .strip_prefix("render:")
            .and_then(|l| l.strip_suffix("|ms|#fmt:pdf"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{l}"));
        assert!(ms >= 5.0, "{l}");
    }
    // The table holds at most 10,000 running timers: one more evicts the oldest.
    let first = s.statsd.start_timer("t", &[]);
    for _ in 0..10_000 {
        s.statsd.start_timer("t", &[]);
    }
    assert_eq!(s.dropped(DropReason::TimerEvicted), 1);
    assert!(s.statsd.stop_timer(first, true).is_err());
}

#[test]
fn bound_handles_share_the_series_of_their_key() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = backend(r.addr());
    let c = s.counter("req", &[("a", "1"), ("b", "2")]);
    for _ in 0..10 {
        c.increment();
    }
    c.add(0.5);
    s.increment("req", &[("b", "2"), ("a", "1")]); // by name, other order
    c.add(-1.0); // refused by the handle, counted
    let g = s.gauge("level", &[]);
    g.set(5.0);
    g.increment();
    s.gauge("delta", &[]).decrement();
    s.histogram("size", &[]).record(3.0);
    s.timer("lat", &[("t", "x")])
        .record(Duration::from_micros(2500));
    s.flush().unwrap();
    let mut got = r.until(5).to_vec();
    got.sort();
    assert_eq!(
        got,
        [
            "delta:-1|g",
            "lat:2.5|ms|#t:x",
            "level:6|g",
            "req:11.5|c|#a:1,b:2",
            "size:3|h"
        ]
    );
    assert_eq!(s.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(detail(&s, "series"), 5.0);
}

#[test]
fn a_bound_series_is_not_evicted_while_its_handle_lives() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        idle_flushes: 2,
        ..Default::default()
    });
    let c = s.counter("held", &[]);
    c.increment();
    s.increment("loose", &[]);
    for _ in 0..4 {
        s.flush().unwrap();
    }
    assert_eq!(detail(&s, "series"), 1.0, "only `loose` was idle");
    c.increment(); // the same series, still in the table
    s.increment("held", &[]);
    s.flush().unwrap();
    drop(c);
    for _ in 0..4 {
        s.flush().unwrap();
    }
    assert_eq!(detail(&s, "series"), 0.0, "idle once the handle is gone");
    r.drain();
    assert_eq!(r.counter_total("held"), 3.0, "{:?}", r.lines);
    assert_eq!(r.lines.iter().filter(|l| l.starts_with("held:")).count(), 2);
}

#[test]
fn handles_bound_past_the_limit_or_after_shutdown_count_every_sample() {
    let mut r = Receiver::bind("127.0.0.1:0");
    let s = Statsd::new(StatsdConfig {
        addr: r.addr(),
        flush_interval_ms: 3_600_000,
        max_series: 1,
        ..Default::default()
    });
    s.increment("first", &[]);
    let c = s.counter("second", &[]);
    c.increment();
    c.increment();
    s.flush().unwrap();
    let mut got = r.until(2).to_vec();
    got.sort();
    assert_eq!(got, ["first:1|c", "metrics_statsd.series_overflow:2|c"]);
    assert_eq!(detail(&s, "series_overflowed_samples"), 2.0);
    let bound = s.counter("first", &[]);
    s.shutdown().unwrap();
    bound.increment();
    c.increment();
    s.counter("third", &[]).increment();
    assert_eq!(s.dropped(DropReason::SendFailed), 3);
}
