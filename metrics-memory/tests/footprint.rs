//! The memory bound of one distribution series, measured with a counting
//! allocator (live bytes allocated by this thread), with every bin of every
//! ring filled: 25 simulated hours of lognormal (σ = 2) samples, 100 per
//! 10 s. Its quantiles are checked against an exact computation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use metrics_memory::{Clock, ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::Metrics;
use metrics_protocol::app::MetricsAggregator;

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n as i64 - l.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.with(Cell::get)
}

/// SplitMix64 and Box-Muller: deterministic lognormal samples.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn lognormal(&mut self, sigma: f64) -> f64 {
        let (u1, u2) = (self.next(), self.next());
        let n = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (sigma * n).exp()
    }
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
}

const T0: i64 = 1_790_000_000_000;

#[test]
fn a_full_distribution_series_stays_under_32_kib_with_quantiles_in_bounds() {
    let clock = Arc::new(ManualClock::new(T0));
    let m = Arc::new(
        MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).expect("config"),
    );
    let w = Metrics::new(m.clone());
    let mut rng = Rng(42);
    let mut all: Vec<(i64, f64)> = Vec::with_capacity(900_000);
    // The series exists before counting starts: what is measured is what
    // filling its rings costs.
    w.record_histogram("latency", 1.0, &[("route", "/api")]);
    all.push((T0, 1.0));
    let before = live();
    let mut peak = 0;
    // 25 hours, 100 samples per 10 s (one every 100 ms).
    for i in 1..(25 * 3600 * 10) {
        clock.set(T0 + i * 100);
        let v = rng.lognormal(2.0);
        w.record_histogram("latency", v, &[("route", "/api")]);
        all.push((T0 + i * 100, v));
        if i % 3600 == 0 {
            peak = peak.max(live() - before);
        }
    }
    let used = live() - before;
    peak = peak.max(used);
    eprintln!("footprint: {used} bytes, peak {peak}");
    assert!(
        peak <= 32 * 1024,
        "one distribution series grew by {used} bytes (peak {peak}), over 32 KiB"
    );

    let now = clock.now_millis();
    let mut values: Vec<f64> = all.iter().map(|(_, v)| *v).collect();
    values.sort_by(f64::total_cmp);
    let s = m.metric_summary("latency", None).expect("all-time summary");
    assert_eq!(s.count, values.len() as u64);
    for (q, got) in [(0.5, s.p50), (0.9, s.p90), (0.95, s.p95), (0.99, s.p99)] {
        let (want, got) = (exact(&values, q), got.expect("quantile"));
        assert!(
            ((got - want) / want).abs() <= 0.005,
            "all-time p{q}: exact {want}, got {got}"
        );
    }
    // Window quantiles cover the sketch blocks that start in the window:
    // 10 s bins for 5 minutes, 15 minute blocks for the hour, 6 hour blocks
    // for the day (the crate docs); count, sum, min and max cover its bins.
    for (window, block) in [(300i64, 10i64), (3600, 900), (86_400, 21_600)] {
        let s = m
            .metric_summary("latency", Some(Duration::from_secs(window as u64)))
            .expect("window summary");
        let since = now - window * 1000;
        let covered = since.div_euclid(block * 1000) * block * 1000;
        let covered = if covered < since {
            covered + block * 1000
        } else {
            covered
        };
        let mut w: Vec<f64> = all
            .iter()
            .filter(|(t, _)| *t >= covered)
            .map(|(_, v)| *v)
            .collect();
        w.sort_by(f64::total_cmp);
        for (q, got) in [(0.5, s.p50), (0.9, s.p90), (0.95, s.p95), (0.99, s.p99)] {
            let (want, got) = (exact(&w, q), got.expect("quantile"));
            assert!(
                ((got - want) / want).abs() <= 0.01,
                "{window} s window p{q}: exact {want}, got {got}"
            );
        }
    }
}

#[test]
fn full_counter_and_gauge_series_stay_under_8_kib() {
    let clock = Arc::new(ManualClock::new(T0));
    let m = Arc::new(
        MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).expect("config"),
    );
    let w = Metrics::new(m.clone());
    w.record_counter("requests", 1.0, &[("code", "200")]);
    w.record_gauge("depth", 1.0, &[("queue", "a")]);
    let before = live();
    // 25 hours, one sample of each per second: every bin of every ring.
    for i in 1..(25 * 3600) {
        clock.set(T0 + i * 1000);
        w.record_counter("requests", 1.0, &[("code", "200")]);
        w.record_gauge("depth", (i % 7) as f64, &[("queue", "a")]);
    }
    let used = live() - before;
    eprintln!("footprint: a counter and a gauge: {used} bytes");
    assert!(used <= 2 * 8 * 1024, "{used} bytes for two full series");
    assert_eq!(
        m.counter_value("requests", &[("code", "200")]),
        Some(90_000.0)
    );
}
