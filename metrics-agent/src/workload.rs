//! A small, realistic workload written against one `Metrics` handle only, as
//! a library would be: a request handler with a latency distribution,
//! occasional failures of several kinds, response sizes and in-flight
//! requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics_protocol::Metrics;

/// The handler's operation: its timer series and its success rate.
pub const OPERATION: &str = "http.request";
/// The timer of the handler (the operation's own timer series).
pub const LATENCY: &str = OPERATION;
/// The database call, timed by a guard (success, or a failure of error type
/// `connection_lost`).
pub const DB_QUERY: &str = "db.query";

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

/// The "library": handles one request and reports it through one handle.
fn handle(metrics: &Metrics, rng: &mut Rng, route: &str) {
    metrics.adjust_gauge("http.inflight", 1.0, &[]);
    let roll = rng.next();
    if route != "/health" {
        // The database call: a guard that records its duration and outcome.
        let table = [("table", route.trim_start_matches("/api/"))];
        let query = metrics.start(DB_QUERY, &table);
        std::thread::sleep(Duration::from_micros((200.0 + 800.0 * rng.next()) as u64));
        if rng.next() < 0.01 {
            query.failure("connection_lost");
        } else {
            query.success();
        }
    }
    let tags = [("route", route)];
    // The request: its duration into the timer `http.request`, then one
    // success or one failure of the error's kind.
    let outcome = metrics.time_result(OPERATION, &tags, || {
        // Lognormal-ish latency: mostly a few ms, a long tail.
        let ms = (1.0 + 3.0 * rng.next()) * (1.0 + 20.0 * rng.next().powi(6));
        std::thread::sleep(Duration::from_micros((ms * 1000.0) as u64));
        match roll {
            r if r < 0.03 => Err("timeout"),
            r if r < 0.05 => Err("db_error"),
            _ => Ok((rng.next() * 50_000.0) as u64),
        }
    });
    let status = if outcome.is_ok() { "200" } else { "500" };
    metrics.record_counter(
        "http.requests",
        1.0,
        &[("route", route), ("status", status)],
    );
    if let Ok(bytes) = outcome {
        metrics.record_histogram("http.response.bytes", bytes as f64, &tags);
    }
    metrics.adjust_gauge("http.inflight", -1.0, &[]);
}

/// Starts `n` workers that handle requests until `stop` is set.
pub fn start(n: usize, metrics: Metrics, stop: Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    let routes = ["/api/users", "/api/orders", "/health"];
    (0..n)
        .map(|i| {
            let (metrics, stop) = (metrics.clone(), stop.clone());
            std::thread::spawn(move || {
                let seed = (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
                let jobs = metrics.counter("jobs.processed", &[("worker", &i.to_string())]);
                while !stop.load(Ordering::Relaxed) {
                    let route = routes[(rng.next() * routes.len() as f64) as usize % routes.len()];
                    handle(&metrics, &mut rng, route);
                    jobs.inc();
                }
            })
        })
        .collect()
}
