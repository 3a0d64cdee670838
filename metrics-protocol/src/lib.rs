//! The metrics facade a library depends on: one cheap handle, [`Metrics`],
//! that records counters, gauges, histograms and timers, times operations
//! and counts their outcomes; the object-safe traits behind it; and a no-op
//! default. With default features this crate has no dependencies.
//!
//! ```
//! use metrics_protocol::Metrics;
//!
//! // A library holds one handle...
//! #[derive(Clone, Default)]
//! pub struct Uploader { metrics: Metrics }
//!
//! impl Uploader {
//!     pub fn new(metrics: Metrics) -> Self { Uploader { metrics } }
//!
//!     pub fn upload(&self, bytes: &[u8]) -> std::io::Result<()> {
//!         self.metrics.increment("uploads.started", &[("kind", "blob")]);
//!         self.metrics.record_histogram("uploads.bytes", bytes.len() as f64, &[]);
//!         // ...and times the work: duration, then one success or failure.
//!         self.metrics.time_result("upload", &[], || std::io::Result::Ok(()))
//!     }
//! }
//!
//! // The application chooses where the numbers go (here: nowhere).
//! Uploader::new(Metrics::noop()).upload(b"hello").unwrap();
//! ```
//!
//! # For library authors
//!
//! 1. Depend on this crate only, with default features.
//! 2. Take a [`Metrics`] in your constructor (default: [`Metrics::noop`]).
//!    It is an `Arc` inside: clone it freely.
//! 3. Record by name ([`Metrics::increment`], [`Metrics::record_histogram`], ...),
//!    by a [`Key`] built once (a `const` for literals), or bind a handle
//!    once for a hot series ([`Metrics::counter`] returns a [`Counter`]) and
//!    record through it without a lookup. `increment` always adds one.
//! 4. Time operations with the guard [`Metrics::start`] (or its wrappers
//!    [`Metrics::time`], [`Metrics::time_result`], [`Metrics::time_async`]).
//!    A guard records the duration and exactly one outcome; an early return,
//!    a panic or a cancelled future is a failure of its own error type
//!    ([`backend::outcome`]), never a success. Errors name their
//!    [`ErrorType`].
//! 5. Test with the `testing` feature's `testing::Capture` (assert on what
//!    was recorded) or the `mock` feature's mockall mock. Every convenience
//!    reaches both as the measurements it is made of.
//!
//! Tags are borrowed slices (`&[("k", "v")]`, `&[]` for none), so a call
//! site allocates nothing; their order never matters.
//!
//! Recording never fails and never panics. A name, tag or value that breaks
//! a rule of [`backend::validate`] (NaN, a negative counter value, an
//! empty name, ...) is refused whole where the measurement is made, and
//! counted under its reason in the backend's health, the same way in every
//! backend.
//!
//! # For applications
//!
//! Pick backends at start-up (`metrics-memory`, queryable; `metrics-statsd`;
//! several at once under `metrics-kit`'s fan-out layer) or the composed
//! system (`metrics-sdk`), and hand libraries a [`Metrics`] built from it.
//! The application side of the protocol (`app`: queries, health reports,
//! dashboards, resources, streams) is behind the `app` feature.
//!
//! # For backend authors
//!
//! Implement [`MetricCollector`]: one required method, `record`, handed a
//! [`Measurement`](backend::Measurement) that is valid by construction, with
//! its key's fingerprint computed once. Optionally hand out bound handles
//! ([`MetricCollector::bind`], [`backend::InstrumentFn`]). Reading is
//! separate: implement `app::MetricsAggregator` if your backend keeps data.
//! The `metrics-kit` crate has the shared parts: layers, drop counters, the
//! running-timer table, the sample format.
//!
//! # Features
//!
//! | feature | adds | dependencies |
//! | --- | --- | --- |
//! | (default) | everything above | none |
//! | `serde` | serde derives on the data types | serde |
//! | `app` | `app`: the application and read side | serde, chrono, async-trait, futures-core |
//! | `testing` | `testing::Capture`, a recording double | none |
//! | `mock` | `MockMetricCollector`, `MockPerformanceTimer`, ... (mockall) | mockall |
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

mod collector;
mod error;
mod handle;
mod health;
mod instruments;
mod key;
mod measurement;
mod noop;
mod timing;
mod tracking;
mod types;

#[cfg(feature = "serde")]
#[doc(hidden)]
pub mod serde_util;

#[cfg(feature = "app")]
pub mod app;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "mock")]
mod mock;

pub use collector::MetricCollector;
pub use error::MetricsError;
pub use handle::{ErrorType, Metrics, Timing};
pub use instruments::{Counter, Gauge, Histogram, Timer};
pub use key::Key;
pub use noop::NoopMetrics;
pub use timing::PerformanceTimer;
pub use tracking::SuccessFailureTracker;
pub use types::{MetricType, MetricUnit, Tags, TimerId};

pub mod backend;

#[cfg(feature = "mock")]
pub use mock::MockMetricCollector;
/// The mocking crate the `mock` feature's mocks are made with, re-exported so
/// a test needs no dependency of its own for predicates and sequences:
/// `use metrics_protocol::mockall::{predicate::*, Sequence};`.
#[cfg(feature = "mock")]
pub use mockall;
#[cfg(any(test, feature = "mock"))]
pub use timing::MockPerformanceTimer;
