//! The suite catches broken backends: each mutant below breaks one rule,
//! and the check of that rule fails against it while it passes against a
//! faithful backend.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use metrics_conformance::{CaptureHarness, Harness, bad_input, counter, gauge, handles, outcome};
use metrics_protocol::backend::{DropReason, InstrumentFn, Measurement, Value};
use metrics_protocol::testing::Capture;
use metrics_protocol::{Key, MetricCollector, MetricType, Metrics, Tags};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mutation {
    /// Records faithfully.
    None,
    /// Adds every counter increment twice.
    DoubleCounts,
    /// Keeps the first value a gauge was set to.
    KeepsFirstGauge,
    /// Ignores gauge deltas.
    IgnoresDeltas,
    /// Records outcomes without their tags.
    LosesOutcomeTags,
    /// Records every outcome as a success.
    EverythingSucceeds,
    /// Does not count what the call site refused.
    ForgetsRejects,
    /// Binds handles that record nothing.
    DeafHandles,
    /// Records every histogram sample under the series without tags.
    DropsHistogramTags,
}

struct Mutant {
    capture: Arc<Capture>,
    mutation: Mutation,
}

struct Deaf;

impl InstrumentFn for Deaf {
    fn record(&self, _: Value) {}
}

impl Mutant {
    fn put(&self, name: &str, tags: Tags<'_>, value: Value, error_type: Option<&str>) {
        let key = Key::new(name, tags).unwrap();
        let m = match error_type {
            Some(e) => Measurement::failure(&key, e).unwrap(),
            None => Measurement::new(&key, value).unwrap(),
        };
        self.capture.record(&m);
    }
}

impl MetricCollector for Mutant {
    fn record(&self, m: &Measurement<'_>) {
        let (name, tags, value) = (m.key().name(), m.key().tags(), m.value());
        match (self.mutation, value) {
            (Mutation::DoubleCounts, Value::Counter(_)) => {
                self.capture.record(m);
                self.capture.record(m);
            }
            (Mutation::KeepsFirstGauge, Value::Gauge(_)) => {
                if self.capture.gauge(name, tags).is_none() {
                    self.capture.record(m);
                }
            }
            (Mutation::IgnoresDeltas, Value::GaugeDelta(_)) => {}
            (Mutation::LosesOutcomeTags, Value::Success | Value::Failure) => {
                self.put(name, &[], value, m.error_type())
            }
            (Mutation::EverythingSucceeds, Value::Failure) => {
                self.put(name, tags, Value::Success, None)
            }
            (Mutation::DropsHistogramTags, Value::Histogram(_)) => self.put(name, &[], value, None),
            _ => self.capture.record(m),
        }
    }

    fn bind(&self, _: &Key<'_>, _: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        (self.mutation == Mutation::DeafHandles).then(|| Arc::new(Deaf) as Arc<dyn InstrumentFn>)
    }

    fn reject(&self, reason: DropReason) {
        if self.mutation != Mutation::ForgetsRejects {
            self.capture.reject(reason);
        }
    }
}

/// Records through a mutant, reads back through the reference harness.
struct MutantHarness {
    backend: Arc<Mutant>,
    read: CaptureHarness,
}

impl MutantHarness {
    fn new(mutation: Mutation) -> Self {
        let capture = Capture::new();
        MutantHarness {
            backend: Arc::new(Mutant {
                capture: capture.clone(),
                mutation,
            }),
            read: CaptureHarness::with_capture(capture),
        }
    }
}

impl Harness for MutantHarness {
    fn metrics(&self) -> Metrics {
        Metrics::new(self.backend.clone())
    }
    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.read.counter(name, tags)
    }
    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.read.gauge(name, tags)
    }
    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.read.samples(name, tags)
    }
    fn series_count(&self) -> usize {
        self.read.series_count()
    }
    fn successes(&self, operation: &str, tags: Tags<'_>) -> u64 {
        self.read.successes(operation, tags)
    }
    fn failures(&self, operation: &str, error_type: &str, tags: Tags<'_>) -> u64 {
        self.read.failures(operation, error_type, tags)
    }
    fn dropped(&self, reason: DropReason) -> u64 {
        self.read.dropped(reason)
    }
}

type CheckFn = fn(&dyn Harness);

fn passes(check: CheckFn, mutation: Mutation) -> bool {
    catch_unwind(AssertUnwindSafe(|| check(&MutantHarness::new(mutation)))).is_ok()
}

#[test]
fn each_mutant_fails_the_check_of_the_rule_it_breaks() {
    let cases: [(Mutation, CheckFn); 9] = [
        (Mutation::DoubleCounts, counter::accumulates),
        (Mutation::KeepsFirstGauge, gauge::keeps_the_last_value),
        (Mutation::IgnoresDeltas, gauge::adjusts_by_deltas),
        (
            Mutation::IgnoresDeltas,
            gauge::a_delta_on_a_new_gauge_starts_from_zero,
        ),
        (
            Mutation::LosesOutcomeTags,
            outcome::outcomes_keep_their_tags,
        ),
        (
            Mutation::EverythingSucceeds,
            outcome::every_guard_ends_in_exactly_one,
        ),
        (
            Mutation::ForgetsRejects,
            bad_input::is_dropped_whole_and_counted,
        ),
        (Mutation::DeafHandles, handles::share_the_named_series),
        (
            Mutation::DropsHistogramTags,
            metrics_conformance::histogram::series_are_told_apart_by_tags,
        ),
    ];
    for (mutation, check) in cases {
        assert!(
            passes(check, Mutation::None),
            "a faithful backend fails the check {mutation:?} is meant to fail"
        );
        assert!(
            !passes(check, mutation),
            "the mutant {mutation:?} passes the check of the rule it breaks"
        );
    }
}

#[test]
fn a_faithful_backend_passes_every_check() {
    for check in metrics_conformance::checks() {
        assert!(passes(check.run, Mutation::None), "{check:?}");
    }
}
