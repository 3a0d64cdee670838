//! A recording test double (feature `testing`): hand a library a
//! [`Capture`]'s [`Metrics`] and assert on what it recorded, whichever
//! convenience it used to record it.
//!
//! ```
//! use metrics_protocol::Metrics;
//! use metrics_protocol::testing::Capture;
//!
//! fn serve(metrics: &Metrics) {
//!     metrics.counter("requests", &[("route", "/")]).inc();
//!     metrics.time("render", &[], || ());
//! }
//!
//! let capture = Capture::new();
//! serve(&capture.metrics());
//! serve(&capture.metrics());
//! assert_eq!(capture.counter("requests", &[("route", "/")]), 2.0);
//! assert_eq!(capture.timings("render", &[]).len(), 2);
//! assert_eq!(capture.successes("render", &[]), 2);
//! ```
//!
//! It applies the protocol's [validation rules](crate::validate): a sample
//! a backend would drop is not kept, but counted in its
//! [`health`](crate::MetricCollector::health) like a backend's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::health::{BackendHealth, HealthStatus};
use crate::validate::{self, DropReason, SortedTags};
use crate::{
    MetricCollector, MetricType, MetricUnit, Metrics, MetricsError, SuccessFailureTracker, Tags,
};

/// One accepted recording call, with its tags sorted by key.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `record_counter` (and every convenience that adds to a counter).
    Counter {
        /// Metric name.
        name: String,
        /// The increment.
        value: f64,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `record_gauge`.
    Gauge {
        /// Metric name.
        name: String,
        /// The value set.
        value: f64,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `adjust_gauge`.
    GaugeDelta {
        /// Metric name.
        name: String,
        /// The delta.
        delta: f64,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `record_histogram`.
    Histogram {
        /// Metric name.
        name: String,
        /// The sample.
        value: f64,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `record_timer`.
    Timer {
        /// Metric name.
        name: String,
        /// The duration.
        duration: Duration,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `record_success`.
    Success {
        /// The operation.
        operation: String,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `record_failure`.
    Failure {
        /// The operation.
        operation: String,
        /// The error type.
        error_type: String,
        /// Sorted tags.
        tags: Vec<(String, String)>,
    },
    /// `describe`.
    Describe {
        /// Metric name.
        name: String,
        /// Its kind.
        kind: MetricType,
        /// Its unit.
        unit: Option<MetricUnit>,
        /// The help text.
        description: String,
    },
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    dropped: BTreeMap<DropReason, u64>,
}

/// Keeps every accepted recording call, in order. A [`MetricCollector`] and a
/// [`SuccessFailureTracker`] (its queries answer from what it kept), so
/// [`Capture::metrics`] is a [`Metrics`] handle to give the code under test.
#[derive(Debug, Default)]
pub struct Capture {
    state: Mutex<State>,
}

fn owned(tags: &SortedTags<'_>) -> Vec<(String, String)> {
    tags.to_owned_pairs()
}

fn sorted(tags: Tags<'_>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

impl Capture {
    /// An empty capture, shared so that handles can be made from it.
    pub fn new() -> Arc<Capture> {
        Arc::new(Capture::default())
    }

    /// A [`Metrics`] handle that records into this capture.
    pub fn metrics(self: &Arc<Self>) -> Metrics {
        Metrics::new(self.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread leaves a consistent Vec: keep reading it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every accepted call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Forgets every call and drop.
    pub fn clear(&self) {
        *self.state() = State::default();
    }

    /// Samples dropped so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.state().dropped.get(&reason).copied().unwrap_or(0)
    }

    fn keep(&self, check: Result<Call, DropReason>) {
        let mut s = self.state();
        match check {
            Ok(call) => s.calls.push(call),
            Err(reason) => *s.dropped.entry(reason).or_insert(0) += 1,
        }
    }

    /// The total of the counter series `name` with exactly `tags` (in any
    /// order): 0 when nothing was added.
    pub fn counter(&self, name: &str, tags: Tags<'_>) -> f64 {
        let want = sorted(tags);
        self.state()
            .calls
            .iter()
            .map(|c| match c {
                Call::Counter {
                    name: n,
                    value,
                    tags: t,
                } if n == name && *t == want => *value,
                _ => 0.0,
            })
            .sum()
    }

    /// The gauge series' value: the last value set plus the deltas since,
    /// `None` when the gauge was never touched.
    pub fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        let want = sorted(tags);
        let mut value = None;
        for c in &self.state().calls {
            match c {
                Call::Gauge {
                    name: n,
                    value: v,
                    tags: t,
                } if n == name && *t == want => {
                    value = Some(*v);
                }
                Call::GaugeDelta {
                    name: n,
                    delta,
                    tags: t,
                } if n == name && *t == want => {
                    value = Some(value.unwrap_or(0.0) + delta);
                }
                _ => {}
            }
        }
        value
    }

    /// Every sample of the histogram series, in order.
    pub fn histogram(&self, name: &str, tags: Tags<'_>) -> Vec<f64> {
        let want = sorted(tags);
        self.state()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Histogram {
                    name: n,
                    value,
                    tags: t,
                } if n == name && *t == want => Some(*value),
                _ => None,
            })
            .collect()
    }

    /// Every duration of the timer series, in order.
    pub fn timings(&self, name: &str, tags: Tags<'_>) -> Vec<Duration> {
        let want = sorted(tags);
        self.state()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Timer {
                    name: n,
                    duration,
                    tags: t,
                } if n == name && *t == want => Some(*duration),
                _ => None,
            })
            .collect()
    }

    /// Successes of `operation` recorded with exactly `tags`.
    pub fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        let want = sorted(tags);
        self.state()
            .calls
            .iter()
            .filter(|c| matches!(c, Call::Success { operation: o, tags: t } if o == operation && *t == want))
            .count() as u64
    }

    /// Failures of `operation` of kind `error_type` recorded with exactly `tags`.
    pub fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        let want = sorted(tags);
        self.state()
            .calls
            .iter()
            .filter(|c| {
                matches!(c, Call::Failure { operation: o, error_type: e, tags: t }
                    if o == operation && e == error_type && *t == want)
            })
            .count() as u64
    }

    fn outcomes(&self, operation: &str) -> (u64, BTreeMap<String, u64>) {
        let mut ok = 0;
        let mut failed = BTreeMap::new();
        for c in &self.state().calls {
            match c {
                Call::Success { operation: o, .. } if o == operation => ok += 1,
                Call::Failure {
                    operation: o,
                    error_type,
                    ..
                } if o == operation => *failed.entry(error_type.clone()).or_insert(0) += 1,
                _ => {}
            }
        }
        (ok, failed)
    }
}

