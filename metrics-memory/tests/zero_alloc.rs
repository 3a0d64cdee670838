//! Recording into an existing series allocates nothing: a counting global
//! allocator (only in this test binary) proves it for every recording call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::{CollectorExt, InstrumentExt, MetricCollector, SuccessFailureTracker};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

#[test]
fn recording_into_existing_series_allocates_nothing() {
    // A manual clock keeps every sample in the same time bin.
    let clock = Arc::new(ManualClock::new(1_790_000_000_000));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock).unwrap());
    let tags = [("method", "GET"), ("code", "200")];
    let d = Duration::from_micros(1500);
    let record_all = |m: &MemoryMetrics| {
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
    let counter = m.counter("bound", &tags);
    let timer = m.timer("bound.t", &tags);
    // Warm up: create every series, bin and sketch bucket.
    for _ in 0..3 {
        record_all(&m);
        counter.inc();
        timer.record(d);
    }
    let n = allocations_during(|| {
        for _ in 0..1000 {
            record_all(&m);
            counter.inc();
            timer.record(d);
        }
    });
    assert_eq!(n, 0, "recording allocated {n} times");
    // The counter still counts (the test could fail if recording were a no-op).
    assert_eq!(m.counter_value("c", &tags), Some(2.0 * 1003.0));
    assert_eq!(m.counter_value("bound", &tags), Some(1003.0));
}
