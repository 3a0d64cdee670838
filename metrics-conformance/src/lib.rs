//! The conformance kit of the metrics facade: one suite of checks, written
//! once against the protocol, that every backend runs, so backends cannot
//! drift apart. A backend joins by implementing [`Harness`] (how to record
//! into it and how to read back what reached it) and invoking
//! [`conformance_suite!`] in a test file; a third-party backend does exactly
//! what the backends of this workspace do:
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
//! use metrics_conformance::Harness;
//! use metrics_protocol::backend::{BackendHealth, DropReason, Measurement, Value};
//! use metrics_protocol::{MetricCollector, Metrics, Tags};
//!
//! type Series = (String, Vec<(String, String)>);
//!
//! fn series(name: &str, tags: Tags<'_>) -> Series {
//!     let mut tags: Vec<_> = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
//!     tags.sort();
//!     (name.to_owned(), tags)
//! }
//!
//! fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
//!     m.lock().unwrap_or_else(PoisonError::into_inner)
//! }
//!
//! /// A third-party backend: counter totals, gauge values and sample counts
//! /// in maps; outcomes as the counters a wire format carries.
//! #[derive(Default)]
//! struct Tally {
//!     counters: Mutex<BTreeMap<Series, f64>>,
//!     gauges: Mutex<BTreeMap<Series, f64>>,
//!     samples: Mutex<BTreeMap<Series, u64>>,
//!     dropped: Mutex<BTreeMap<DropReason, u64>>,
//! }
//!
//! impl Tally {
//!     fn add(&self, name: &str, tags: Tags<'_>, v: f64) {
//!         *lock(&self.counters).entry(series(name, tags)).or_default() += v;
//!     }
//! }
//!
//! impl MetricCollector for Tally {
//!     fn record(&self, m: &Measurement<'_>) {
//!         let (name, tags) = (m.key().name(), m.key().tags());
//!         match m.value() {
//!             Value::Counter(v) => self.add(name, tags, v),
//!             Value::Gauge(v) => {
//!                 lock(&self.gauges).insert(series(name, tags), v);
//!             }
//!             Value::GaugeDelta(d) => *lock(&self.gauges).entry(series(name, tags)).or_default() += d,
//!             Value::Histogram(_) | Value::Timer(_) => {
//!                 *lock(&self.samples).entry(series(name, tags)).or_default() += 1;
//!             }
//!             Value::Success => self.add(&format!("{name}.success"), tags, 1.0),
//!             Value::Failure => {
//!                 let mut tags = tags.to_vec();
//!                 tags.push(("error_type", m.error_type().unwrap_or_default()));
//!                 self.add(&format!("{name}.failure"), &tags, 1.0);
//!             }
//!         }
//!     }
//!     fn reject(&self, reason: DropReason) {
//!         *lock(&self.dropped).entry(reason).or_default() += 1;
//!     }
//!     fn health(&self) -> Vec<BackendHealth> {
//!         let mut health = BackendHealth::healthy("tally");
//!         health.dropped = lock(&self.dropped).clone();
//!         vec![health]
//!     }
//! }
//!
//! /// How the suite drives a `Tally` and reads it back.
//! struct TallyHarness(Arc<Tally>);
//!
//! impl Harness for TallyHarness {
//!     fn metrics(&self) -> Metrics {
//!         Metrics::new(self.0.clone())
//!     }
//!     fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
//!         lock(&self.0.counters).get(&series(name, tags)).copied()
//!     }
//!     fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
//!         lock(&self.0.gauges).get(&series(name, tags)).copied()
//!     }
//!     fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
//!         lock(&self.0.samples).get(&series(name, tags)).copied()
//!     }
//!     fn series_count(&self) -> usize {
//!         lock(&self.0.counters).len() + lock(&self.0.gauges).len() + lock(&self.0.samples).len()
//!     }
//! }
//!
//! // In a test file, one `#[test]` per check (`counter::accumulates`, ...):
//! // metrics_conformance::conformance_suite!(TallyHarness(Arc::default()));
//! // Here, every check in turn, each on a fresh backend:
//! for check in metrics_conformance::checks() {
//!     (check.run)(&TallyHarness(Arc::default()));
//! }
//! // The protocol's recording double passes too, through the harness shipped here.
//! for check in metrics_conformance::checks() {
//!     (check.run)(&metrics_conformance::CaptureHarness::new());
//! }
//! ```
//!
//! # The checks
//!
//! Grouped per instrument kind, as Micrometer's
//! `MeterRegistryCompatibilityKit` groups its own; each is a
//! `pub fn(&dyn Harness)` that panics (an assertion) when the backend
//! breaks the rule its documentation states, and each gets a fresh harness:
//!
//! | module | what is checked |
//! | --- | --- |
//! | [`counter`] | totals, tag order, exactness under threads, idle expiry |
//! | [`gauge`] | last value set, deltas |
//! | [`histogram`] | every sample counted, series told apart by tags |
//! | [`timer`] | every duration counted, one per timing guard |
//! | [`outcome`] | exactly one success or failure per guard, tags, error types |
//! | [`handles`] | bound handles share the named series, refuse bad input, outlive expiry |
//! | [`bad_input`] | what breaks a rule is dropped whole and counted; reserved characters never inject |
//! | `queries` | (feature `queries`) rates, breakdowns, timing statistics, windows |
//!
//! [`conformance_suite!`] turns every check into a `#[test]` named after
//! its module (`counter::accumulates`, `queries::success_rate_forgets_...`),
//! so `cargo test counter::` runs one kind. [`checks`] lists them for
//! running otherwise.
//!
//! # Capabilities
//!
//! Some checks need more than recording and reading back: an injectable
//! clock ([`Harness::advance`]), idle expiry ([`Harness::idle_expiry`]), a
//! query side (`Harness::queries`, feature `queries`). A check that needs a
//! capability the harness lacks returns at once, without asserting anything;
//! so a write-only backend without a clock runs the same suite and passes
//! those checks vacuously, and a backend that has the capability is held to
//! them.
//!
//! # Harnesses shipped here
//!
//! - [`CaptureHarness`]: the protocol's recording double,
//!   `metrics_protocol::testing::Capture`, the reference every backend is
//!   compared with.
//! - [`udp::UdpHarness`]: any backend that sends StatsD lines over UDP, read
//!   back through a real receiver on 127.0.0.1 ([`udp::UdpReceiver`]) that
//!   folds lines into series the way a daemon does.
//!
//! # Features
//!
//! | feature | adds | dependencies |
//! | --- | --- | --- |
//! | (default) | every check but `queries` | `metrics-protocol` (`testing`) |
//! | `queries` | the `queries` checks, `Harness::queries` | `metrics-protocol` (`app`) |
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

