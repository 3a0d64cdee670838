//! The shared parts of the metrics facade's backends and applications, as
//! `metrics-util` is to the `metrics` crate. A library that only records
//! needs none of this: it depends on `metrics-protocol` alone.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_kit::Fanout;
//! use metrics_protocol::testing::Capture;
//! use metrics_protocol::{CollectorExt, Metrics};
//!
//! // An application sends everything to two backends at once.
//! let (a, b) = (Capture::new(), Capture::new());
//! let metrics = Metrics::new(Arc::new(Fanout::new(vec![a.clone(), b.clone()])));
//! metrics.increment("jobs.done", &[("queue", "email")]);
//! metrics.time("jobs.run", &[], || ());
//! for backend in [&a, &b] {
//!     assert_eq!(backend.counter("jobs.done", &[("queue", "email")]), 1.0);
//!     assert_eq!(backend.successes("jobs.run", &[]), 1);
//! }
//! ```
//!
//! - [`Fanout`]: one backend that forwards every part of the protocol to
//!   several (recording, outcomes, timers; queries go to the first that
//!   answers); [`flush_all`], a composite's flush.
//! - [`DropCounters`]: lock-free per-reason drop counts, what a backend
//!   reports in its health.
//! - [`RunningTimers`]: the bounded table behind `start_timer`/`stop_timer`,
//!   and [`record_stopped_timer`], what stopping one records;
//!   [`running_timer_methods!`] writes a backend's `start_timer` and
//!   `stop_timer` on top of them.
//! - [`with_outcome_counter`]: an outcome as the counter a wire format
//!   carries (`<op>.success`, `<op>.failure` + `error_type`), allocation-free.
//! - [`Sample`] and [`read_samples`]: the JSON-lines sample format the
//!   command-line examples read.
#![deny(missing_docs)]

mod drops;
mod fanout;
mod outcome;
mod sample;
mod timers;

pub use drops::DropCounters;
pub use fanout::{Fanout, flush_all};
#[doc(hidden)]
pub use metrics_protocol as __protocol;
pub use outcome::with_outcome_counter;
pub use sample::{Sample, SampleKind, read_samples};
pub use timers::{RunningTimers, StartedTimer, StdTimerClock, TimerClock, record_stopped_timer};
