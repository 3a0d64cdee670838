//! Recording into an existing series allocates nothing: a counting global
//! allocator (only in this test binary) proves it for every recording call.
//!
//! Only allocations of the thread under test count (a thread-local flag and
//! counter), so other tests of this binary, the test harness and the coarse
//! clock's thread cannot make it fail on a loaded machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::Metrics;

struct Counting;

thread_local! {
    // Const-initialised and without destructors: reading them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one allocation if this thread is under test.
fn note() {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_counter_sees_this_thread_and_only_this_thread() {
    let own = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert_eq!(own, 1, "an allocation of this thread is counted");
    let other = allocations_during(|| {
        std::thread::scope(|s| {
            s.spawn(|| drop(std::hint::black_box(vec![1u8; 64])));
        });
    });
    // Spawning a thread allocates on this thread too (its handle), but the
    // other thread's vector is not counted: fewer than if it were.
    let spawn_only = allocations_during(|| {
        std::thread::scope(|s| {
            s.spawn(|| ());
        });
    });
    assert_eq!(
        other, spawn_only,
        "another thread's allocations are not counted"
    );
}

#[test]
fn recording_into_existing_series_allocates_nothing() {
    // A manual clock keeps every sample in the same time bin.
    let clock = Arc::new(ManualClock::new(1_790_000_000_000));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock).unwrap());
    let tags = [("method", "GET"), ("code", "200")];
    let d = Duration::from_micros(1500);
    // The one handle a library holds.
    let metrics = Metrics::new(m.clone());
    let record_all = |m: &Metrics| {
        m.record_counter("c", 1.0, &tags);
        m.increment("c", &tags);
        m.record_gauge("g", 3.0, &tags);
        m.adjust_gauge("g", -1.0, &tags);
        m.adjust_gauge("g", 2.0, &tags);
        m.record_histogram("h", 17.0, &tags);
        m.record_timer("t", d, &tags);
        m.record_success("op", &tags);
        m.record_failure("op", "timeout", &tags);
    };
    let counter = metrics.counter("bound", &tags);
    let timer = metrics.timer("bound.t", &tags);
    // Guards record a duration and one outcome.
    let guards = |metrics: &Metrics| {
        metrics.start("guarded", &tags).success();
        metrics.start("guarded", &tags).failure("timeout");
        drop(metrics.start("guarded", &tags)); // abandoned
        metrics.time("guarded", &tags, || ());
    };
    // Warm up: create every series, bin and sketch bucket. A bin keeps its
    // first 128 samples as keys and allocates its bucket arrays (once, kept
    // for later bins) when more come: every series gets past that first.
    // Guards measure real time, so their timer series then sees 1 ns and
    // 1 h: the sketches' bucket arrays span whatever a guard measures here
    // (a new value beyond an array's ends grows it once, amortised; that
    // is not steady state).
    for _ in 0..130 {
        record_all(&metrics);
        counter.increment();
        timer.record(d);
        guards(&metrics);
    }
    metrics.record_timer("guarded", Duration::from_nanos(1), &tags);
    metrics.record_timer("guarded", Duration::from_secs(3600), &tags);
    for _ in 0..3 {
        record_all(&metrics);
        counter.increment();
        timer.record(d);
        guards(&metrics);
    }
    let n = allocations_during(|| {
        for _ in 0..1000 {
            record_all(&metrics);
            counter.increment();
            timer.record(d);
            guards(&metrics);
        }
    });
    assert_eq!(n, 0, "recording allocated {n} times");
    // The counter still counts (the test could fail if recording were a no-op).
    assert_eq!(m.counter_value("c", &tags), Some(2.0 * 1133.0));
    assert_eq!(m.counter_value("bound", &tags), Some(1133.0));
    let (ok, failed) = m.outcome_counts("guarded", &tags).unwrap();
    assert_eq!(
        (ok, failed["timeout"], failed["abandoned"]),
        (2266, 1133, 1133)
    );
}

/// SplitMix64 and Box-Muller: deterministic lognormal (σ = 2) samples.
struct Lognormal(u64);
impl Lognormal {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (2.0 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()).exp()
    }
}

#[test]
fn distributions_receiving_new_values_allocate_nothing_in_steady_state() {
    const T0: i64 = 1_790_000_000_000;
    let clock = Arc::new(ManualClock::new(T0));
    let memory =
        Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let m = Metrics::new(memory.clone());
    let tags = [("route", "/api")];
    let h = m.histogram("bound.h", &tags);
    let mut rng = Lognormal(3);
    // Warm up within one time bin: the sketches' ranges settle.
    for _ in 0..200_000 {
        let v = rng.next();
        m.record_histogram("h", v, &tags);
        h.record(v);
        m.record_timer("t", Duration::from_secs_f64(v / 1e3), &tags);
    }
    let n = allocations_during(|| {
        for _ in 0..20_000 {
            let v = rng.next();
            m.record_histogram("h", v, &tags);
            h.record(v);
            m.record_timer("t", Duration::from_secs_f64(v / 1e3), &tags);
        }
    });
    assert_eq!(n, 0, "new values in an open bin allocated {n} times");
    assert_eq!(memory.distribution("h", &tags).unwrap().count, 220_000);

    // Across bins: 32 simulated hours fill every ring (the day's sketch
    // ring keeps five 6 h blocks: 30 hours), then 2 more hours
    // (720 bins of 10 s) at 100 samples per bin are measured.
    let mut t = T0;
    let mut feed = |hours: i64, m: &Metrics| {
        for _ in 0..hours * 36_000 {
            t += 100;
            clock.set(t);
            m.record_histogram("h", rng.next(), &tags);
        }
    };
    feed(32, &m);
    let n = allocations_during(|| feed(2, &m));
    // Opening a bin seals the previous one into the buffer of a bin merged
    // away earlier, merges an aged bin into its coarser block through one
    // scratch buffer, and starts a new block in the buffer of the block that
    // aged out last: nothing is allocated (before: 189 in 720).
    assert_eq!(n, 0, "{n} allocations over 720 bin openings");
    assert_eq!(
        memory.distribution("h", &tags).unwrap().count,
        220_000 + 34 * 36_000
    );
}
