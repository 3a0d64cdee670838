//! `cargo bench -p metrics-statsd`: caller-side cost of one record, ours
//! side by side with cadence's buffered UDP sink and the `statsd` crate,
//! all sending to a loopback UDP socket that a thread drains. Also prints
//! datagrams per 10,000 records for each.
//!
//! Ours records through the `Metrics` handle a library holds: by name
//! (`ours`: the key is checked and hashed at the call), by a constant key
//! (`ours-key`) and through a bound handle (`ours-bound`).

use std::hint::black_box;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use cadence::prelude::*;
use cadence::{BufferedUdpMetricSink, QueuingMetricSink, StatsdClient};
use criterion::{Criterion, criterion_group, criterion_main};
use metrics_protocol::backend::Value;
use metrics_protocol::{Key, MetricCollector, Metrics};
use metrics_statsd::{StatsdConfig, StatsdMetrics};

/// A loopback socket drained by a thread that counts datagrams.
struct Drain {
    addr: String,
    datagrams: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drain {
    fn start() -> Drain {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr").to_string();
        let datagrams = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (datagrams.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    d.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Drain {
            addr,
            datagrams,
            stop,
        }
    }

    /// Datagrams received while `f` runs (and shortly after).
    fn count(&self, f: impl FnOnce()) -> u64 {
        let before = self.datagrams.load(Ordering::Relaxed);
        f();
        thread::sleep(Duration::from_millis(200));
        self.datagrams.load(Ordering::Relaxed) - before
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn ours(addr: &str) -> StatsdMetrics {
    StatsdMetrics::new(StatsdConfig {
        addr: addr.to_owned(),
        ..Default::default()
    })
    .expect("ours")
}

fn cadence_client(addr: &str) -> StatsdClient {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket.set_nonblocking(true).expect("nonblocking");
    let sink = BufferedUdpMetricSink::from(addr, socket).expect("sink");
    StatsdClient::from_sink("", sink)
}

const TAGS: [(&str, &str); 2] = [("method", "GET"), ("code", "200")];
const REQUESTS: Key<'static> =
    Key::from_static("api.requests", &[("code", "200"), ("method", "GET")]);

fn send(c: &mut Criterion) {
    let drain = Drain::start();
    let addr = drain.addr.clone();
    let per_10k = |name: &str, n: u64| println!("datagrams per 10,000 records: {name}: {n}");

    let o = Metrics::new(Arc::new(ours(&addr)));
    per_10k(
        "ours counter",
        drain.count(|| {
            for _ in 0..10_000 {
                o.record_counter("api.requests", 1.0, &TAGS);
            }
            let _ = o.flush();
        }),
    );
    per_10k(
        "ours timer",
        drain.count(|| {
            for _ in 0..10_000 {
                o.record_timer("api.latency", Duration::from_micros(1500), &TAGS);
            }
            let _ = o.flush();
        }),
    );
    let cad = cadence_client(&addr);
    per_10k(
        "cadence buffered counter",
        drain.count(|| {
            for _ in 0..10_000 {
                let _ = cad
                    .count_with_tags("api.requests", 1)
                    .with_tag("method", "GET")
                    .with_tag("code", "200")
                    .try_send();
            }
            let _ = cad.flush();
        }),
    );
    let sd = statsd::Client::new(addr.as_str(), "").expect("statsd client");
    per_10k(
        "statsd crate counter",
        drain.count(|| {
            for _ in 0..10_000 {
                sd.incr("api.requests");
            }
        }),
    );

    let mut g = c.benchmark_group("send");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("counter_2tags/ours", |b| {
        b.iter(|| o.record_counter(black_box("api.requests"), 1.0, &TAGS))
    });
    g.bench_function("counter_2tags/ours-key", |b| {
        b.iter(|| o.record(black_box(&REQUESTS), Value::Counter(1.0)))
    });
    let bound = o.counter("api.requests", &TAGS);
    g.bench_function("counter_2tags/ours-bound", |b| {
        b.iter(|| black_box(&bound).increment())
    });
    g.bench_function("counter_2tags/cadence", |b| {
        b.iter(|| {
            cad.count_with_tags(black_box("api.requests"), 1)
                .with_tag("method", "GET")
                .with_tag("code", "200")
                .try_send()
        })
    });
    let queued = StatsdClient::from_sink(
        "",
        QueuingMetricSink::from({
            let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
            socket.set_nonblocking(true).expect("nonblocking");
            BufferedUdpMetricSink::from(addr.as_str(), socket).expect("sink")
        }),
    );
    g.bench_function("counter_2tags/cadence-queuing", |b| {
        b.iter(|| {
            queued
                .count_with_tags(black_box("api.requests"), 1)
                .with_tag("method", "GET")
                .with_tag("code", "200")
                .try_send()
        })
    });
    g.bench_function("counter_2tags/statsd", |b| {
        b.iter(|| sd.incr(black_box("api.requests")))
    });
    g.bench_function("timer_2tags/ours", |b| {
        b.iter(|| o.record_timer(black_box("api.latency"), Duration::from_micros(1500), &TAGS))
    });
    g.bench_function("timer_2tags/cadence", |b| {
        b.iter(|| {
            cad.time_with_tags(black_box("api.latency"), Duration::from_micros(1500))
                .with_tag("method", "GET")
                .with_tag("code", "200")
                .try_send()
        })
    });
    g.finish();
    let h = &o.health()[0];
    println!(
        "ours after the run: dropped {:?}, sent {} lines",
        h.dropped, h.details["sent_lines"]
    );
}

criterion_group!(benches, send);
criterion_main!(benches);