fn sample<'a>(
    name: &str,
    value: f64,
    counter: bool,
    tags: Tags<'a>,
) -> Result<SortedTags<'a>, DropReason> {
    validate::check_name(name)?;
    if counter {
        validate::check_counter_increment(value)?;
    } else {
        validate::check_value(value)?;
    }
    SortedTags::new(tags)
}

impl Capture {
    /// Keeps one recording call, built by `call` from the owned name and
    /// sorted tags, if it passes the rules (a timer has no value to check).
    fn record<'a>(
        &self,
        name: &str,
        value: f64,
        counter: bool,
        tags: Tags<'a>,
        call: impl FnOnce(String, Vec<(String, String)>) -> Call,
    ) {
        self.keep(sample(name, value, counter, tags).map(|t| call(name.to_owned(), owned(&t))));
    }
}

impl MetricCollector for Capture {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(name, value, true, tags, |name, tags| Call::Counter {
            name,
            value,
            tags,
        });
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(name, value, false, tags, |name, tags| Call::Gauge {
            name,
            value,
            tags,
        });
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.record(name, delta, false, tags, |name, tags| Call::GaugeDelta {
            name,
            delta,
            tags,
        });
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(name, value, false, tags, |name, tags| Call::Histogram {
            name,
            value,
            tags,
        });
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.record(name, 0.0, false, tags, |name, tags| Call::Timer {
            name,
            duration,
            tags,
        });
    }
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        self.keep(validate::check_name(name).map(|()| Call::Describe {
            name: name.to_owned(),
            kind,
            unit,
            description: description.to_owned(),
        }));
    }
    fn health(&self) -> Vec<BackendHealth> {
        let dropped = self.state().dropped.clone();
        let mut h = BackendHealth::healthy("capture");
        if !dropped.is_empty() {
            h.status = HealthStatus::Degraded;
        }
        h.dropped = dropped;
        vec![h]
    }
}

impl SuccessFailureTracker for Capture {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        self.keep(
            validate::check_name(operation)
                .and_then(|()| SortedTags::new(metadata))
                .map(|t| Call::Success {
                    operation: operation.to_owned(),
                    tags: owned(&t),
                }),
        );
    }
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        self.keep(
            validate::check_name(operation)
                .and_then(|()| validate::check_tag("error_type", error_type))
                .and_then(|()| SortedTags::new(metadata))
                .map(|t| Call::Failure {
                    operation: operation.to_owned(),
                    error_type: error_type.to_owned(),
                    tags: owned(&t),
                }),
        );
    }
    /// Over everything captured; a window is not supported.
    fn get_success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        if time_window.is_some() {
            return Err(MetricsError::Unsupported {
                operation: "get_success_rate over a window",
                backend: "capture",
            });
        }
        let (ok, failed) = self.outcomes(operation);
        crate::success_rate(operation, ok, &failed)
    }
    /// Over everything captured; a window is not supported.
    fn get_failure_breakdown(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        if time_window.is_some() {
            return Err(MetricsError::Unsupported {
                operation: "get_failure_breakdown over a window",
                backend: "capture",
            });
        }
        Ok(self.outcomes(operation).1)
    }
}
