//! The memory bound of one distribution series, measured with a counting
//! allocator (live bytes allocated by this thread), with every bin of every
//! ring filled: 31 simulated hours (the day's sketch ring keeps five 6 h
//! blocks) of lognormal (σ = 2) samples, 100 per 10 s. Its quantiles are checked against an exact computation.

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
    let mut all: Vec<(i64, f64)> = Vec::with_capacity(1_120_000);
    // The series exists before counting starts: what is measured is what
    // filling its rings costs.
    w.record_histogram("latency", 1.0, &[("route", "/api")]);
    all.push((T0, 1.0));
    let before = live();
    let mut peak = 0;
    // 31 hours, 100 samples per 10 s (one every 100 ms).
    for i in 1..(31 * 3600 * 10) {
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
    // Window quantiles cover the whole window, as count, sum, min and max
    // do (its bins): the sketch blocks starting in it (10 s bins for 5
    // minutes, 15 minute blocks for the hour, 6 hour blocks for the day)
    // and a share of the block straddling its start for the rest. The
    // stated error: 1 % of a value whose rank is off by at most the
    // samples drawn from that block.
    for (window, block) in [(300i64, 10i64), (3600, 900), (86_400, 21_600)] {
        let s = m
            .metric_summary("latency", Some(Duration::from_secs(window as u64)))
            .expect("window summary");
        assert_eq!(s.quantiles_cover, s.covers, "{window} s window");
        let from = now - s.covers.expect("covers").as_millis() as i64;
        let whole = (from + block * 1000 - 1).div_euclid(block * 1000) * block * 1000;
        let drawn = all.iter().filter(|(t, _)| *t >= from && *t < whole).count();
        let mut w: Vec<f64> = all
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, v)| *v)
            .collect();
        w.sort_by(f64::total_cmp);
        assert_eq!(s.count, w.len() as u64);
        for (q, got) in [(0.5, s.p50), (0.9, s.p90), (0.95, s.p95), (0.99, s.p99)] {
            let got = got.expect("quantile");
            let rank = ((q * w.len() as f64).ceil() as usize).clamp(1, w.len()) - 1;
            let lo = w[rank.saturating_sub(drawn)] * 0.99;
            let hi = w[(rank + drawn).min(w.len() - 1)] * 1.01;
            assert!(
                (lo..=hi).contains(&got),
                "{window} s window p{q}: {got} outside [{lo}, {hi}] ({drawn} drawn)"
            );
        }
    }
}

/// Adversarial values: both signs of a wide lognormal (σ = 2, 15 decades
/// between p0.001 and p99.999 of each sign), zeros, and 10 % extremes
/// (1e±300, `f64::MAX`, `f64::MIN_POSITIVE`, both signs).
fn adversarial(rng: &mut Rng, i: i64) -> f64 {
    const FAR: [f64; 8] = [
        1e300,
        -1e300,
        1e-300,
        -1e-300,
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
    ];
    match i % 20 {
        0 => FAR[(i / 20 % 8) as usize],
        1 => 0.0,
        2..=7 => -rng.lognormal(2.0),
        _ => rng.lognormal(2.0),
    }
}

/// Worse: both signs alike, each spread evenly over 5 decades (log-uniform:
/// every bucket of the range in use, the most buckets a spread that wide
/// fills), zeros, and 10 % extremes over 34 values per sign (1e±100 to
/// 1e±298, `f64::MAX`, `f64::MIN_POSITIVE`): more than the 32 far buckets
/// a sign keeps.
fn spread(rng: &mut Rng, i: i64) -> f64 {
    let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
    match i % 20 {
        0 => {
            let j = (i / 20) % 68;
            let e = (j / 2) as i32;
            let mag = match e {
                0 => f64::MAX,
                1 => f64::MIN_POSITIVE,
                e if e % 2 == 0 => 10f64.powi(100 + 6 * e),
                e => 10f64.powi(-100 - 6 * e),
            };
            if j % 2 == 0 { mag } else { -mag }
        }
        1 => 0.0,
        _ => sign * 10f64.powf((rng.next() - 0.5) * 5.0),
    }
}

#[test]
fn full_series_of_adversarial_values_stay_within_32_kib_with_exact_extremes() {
    for (name, values_of) in [
        ("adversarial", adversarial as fn(&mut Rng, i64) -> f64),
        ("spread", spread),
    ] {
        let clock = Arc::new(ManualClock::new(T0));
        let m = Arc::new(
            MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).expect("config"),
        );
        let w = Metrics::new(m.clone());
        let mut rng = Rng(7);
        let mut values: Vec<f64> = Vec::with_capacity(1_120_000);
        w.record_histogram("wide", 1.0, &[]);
        values.push(1.0);
        let before = live();
        let mut peak = 0;
        // 31 hours, 100 samples per 10 s: every bin of every ring filled.
        for i in 1..(31 * 3600 * 10) {
            clock.set(T0 + i * 100);
            let v = values_of(&mut rng, i);
            w.record_histogram("wide", v, &[]);
            values.push(v);
            if i % 3600 == 0 {
                peak = peak.max(live() - before);
            }
        }
        let used = live() - before;
        peak = peak.max(used);
        eprintln!("footprint: {name} distribution: {used} bytes, peak {peak}");
        // Measured: adversarial 31,160 bytes, spread 32,335 (lognormal of
        // one sign: 21,183).
        assert!(
            peak <= 32 * 1024,
            "{name}: a distribution series grew by {used} bytes (peak {peak}), over 32 KiB"
        );
        values.sort_by(f64::total_cmp);
        let s = m.metric_summary("wide", None).expect("all-time summary");
        for (q, got) in [(0.5, s.p50), (0.9, s.p90), (0.95, s.p95), (0.99, s.p99)] {
            let (want, got) = (exact(&values, q), got.expect("quantile"));
            let err = if want == 0.0 {
                got.abs()
            } else {
                ((got - want) / want).abs()
            };
            assert!(
                err <= 0.005,
                "{name}: all-time p{q}: exact {want:e}, got {got:e}"
            );
        }
        assert_eq!((s.min, s.max), (-f64::MAX, f64::MAX), "{name}");
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
