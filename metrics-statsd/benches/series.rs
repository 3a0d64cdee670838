//! `cargo bench -p metrics-statsd --bench series`: what a large series
//! table costs. Prints, for SERIES distinct counter series (default
//! 1,000,000; `SERIES=200000 cargo bench ...` for a quicker run):
//!
//! - resident memory per series (RSS growth over creating them and their
//!   first flush, and after the idle ones are evicted);
//! - flush cost with every series changed, with 1,000 changed, with none;
//! - the latency of single `record_counter` calls on a hot series (median,
//!   99.9th and 99.99th percentiles, worst) while another thread creates
//!   new series (at most about 200,000 a second) and a third flushes in a
//!   loop.
//!
//! Sends go to a loopback socket a thread drains; pacing is off so that the
//! flush figures are CPU cost, not the configured send rate.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use metrics_protocol::{MetricCollector, Metrics};
use metrics_statsd::{StatsdConfig, StatsdMetrics};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn drain() -> (String, Arc<AtomicBool>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr").to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while !s.load(Ordering::Relaxed) {
            let _ = socket.recv(&mut buf);
        }
    });
    (addr, stop)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let n: usize = std::env::var("SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (addr, stop) = drain();
    let s = Arc::new(
        StatsdMetrics::new(StatsdConfig {
            addr,
            flush_interval_ms: 3_600_000,
            queue_capacity: 1024,
            max_series: 4 * n,        // new-only
            max_datagrams_per_sec: 0, // new-only
            shutdown_timeout_ms: 60_000,
            ..Default::default()
        })
        .expect("backend"),
    );
    let m = Metrics::new(s.clone());
    let ids: Vec<String> = (0..n).map(|i| format!("{i:07}")).collect();
    let rss0 = rss_bytes();
    let t = Instant::now();
    let mut worst = Duration::ZERO;
    for id in &ids {
        let c = Instant::now();
        m.record_counter("bench.hits", 1.0, &[("id", id)]);
        worst = worst.max(c.elapsed());
    }
    let created = t.elapsed();
    let t = Instant::now();
    let _ = s.flush();
    let first_flush = t.elapsed();
    let rss1 = rss_bytes();
    println!(
        "{n} series created in {} (worst single call {}); RSS +{:.1} MB, {:.0} bytes per series",
        ms(created),
        ms(worst),
        (rss1 - rss0) as f64 / 1e6,
        (rss1 - rss0) as f64 / n as f64
    );

    println!("flush, all {n} series changed: {}", ms(first_flush));
    for id in ids.iter().step_by((n / 1000).max(1)) {
        m.record_counter("bench.hits", 1.0, &[("id", id)]);
    }
    let t = Instant::now();
    let _ = s.flush();
    println!("flush, 1,000 series changed: {}", ms(t.elapsed()));
    let t = Instant::now();
    let _ = s.flush();
    println!("flush, nothing changed: {}", ms(t.elapsed()));

    // Worst caller latency: a hot series recorded in a loop while new series
    // are created and flushes run back to back.
    let done = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (s, done) = (s.clone(), done.clone());
        thread::spawn(move || {
            let mut flushes = 0u32;
            while !done.load(Ordering::Relaxed) {
                let _ = s.flush();
                flushes += 1;
                thread::sleep(Duration::from_millis(5));
            }
            flushes
        })
    };
    let creator = {
        let (m, done) = (m.clone(), done.clone());
        thread::spawn(move || {
            let mut i = 0u64;
            // At most about 200,000 new series a second, in both versions.
            while !done.load(Ordering::Relaxed) {
                for _ in 0..1000 {
                    m.record_counter("bench.new", 1.0, &[("id", &i.to_string())]);
                    i += 1;
                }
                thread::sleep(Duration::from_millis(5));
            }
            i
        })
    };
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 24);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        let c = Instant::now();
        m.record_counter("bench.hits", 1.0, &[("id", "0000000")]);
        lat.push(c.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
    }
    done.store(true, Ordering::Relaxed);
    let flushes = flusher.join().unwrap_or(0);
    let new = creator.join().unwrap_or(0);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "hot-series record with {n}+ series, {flushes} flushes and {new} new series alongside: \
         {} calls, median {} ns, p99.9 {} ns, p99.99 {} ns, worst {:.2} ms",
        lat.len(),
        pct(0.5),
        pct(0.999),
        pct(0.9999),
        f64::from(*lat.last().unwrap_or(&0)) / 1e6
    );

    // Idle series: nothing recorded for a while.
    for _ in 0..12 {
        let _ = s.flush();
    }
    let h = &s.health()[0];
    println!(
        "after 12 idle flushes: {} series in the table, RSS {:.1} MB above the start",
        h.details.get("series").copied().unwrap_or(f64::NAN),
        (rss_bytes().saturating_sub(rss0)) as f64 / 1e6
    );
    let _ = s.shutdown();
    stop.store(true, Ordering::Relaxed);
}
