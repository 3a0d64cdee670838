//! A library written against the traits, and an application choosing where
//! its numbers go: here a small printing collector and `NoopMetrics` behind a
//! `Fanout`. With the backends crates, the application swaps in
//! `MemoryMetrics` or `StatsdMetrics` without the library changing.
//!
//! Run: `cargo run -p metrics-protocol --example quickstart`

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::{
    CollectorExt, Counter, Fanout, InstrumentExt, MetricCollector, NoopMetrics, Tags,
};

/// The "library": depends on `metrics-protocol` only.
struct Checkout {
    metrics: Arc<dyn MetricCollector>,
    orders: Counter,
}

impl Checkout {
    fn new(metrics: Arc<dyn MetricCollector>) -> Self {
        let orders = metrics.counter("checkout.orders", &[("store", "eu")]);
        Checkout { metrics, orders }
    }

    fn place_order(&self, items: usize) -> Result<(), String> {
        self.metrics
            .timed("checkout.latency", &[("store", "eu")], || {
                self.metrics
                    .record_histogram("checkout.items", items as f64, &[]);
                if items == 0 {
                    self.metrics
                        .increment("checkout.rejected", &[("reason", "empty")]);
                    return Err("empty cart".to_owned());
                }
                self.orders.inc();
                Ok(())
            })
    }
}

/// The application's choice of backend: prints every record.
struct Printer;

impl Printer {
    fn print(kind: &str, name: &str, value: String, tags: Tags<'_>) {
        println!("{kind:<9} {name:<20} {value:>10}  {tags:?}");
    }
}

impl MetricCollector for Printer {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        Self::print("counter", name, format!("+{value}"), tags);
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        Self::print("gauge", name, format!("={value}"), tags);
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        Self::print("gauge", name, format!("{delta:+}"), tags);
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        Self::print("histogram", name, format!("{value}"), tags);
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        Self::print("timer", name, format!("{duration:?}"), tags);
    }
}

fn main() {
    let backend = Fanout::new(vec![Arc::new(Printer), Arc::new(NoopMetrics)]);
    let checkout = Checkout::new(Arc::new(backend));
    for items in [3, 0, 1] {
        match checkout.place_order(items) {
            Ok(()) => println!("order of {items} placed"),
            Err(e) => println!("order refused: {e}"),
        }
    }
}