use std::fmt;
#[cfg(feature = "queries")]
use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::backend::DropReason;
use metrics_protocol::backend::outcome::{ERROR_TYPE_TAG, FAILURE_SUFFIX, SUCCESS_SUFFIX};
use metrics_protocol::{MetricCollector, Metrics, Tags};

mod capture;
pub mod udp;

pub mod bad_input;
pub mod counter;
pub mod gauge;
pub mod handles;
pub mod histogram;
pub mod outcome;
#[cfg(feature = "queries")]
pub mod queries;
pub mod timer;
pub mod workload;

pub use capture::CaptureHarness;

/// How the suite drives one backend and reads back what reached it.
///
/// Four read-backs are required (`counter`, `gauge`, `samples`,
/// `series_count`) besides [`metrics`](Harness::metrics); everything else
/// has a default. Tags given to a read-back may come in any order: a
/// harness compares them as a set.
pub trait Harness {
    /// The backend as the [`Metrics`] handle a library holds: every check
    /// records through it.
    fn metrics(&self) -> Metrics;

    /// Waits until everything recorded so far can be read back (flush,
    /// then wait for a receiver), and runs the housekeeping the backend
    /// would have run on its own by now (idle expiry after
    /// [`advance`](Harness::advance)). A no-op by default, for synchronous
    /// backends without housekeeping.
    fn settle(&self) {}

    /// Total of the counter series `name`/`tags`, `None` if there is no
    /// such series.
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64>;

    /// Value of the gauge series, `None` if there is no such series.
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64>;

    /// Number of samples of the histogram or timer series, `None` if there
    /// is no such series.
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64>;

    /// Number of distinct series of every kind that reached the backend.
    /// The checks that count series record no outcome, so a backend may
    /// count outcomes as series or not.
    fn series_count(&self) -> usize;

    /// Successes of `operation` recorded with exactly `tags`. By default
    /// read back as the counter `<operation>.success`, the form outcomes
    /// take on the wire (`metrics_protocol::backend::outcome`).
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        let name = format!("{operation}{SUCCESS_SUFFIX}");
        self.counter(&name, tags).map_or(0, |v| v as u64)
    }

    /// Failures of `operation` of kind `error_type` recorded with exactly
    /// `tags`. By default read back as the counter `<operation>.failure`
    /// with the tag `error_type` added.
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        let name = format!("{operation}{FAILURE_SUFFIX}");
        let mut all = tags.to_vec();
        all.push((ERROR_TYPE_TAG, error_type));
        self.counter(&name, &all).map_or(0, |v| v as u64)
    }

    /// Recordings dropped for `reason`. By default the sum over the
    /// backend's health reports (`MetricCollector::health`).
    fn dropped(&self, reason: DropReason) -> u64 {
        self.metrics()
            .health()
            .iter()
            .map(|h| h.dropped.get(&reason).copied().unwrap_or(0))
            .sum()
    }

    /// Lets `by` pass on the backend's clock (wall and monotonic) and
    /// returns `true`, or returns `false` when the backend has no clock the
    /// harness can move (the default). `advance(Duration::ZERO)` asks
    /// without moving it. The checks of windows, expiry and rates return
    /// early when it is `false`.
    fn advance(&self, by: Duration) -> bool {
        let _ = by;
        false
    }

    /// How long a series may go without a recording before the backend
    /// removes it, if it removes idle series (default `None`). The expiry
    /// checks let one and a half times this pass (a backend may remove a
    /// series up to half of it late) and expect [`settle`](Harness::settle)
    /// to run the expiry. The window checks let 2 minutes pass between two
    /// recordings into one series: an expiry shorter than that fails them.
    fn idle_expiry(&self) -> Option<Duration> {
        None
    }

    /// The backend's query side, if it answers queries (default `None`):
    /// the `queries` checks ask it.
    #[cfg(feature = "queries")]
    fn queries(&self) -> Option<Arc<dyn metrics_protocol::app::MetricsAggregator>> {
        None
    }
}

