//! A library written against one `Metrics` handle, and an application
//! choosing where its numbers go: here a small printing backend. With the
//! backend crates, the application swaps in `MemoryMetrics` or
//! `StatsdMetrics` (or both through `metrics-kit`'s `Fanout`) without the
//! library changing.
//!
//! Run: `cargo run -p metrics-protocol --example quickstart`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::{
    Counter, MetricCollector, Metrics, MetricsError, SuccessFailureTracker, Tags,
};

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
                self.orders.inc();
                Ok(())
            })
    }
}

/// The application's choice of backend: prints every record.
struct Printer;

impl Printer {
    fn print(kind: &str, name: &str, value: String, tags: Tags<'_>) {
        println!("{kind:<9} {name:<20} {value:>12}  {tags:?}");
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

impl SuccessFailureTracker for Printer {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        Self::print("success", operation, String::new(), metadata);
    }
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        Self::print("failure", operation, error_type.to_owned(), metadata);
    }
    fn get_success_rate(&self, _: &str, _: Option<Duration>) -> Result<f64, MetricsError> {
        Err(MetricsError::Unsupported {
            operation: "get_success_rate",
            backend: "printer",
        })
    }
    fn get_failure_breakdown(
        &self,
        _: &str,
        _: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        Err(MetricsError::Unsupported {
            operation: "get_failure_breakdown",
            backend: "printer",
        })
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
