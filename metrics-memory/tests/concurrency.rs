//! Counters and gauges stay exact under concurrency.

use std::sync::Arc;
use std::thread;

use metrics_memory::MemoryMetrics;
use metrics_protocol::{InstrumentExt, MetricCollector};

#[test]
fn eight_threads_times_a_million_increments_read_back_exactly() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 1_000_000;
    let m = Arc::new(MemoryMetrics::new());
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let m = m.clone();
            thread::spawn(move || {
                // Half the threads record by name, half through a bound handle.
                if i % 2 == 0 {
                    for _ in 0..PER_THREAD {
                        m.increment("hits", &[("shard", "a"), ("zone", "eu")]);
                    }
                } else {
                    let c = m.counter("hits", &[("zone", "eu"), ("shard", "a")]);
                    for _ in 0..PER_THREAD {
                        c.inc();
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
