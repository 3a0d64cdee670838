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

/// Sums of the counter `hits`: (value, count) as read now.
fn hits(m: &MemoryMetrics) -> (f64, u64) {
    let value = m.counter_value("hits", &[("zone", "eu")]).unwrap_or(0.0);
    let count = m.series("hits").first().map_or(0, |s| s.count);
    (value, count)
}

#[test]
fn bound_counter_totals_stay_exact_while_threads_come_and_go_and_readers_export() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use metrics_memory::{Clock, ManualClock, MemoryConfig};
    use metrics_query::RangeRequest;
    use metrics_query::snapshot::Snapshots;

    /// On a 15 minute edge, so on every bin edge of the default windows.
    const T0: i64 = 1_800_000_000_000;
    const WAVES: usize = 6;
    const PER_WAVE: usize = 4;
    const PER_THREAD: u64 = 40_000;
    /// Every thread of a wave moves the clock on by 100 ms every 1,000
    /// records (96 s in all): bins are recycled (their slots
    /// taken) while others record.
    const TICK_EVERY: u64 = 1_000;
    const TAGS: [(&str, &str); 1] = [("zone", "eu")];

    let clock = Arc::new(ManualClock::new(T0));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let metrics = Metrics::new(m.clone());
    let shared = metrics.counter("hits", &TAGS);

    // Readers: values and counts never go backwards, and one walks the
    // snapshot an exporter reads (every series, every reading) in a loop.
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (m, done) = (m.clone(), done.clone());
            thread::spawn(move || {
                let (mut last, mut reads) = ((0.0, 0), 0u64);
                while !done.load(Ordering::Acquire) || reads == 0 {
                    let now = hits(&m);
                    assert!(
                        now.0 >= last.0 && now.1 >= last.1,
                        "a read went backwards: {last:?} then {now:?}"
                    );
                    last = now;
                    if r == 0 {
                        let snapshot = m.snapshot();
                        let mut hits_total = None;
                        for i in 0..snapshot.len() {
                            if snapshot.series(i).is_some_and(|s| s.name == "hits") {
                                snapshot.read(i, &mut |r| hits_total = Some(r.value));
                            }
                        }
                        assert!(hits_total.is_some_and(|v| v >= last.0), "{hits_total:?}");
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    // One thread records through the shared handle for the whole run.
    let steady = {
        let (c, done) = (shared.clone(), done.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(Ordering::Acquire) {
                c.increment();
                n += 1;
            }
            n
        })
    };

    // Waves of threads that start, record and exit while the others run:
    // through a clone of the shared handle, a handle of their own bound
    // on the spot, or by name; whole increments of 1 and 3 and a few
    // fractional ones (the packed word's and the plain fields' paths).
    let mut expected_value = 0.0;
    let mut expected_count = 0u64;
    for wave in 0..WAVES {
        let threads: Vec<_> = (0..PER_WAVE)
            .map(|i| {
                let (shared, metrics, clock) = (shared.clone(), metrics.clone(), clock.clone());
                thread::spawn(move || {
                    let own = metrics.counter("hits", &TAGS);
                    for n in 1..=PER_THREAD {
                        let v = match n % 100 {
                            0 => 0.5,
                            1..=10 => 3.0,
                            _ => 1.0,
                        };
                        match (wave + i) % 3 {
                            0 => shared.add(v),
                            1 => own.add(v),
                            _ => metrics.record_counter("hits", v, &TAGS),
                        }
                        if n % TICK_EVERY == 0 {
                            clock.advance(Duration::from_millis(100));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let per_hundred = (PER_THREAD / 100) as f64;
        expected_value +=
            PER_WAVE as f64 * (per_hundred * 0.5 + per_hundred * 10.0 * 3.0 + per_hundred * 89.0);
        expected_count += PER_WAVE as u64 * PER_THREAD;
    }
    done.store(true, Ordering::Release);
    let steady = steady.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    expected_value += steady as f64;
    expected_count += steady;

    assert_eq!(hits(&m), (expected_value, expected_count));
    // The bins say the same: every increment is in exactly one of them.
    let end = clock.now_millis() + 10_000;
    let q = RangeRequest {
        name: "hits".into(),
        tags: Vec::new(),
        start: chrono::DateTime::from_timestamp_millis(T0).unwrap(),
        end: chrono::DateTime::from_timestamp_millis(end).unwrap(),
        step: Duration::from_secs(10),
        group_by: None,
        instance: Default::default(),
    };
    let got = m.range_query(&q).unwrap();
    let (count, sum) = got[0]
        .bins
        .iter()
        .fold((0, 0.0), |(c, s), b| (c + b.count, s + b.sum));
    assert_eq!((count, sum), (expected_count, expected_value));
    assert!(got[0].bins.len() > 3, "the run crossed several bins");
}
