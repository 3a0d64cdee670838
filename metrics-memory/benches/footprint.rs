//! `cargo bench -p metrics-memory --bench footprint`: heap used by 100,000
//! counter series, by one distribution after 1,000,000 samples, and by one
//! distribution series with every bin of every ring filled (31 simulated
//! hours of lognormal σ = 2 samples at 100 and at 10,000 per 10 s),
//! measured with a counting allocator. (The time to export 10,000 series
//! is `metrics-exposition`'s `export` bench.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::Metrics;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: caller's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: caller's contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: caller's contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn report_memory() {
    let before = live();
    // Raise the per-name cardinality limit, or 98,000 of these would fold
    // into the overflow series.
    let config = MemoryConfig {
        cardinality_limit: 200_000,
        ..Default::default()
    };
    let m = Arc::new(MemoryMetrics::with_config(config).expect("valid config"));
    let w = Metrics::new(m.clone());
    for i in 0..100_000u32 {
        let id = i.to_string();
        w.record_counter("requests", 1.0, &[("user", &id), ("region", "eu")]);
    }
    assert_eq!(m.series_count(), 100_000);
    let used = live() - before;
    println!(
        "footprint: 100,000 counter series: {:.1} MiB ({} bytes per series)",
        used as f64 / 1048576.0,
        used / 100_000
    );
    drop((m, w));

    let before = live();
    let m = Metrics::new(Arc::new(MemoryMetrics::new()));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..1_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Latencies from 0.01 ms to 10 s, spread over six decades.
        let v = 10f64.powf((x % 6_000_000) as f64 / 1e6 - 2.0);
        m.record_histogram("latency", v, &[("route", "/api")]);
    }
    let used = live() - before;
    println!(
        "footprint: one distribution series after 1,000,000 samples (one time bin): {:.1} KiB",
        used as f64 / 1024.0
    );
}

/// Heap growth of one histogram series fed `per_10s` lognormal (σ = 2)
/// samples every 10 s for 31 simulated hours (every block of every ring
/// filled), and its peak.
fn full_distribution(per_10s: i64) -> (isize, isize) {
    const T0: i64 = 1_790_000_000_000;
    let clock = Arc::new(ManualClock::new(T0));
    let m = Metrics::new(Arc::new(
        MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).expect("valid config"),
    ));
    m.record_histogram("latency", 1.0, &[("route", "/api")]);
    let before = live();
    let mut peak = 0;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let step = 10_000 / per_10s;
    let n = 31 * 3600 * 1000 / step;
    for i in 1..n {
        clock.set(T0 + i * step);
        let (u1, u2) = (uniform(), uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        m.record_histogram("latency", (2.0 * z).exp(), &[("route", "/api")]);
        if i % (per_10s * 360) == 0 {
            peak = peak.max(live() - before);
        }
    }
    let used = live() - before;
    (used, peak.max(used))
}

fn main() {
    report_memory();
    for per_10s in [100, 10_000] {
        let (used, peak) = full_distribution(per_10s);
        println!(
            "footprint: one distribution series, every bin of every ring filled \
             ({per_10s} lognormal samples per 10 s, 31 h): {:.1} KiB (peak {:.1} KiB)",
            used as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
}
