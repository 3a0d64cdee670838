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
use metrics_protocol::{InstrumentExt, MetricCollector, SuccessFailureTracker};

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
    let record_all = |m: &MemoryMetrics| {
        m.record_counter("c", 1.0, &tags);
        m.increment("c", &tags);
        m.record_gauge("g", 3.0, &tags);
        m.decrement("g", &tags);
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
