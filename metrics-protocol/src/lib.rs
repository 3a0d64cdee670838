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
//!    or bind a handle once for a hot series ([`Metrics::counter`] returns a
//!    [`Counter`]) and record through it without a lookup.
//! 4. Time operations with the guard [`Metrics::start`], or
//!    [`Metrics::time`], [`Metrics::time_result`], [`Metrics::time_async`].
//!    Each records the duration and exactly one outcome; an early return, a
//!    panic or a cancelled future is a failure of its own error type
//!    ([`outcome`]), never a success. Errors name their
//!    [`ErrorType`].
//! 5. Test with the `testing` feature's [`testing::Capture`] (assert on what
//!    was recorded) or the `mock` feature's mockall mocks. Conveniences reach
//!    both as the plain recording calls they are made of.
//!
//! Tags are borrowed slices (`&[("k", "v")]`, `&[]` for none), so a call
//! site allocates nothing; their order never matters.
//!
//! Recording never fails and never panics. A sample that breaks the rules in
//! [`validate`] (NaN, a negative counter increment, an empty name, ...) is
//! dropped whole and counted under a [`DropReason`] in the backend's
//! [`health`](MetricCollector::health), the same way in every backend.
//!
//! # For applications
//!
//! Pick backends at start-up (`metrics-memory`, queryable; `metrics-statsd`;
//! several at once through `metrics-kit`'s `Fanout`) or the composed system
//! (`metrics-agent`), and hand libraries a [`Metrics`] built from it. The
//! application side of the protocol ([`system`]: health reports, dashboards,
//! resources, queries, streams) is behind the `system` feature.
//!
//! # For backend authors
//!
//! Implement [`MetricCollector`] and [`SuccessFailureTracker`] (then
//! [`Metrics::new`] takes your backend), optionally [`PerformanceTimer`] and
//! the [`system`] traits. Apply [`validate`]. Hand out bound handles through
//! [`MetricCollector::register_counter`] and the [`backend`] traits. The
//! `metrics-kit` crate has the shared parts: drop counters, the running-timer
//! table, fan-out, the sample format.
//!
//! # Features
//!
//! | feature | adds | dependencies |
//! | --- | --- | --- |
//! | (default) | everything above | none |
//! | `serde` | serde derives on the data types | serde |
//! | `system` | [`system`]: the application side | serde, chrono, async-trait, futures-core |
//! | `testing` | [`testing::Capture`], a recording double | none |
//! | `mock` | `MockMetricCollector`, `MockBackend`, ... (mockall) | mockall |
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
#[cfg(any(test, feature = "mock"))]
pub use timing::MockPerformanceTimer;
