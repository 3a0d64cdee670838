//! A library written against one `Metrics` handle, and an application
//! choosing where its numbers go: here a small printing backend. With the
//! backend crates, the application swaps in `MemoryMetrics` or
//! `StatsdMetrics` (or both through `metrics-kit`'s fan-out layer) without the
//! library changing.
//!
//! Run: `cargo run -p metrics-protocol --example quickstart`

use std::sync::Arc;

use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{Counter, MetricCollector, Metrics};

/// The "library": depends on `metrics-protocol` only, holds one handle.
struct Checkout {
    metrics: Metrics,
    orders: Counter,
}

impl Checkout {
    fn new(metrics: Metrics) -> Self {
        let orders = metrics.counter("checkout.orders", &[("store", "eu")]);
        Checkout { metrics, orders }
    }

    fn place_order(&self, items: usize) -> Result<(), String> {
        self.metrics
            .time_result("checkout.place", &[("store", "eu")], || {
                self.metrics
                    .record_histogram("checkout.items", items as f64, &[]);
                if items == 0 {
                    self.metrics
                        .increment("checkout.rejected", &[("reason", "empty")]);
                    return Err("empty_cart".to_owned());
                }
                self.orders.increment();
                Ok(())
            })
    }
}

/// The application's choice of backend: prints every measurement.
struct Printer;

impl MetricCollector for Printer {
    fn record(&self, m: &Measurement<'_>) {
        let value = match m.value() {
            Value::Counter(v) => format!("+{v}"),
            Value::Gauge(v) => format!("={v}"),
            Value::GaugeDelta(d) => format!("{d:+}"),
            Value::Histogram(v) => format!("{v}"),
            Value::Timer(d) => format!("{d:?}"),
            Value::Success => "success".to_owned(),
            Value::Failure => format!("failure {}", m.error_type().unwrap_or_default()),
        };
        println!(
            "{:<9} {:<20} {value:>16}  {:?}",
            m.kind(),
            m.key().name(),
            m.key().tags()
        );
    }
}

fn main() {
    let checkout = Checkout::new(Metrics::new(Arc::new(Printer)));
    for items in [3, 0, 1] {
        match checkout.place_order(items) {
            Ok(()) => println!("order of {items} placed"),
            Err(e) => println!("order refused: {e}"),
        }
    }
}
