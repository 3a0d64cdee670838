//! A small, realistic workload written against one `Metrics` handle only, as
//! a library would be: a request handler with a latency distribution,
//! occasional failures of several kinds, response sizes and in-flight
//! requests. One component, the response cache, is instrumented with the
//! `metrics` crate's macros instead, as many published crates are: its
//! numbers reach the same backends through the bridge the main program
//! installs (`Agent::install_metrics_recorder`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use metrics_protocol::Metrics;

/// The handler's operation: its timer series and its success rate.
pub const OPERATION: &str = "http.request";
/// The timer of the handler (the operation's own timer series).
pub const LATENCY: &str = OPERATION;
/// The database call, timed by a guard (success, or a failure of error type
/// `connection_lost`).
pub const DB_QUERY: &str = "db.query";

/// The response cache's lookups (counter, tagged `route` and `result`).
pub const CACHE_LOOKUPS: &str = "cache.lookups";
/// Entries held by the response cache (gauge).
pub const CACHE_ENTRIES: &str = "cache.entries";
/// Size of each response stored in the cache (histogram, bytes).
pub const CACHE_ENTRY_BYTES: &str = "cache.entry.bytes";

/// A response cache shared by the workers, instrumented with the `metrics`
/// macros only (it knows nothing of the protocol traits).
struct ResponseCache {
    entries: AtomicU64,
    capacity: u64,
}

impl ResponseCache {
    fn new(capacity: u64) -> Self {
        metrics::describe_counter!(
            CACHE_LOOKUPS,
            metrics::Unit::Count,
            "Response cache lookups, by route and result."
        );
        metrics::describe_gauge!(
            CACHE_ENTRIES,
            metrics::Unit::Count,
            "Entries held by the response cache."
        );
        metrics::describe_histogram!(
            CACHE_ENTRY_BYTES,
            metrics::Unit::Bytes,
            "Size of the responses stored in the cache."
        );
        ResponseCache {
            entries: AtomicU64::new(0),
            capacity,
        }
    }

    /// Looks `route` up; on a miss stores a response of `bytes` (evicting
    /// one entry when full). `roll` decides hit or miss.
    fn lookup(&self, route: &'static str, roll: f64, bytes: f64) -> bool {
        let hit = roll < 0.7;
        let result = if hit { "hit" } else { "miss" };
        metrics::counter!(CACHE_LOOKUPS, "route" => route, "result" => result).increment(1);
        if !hit {
            // Full: the new entry evicts one, the count stays.
            let prev = self
                .entries
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some((n + 1).min(self.capacity))
                })
                .unwrap_or_else(|n| n);
            let n = (prev + 1).min(self.capacity);
            metrics::gauge!(CACHE_ENTRIES).set(n as f64);
            metrics::histogram!(CACHE_ENTRY_BYTES).record(bytes);
        }
        hit
    }
}

/// A pseudo-random source, seeded per worker so runs repeat.
struct Rng(fastrand::Rng);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0.f64()
    }
}

/// The "library": handles one request and reports it through one handle
/// (its response cache through the `metrics` macros). Waiting (the
/// database, the work) is a sleep on the runtime's timer.
async fn handle(metrics: &Metrics, cache: &ResponseCache, rng: &mut Rng, route: &'static str) {
    metrics.adjust_gauge("http.inflight", 1.0, &[]);
    let roll = rng.next();
    let tags = [("route", route)];
    // The request: its duration into the timer `http.request`, then one
    // success or one failure of the error's kind.
    let request = metrics.start(OPERATION, &tags);
    if route != "/health" {
        cache.lookup(route, rng.next(), 500.0 + rng.next() * 20_000.0);
        // The database call: a guard that records its duration and outcome.
        let table = [("table", route.trim_start_matches("/api/"))];
        let query = metrics.start(DB_QUERY, &table);
        tokio::time::sleep(Duration::from_micros((200.0 + 800.0 * rng.next()) as u64)).await;
        if rng.next() < 0.01 {
            query.failure("connection_lost");
        } else {
            query.success();
        }
    }
    // Lognormal-ish latency: mostly a few ms, a long tail.
    let ms = (1.0 + 3.0 * rng.next()) * (1.0 + 20.0 * rng.next().powi(6));
    tokio::time::sleep(Duration::from_micros((ms * 1000.0) as u64)).await;
    let outcome = match roll {
        r if r < 0.03 => Err("timeout"),
        r if r < 0.05 => Err("db_error"),
        _ => Ok((rng.next() * 50_000.0) as u64),
    };
    match outcome {
        Ok(_) => drop(request.success()),
        Err(kind) => drop(request.failure(kind)),
    }
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

/// Starts `n` workload tasks on `runtime` that handle requests until
/// `stop` is set.
pub fn start(
    runtime: &tokio::runtime::Handle,
    n: usize,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    let routes = ["/api/users", "/api/orders", "/health"];
    let cache = Arc::new(ResponseCache::new(1_000));
    (0..n)
        .map(|i| {
            let (metrics, cache, stop) = (metrics.clone(), cache.clone(), stop.clone());
            runtime.spawn(async move {
                let mut rng = Rng(fastrand::Rng::with_seed(i as u64 + 1));
                let jobs = metrics.counter("jobs.processed", &[("worker", &i.to_string())]);
                while !stop.load(Ordering::Relaxed) {
                    let route = routes[(rng.next() * routes.len() as f64) as usize % routes.len()];
                    handle(&metrics, &cache, &mut rng, route).await;
                    jobs.increment();
                }
            })
        })
        .collect()
}
