//! Process-wide install (its own test binary: a global recorder is set once
//! per process).

use std::sync::Arc;

use metrics_bridge::{InstallError, Recorder};
use metrics_memory::MemoryMetrics;

#[test]
fn installs_once_for_every_thread_and_refuses_a_second_recorder() {
    let memory = Arc::new(MemoryMetrics::new());
    let recorder = metrics_bridge::install(memory.clone()).expect("first install");

    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for _ in 0..250 {
                    metrics::counter!("global.hits", "thread" => "any").increment(1);
                }
                metrics::gauge!("global.thread", "t" => t.to_string()).set(f64::from(t));
            })
        })
        .collect();
    for t in threads {
        t.join().expect("recording thread");
    }
    assert_eq!(
        memory.counter_value("global.hits", &[("thread", "any")]),
        Some(1000.0)
    );
    assert_eq!(
        memory.gauge_value("global.thread", &[("t", "3")]),
        Some(3.0)
    );
    assert_eq!(recorder.stats().cached_keys, 5);

    let other = Arc::new(MemoryMetrics::new());
    assert!(matches!(
        Recorder::new(other.clone()).install(),
        Err(InstallError::AlreadyInstalled)
    ));
    metrics::counter!("global.hits", "thread" => "any").increment(1);
    assert_eq!(other.series_count(), 0);
    assert_eq!(
        memory.counter_value("global.hits", &[("thread", "any")]),
        Some(1001.0)
    );
}
