//! Counters and gauges stay exact under concurrency.

use std::sync::Arc;
use std::thread;

use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;

#[test]
fn eight_threads_times_a_million_increments_read_back_exactly() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 1_000_000;
    let m = Arc::new(MemoryMetrics::new());
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let m = Metrics::new(m.clone());
            thread::spawn(move || {
                // Half the threads record by name, half through a bound handle.
                if i % 2 == 0 {
                    for _ in 0..PER_THREAD {
                        m.increment("hits", &[("shard", "a"), ("zone", "eu")]);
                    }
                } else {
                    let c = m.counter("hits", &[("zone", "eu"), ("shard", "a")]);
                    for _ in 0..PER_THREAD {
                        c.increment();
                    }
                }
                for _ in 0..1000 {
                    m.adjust_gauge("inflight", 1.0, &[]);
                    m.adjust_gauge("inflight", -1.0, &[]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        m.counter_value("hits", &[("shard", "a"), ("zone", "eu")]),
        Some(8_000_000.0)
    );
    assert_eq!(m.gauge_value("inflight", &[]), Some(0.0));
}

#[test]
fn mixed_increments_past_the_packed_spill_mark_read_back_exactly() {
    // Whole increments below 2^15 share one packed atomic word that spills
    // every 2^23 increments; 10,000,000 of them cross that mark, racing
    // with fractional and large increments that take the other path.
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 2_500_000;
    let m = Arc::new(MemoryMetrics::new());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = Metrics::new(m.clone());
            thread::spawn(move || {
                let c = m.counter("bytes", &[]);
                for i in 0..PER_THREAD {
                    match i % 1000 {
                        0 => c.add(0.5),
                        1 => c.add(65_536.0),
                        _ => c.increment(),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let per_thread = f64::from(PER_THREAD);
    let per_mille = per_thread / 1000.0;
    let expected = f64::from(THREADS)
        * (per_mille * 0.5 + per_mille * 65_536.0 + (per_thread - 2.0 * per_mille));
    assert_eq!(m.counter_value("bytes", &[]), Some(expected));
    assert_eq!(
        m.series("bytes")[0].count,
        u64::from(THREADS * PER_THREAD),
        "every increment counted once"
    );
}
