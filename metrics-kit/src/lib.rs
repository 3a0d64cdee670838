//! The shared parts of the metrics facade's backends and applications, as
//! `metrics-util` is to the `metrics` crate. A library that only records
//! needs none of this: it depends on `metrics-protocol` alone.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_kit::layers::{Fanout, PrefixLayer, Stack};
//! use metrics_protocol::Metrics;
//! use metrics_protocol::testing::Capture;
//!
//! // An application sends everything to two backends at once, prefixed.
//! let (a, b) = (Capture::new(), Capture::new());
//! let stack = Stack::new(Fanout::new(vec![a.clone(), b.clone()])).push(PrefixLayer::new("shop"));
//! let metrics = Metrics::new(Arc::new(stack.into_inner()));
//! metrics.increment("jobs.done", &[("queue", "email")]);
//! metrics.time("jobs.run", &[], || ());
//! for backend in [&a, &b] {
//!     assert_eq!(backend.counter("shop.jobs.done", &[("queue", "email")]), 1.0);
//!     assert_eq!(backend.successes("shop.jobs.run", &[]), 1);
//! }
//! ```
//!
//! - [`layers`]: wrappers of a collector stacked by the application:
//!   [`Fanout`](layers::Fanout) over several backends, a tap for streams,
//!   filters, a prefix, common tags.
//! - [`DropCounters`]: lock-free per-reason drop counts, what a backend
//!   reports in its health.
//! - [`RunningTimers`]: the bounded table behind `start_timer`/`stop_timer`,
//!   [`record_stopped_timer`], what stopping one records, and [`Timers`],
//!   both as a `PerformanceTimer` over any collector.
//! - [`with_outcome_counter`]: an outcome as the counter a wire format
//!   carries (`<op>.success`, `<op>.failure` + `error_type`), allocation-free.
//! - [`Sample`] and [`read_samples`]: the JSON-lines sample format the
//!   command-line examples read.
//! - [`duration`]: durations in configuration, a number in the field's unit
//!   or a human form (`"500ms"`, `"5m"`), with serde helpers.
#![deny(missing_docs)]

mod drops;
pub mod duration;
pub mod layers;
mod outcome;
mod sample;
mod timers;

pub use drops::DropCounters;
pub use outcome::with_outcome_counter;
pub use sample::{Sample, SampleError, read_samples};
pub use timers::{
    RunningTimers, StartedTimer, StdTimerClock, TimerClock, Timers, record_stopped_timer,
};