/// One check of the suite: a module (an instrument kind), a name, and the
/// function that runs it against a harness.
#[derive(Clone, Copy)]
pub struct Check {
    /// The module, `counter`, `gauge`, ...: the test's name prefix.
    pub module: &'static str,
    /// The check's name in its module.
    pub name: &'static str,
    /// Runs the check; panics when the backend breaks its rule.
    pub run: fn(&dyn Harness),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Check({}::{})", self.module, self.name)
    }
}

/// Every check of the suite, in the order of the modules, as
/// [`conformance_suite!`] turns them into tests. Give each a fresh harness.
pub fn checks() -> Vec<Check> {
    let mut list = Vec::new();
    __with_checks!(__push_checks; list);
    list
}

/// Turns every check into a `#[test]` for the harness that `$make` (an
/// expression of a type implementing [`Harness`]) builds afresh for each.
///
/// The tests go into one module per instrument kind (`counter`, `gauge`,
/// `histogram`, `timer`, `outcome`, `handles`, `bad_input`, and `queries`
/// with the feature `queries`), so they are named `counter::accumulates`,
/// `gauge::keeps_the_last_value`, ... Invoke it once per module: it also
/// defines a function `__conformance_harness` there, which evaluates `$make`
/// where the macro was invoked.
///
/// ```
/// // tests/conformance.rs of a backend crate, with its own harness
/// metrics_conformance::conformance_suite!(metrics_conformance::CaptureHarness::new());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr $(,)?) => {
        fn __conformance_harness() -> impl $crate::Harness {
            $make
        }
        $crate::__with_checks!(__suite_tests;);
    };
}

/// Calls the kit's macro `$callback` with every module and check: the one
/// list [`checks`] and [`conformance_suite!`] are made from.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_checks {
    ($callback:ident; $($args:tt)*) => {
        $crate::$callback! { [$($args)*]
            counter {
                accumulates,
                tag_order_is_one_series,
                concurrent_increments_are_exact,
                idle_series_expire,
            }
            gauge {
                keeps_the_last_value,
                adjusts_by_deltas,
                a_delta_on_a_new_gauge_starts_from_zero,
            }
            histogram {
                counts_every_sample,
                series_are_told_apart_by_tags,
            }
            timer {
                counts_every_duration,
                every_guard_records_its_duration,
            }
            outcome {
                every_guard_ends_in_exactly_one,
                outcomes_keep_their_tags,
                a_panic_is_a_panicked_failure,
                errors_count_under_their_error_type,
            }
            handles {
                share_the_named_series,
                clones_record_into_one_series,
                a_handle_of_a_bad_key_refuses_every_recording,
                bound_series_never_expire,
            }
            bad_input {
                is_dropped_whole_and_counted,
                bad_outcomes_and_guards_are_counted,
                a_repeated_guard_is_judged_every_time,
                reserved_characters_are_never_injected,
            }
        }
        $crate::__with_query_checks! { $callback; $($args)* }
    };
}

/// The `queries` part of [`__with_checks`]: the queries checks with the
/// feature `queries`, nothing without.
#[cfg(feature = "queries")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_query_checks {
    ($callback:ident; $($args:tt)*) => {
        $crate::$callback! { [$($args)*]
            queries {
                answer_from_what_was_recorded,
                success_rate_forgets_outcomes_older_than_the_window,
                counter_summary_in_a_window,
                timing_stats_in_a_window,
            }
        }
    };
}

/// The `queries` part of [`__with_checks`]: the queries checks with the
/// feature `queries`, nothing without.
#[cfg(not(feature = "queries"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_query_checks {
    ($callback:ident; $($args:tt)*) => {};
}

/// One `#[test]` per check, in a module per instrument kind.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ([] $($module:ident { $($check:ident),* $(,)? })*) => {
        $(
            mod $module {
                $(
                    #[test]
                    fn $check() {
                        let harness = super::__conformance_harness();
                        $crate::$module::$check(&harness);
                    }
                )*
            }
        )*
    };
}

/// Extends the list `$list` with a [`Check`] per check.
#[doc(hidden)]
#[macro_export]
macro_rules! __push_checks {
    ([$list:ident] $($module:ident { $($check:ident),* $(,)? })*) => {
        $list.extend([$($(
            $crate::Check {
                module: stringify!($module),
                name: stringify!($check),
                run: $crate::$module::$check,
            },
        )*)*]);
    };
}
