//! A small, realistic workload written against the protocol traits only, as
//! a library would be: a request handler with a latency distribution,
//! occasional failures of several kinds, response sizes and in-flight
//! requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics_protocol::{CollectorExt, InstrumentExt, MetricCollector, SuccessFailureTracker};

/// The timer of the handler.
pub const LATENCY: &str = "http.request.duration";
/// The operation whose success rate is tracked.
pub const OPERATION: &str = "http.request";

/// A pseudo-random source (xorshift), seeded per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The "library": handles one request and reports it.
fn handle(
    metrics: &dyn MetricCollector,
    tracker: &dyn SuccessFailureTracker,
    rng: &mut Rng,
    route: &str,
) {
    metrics.adjust_gauge("http.inflight", 1.0, &[]);
    let roll = rng.next();
    let outcome = metrics.timed(LATENCY, &[("route", route)], || {
        // Lognormal-ish latency: mostly a few ms, a long tail.
        let ms = (1.0 + 3.0 * rng.next()) * (1.0 + 20.0 * rng.next().powi(6));
        std::thread::sleep(Duration::from_micros((ms * 1000.0) as u64));
        match roll {
            r if r < 0.03 => Err("timeout"),
            r if r < 0.05 => Err("db_error"),
            _ => Ok((rng.next() * 50_000.0) as u64),
        }
    });
    match outcome {
        Ok(bytes) => {
            tracker.record_success(OPERATION, &[("route", route)]);
            metrics.record_counter("http.requests", 1.0, &[("route", route), ("status", "200")]);
            metrics.record_histogram("http.response.bytes", bytes as f64, &[("route", route)]);
        }
        Err(kind) => {
            tracker.record_failure(OPERATION, kind, &[("route", route)]);
            metrics.record_counter("http.requests", 1.0, &[("route", route), ("status", "500")]);
        }
    }
    metrics.adjust_gauge("http.inflight", -1.0, &[]);
}

/// Starts `n` workers that handle requests until `stop` is set.
pub fn start(
    n: usize,
    metrics: Arc<dyn MetricCollector>,
    tracker: Arc<dyn SuccessFailureTracker>,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    let routes = ["/api/users", "/api/orders", "/health"];
    (0..n)
        .map(|i| {
            let (metrics, tracker, stop) = (metrics.clone(), tracker.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 0x2545_F491_4F6C_DD1D));
                let jobs = metrics.counter("jobs.processed", &[("worker", &i.to_string())]);
                while !stop.load(Ordering::Relaxed) {
                    let route = routes[(rng.next() * routes.len() as f64) as usize % routes.len()];
                    handle(&*metrics, &*tracker, &mut rng, route);
                    jobs.inc();
                }
            })
        })
        .collect()
}
