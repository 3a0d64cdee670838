//! Bad input: a recording that breaks a rule of
//! `metrics_protocol::backend::validate` is dropped whole, nothing of it
//! reaches the backend, and it is counted under its reason; input that is
//! valid but reserved by a wire format is recorded once, never injected.

use std::time::Duration;

use metrics_protocol::backend::DropReason;
use metrics_protocol::backend::validate::{MAX_NAME_LEN, MAX_TAG_VALUE_LEN, MAX_TAGS};

use crate::Harness;

/// Every rule that applies to recording: the sample is dropped whole,
/// creates no series, is counted by reason, and the backend records
/// normally afterwards.
pub fn is_dropped_whole_and_counted(h: &dyn Harness) {
    let m = h.metrics();
    let long_name = "n".repeat(MAX_NAME_LEN + 1);
    let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}")).collect();
    let many_tags: Vec<(&str, &str)> = many.iter().map(|k| (k.as_str(), "v")).collect();
    let long_value = "v".repeat(MAX_TAG_VALUE_LEN + 1);

    m.record_gauge("conf.bad", f64::NAN, &[]);
    m.adjust_gauge("conf.bad", f64::INFINITY, &[]);
    m.record_histogram("conf.bad", f64::INFINITY, &[]);
    m.record_counter("conf.bad", f64::NEG_INFINITY, &[]);
    m.record_counter("conf.bad", -1.0, &[]);
    m.record_counter("", 1.0, &[]);
    m.record_counter(&long_name, 1.0, &[]);
    m.record_counter("conf.bad\nfake.metric:1|c", 1.0, &[]);
    m.record_timer("conf.bad\u{85}", Duration::from_millis(1), &[]);
    m.record_counter("conf.bad", 1.0, &many_tags);
    m.record_counter("conf.bad", 1.0, &[("a", "1"), ("a", "2")]);
    m.record_counter("conf.bad", 1.0, &[("", "v")]);
    m.record_counter("conf.bad", 1.0, &[("k\n", "v")]);
    m.record_counter("conf.bad", 1.0, &[("k", long_value.as_str())]);
    h.settle();

    assert_eq!(
        h.series_count(),
        0,
        "a dropped sample must not create a series"
    );
    assert_eq!(h.counter("conf.bad", &[]), None);
    assert_eq!(h.gauge("conf.bad", &[]), None);
    assert_eq!(h.dropped(DropReason::InvalidValue), 4);
    assert_eq!(h.dropped(DropReason::NegativeCounter), 1);
    assert_eq!(h.dropped(DropReason::InvalidName), 4);
    assert_eq!(h.dropped(DropReason::TooManyTags), 1);
    assert_eq!(h.dropped(DropReason::DuplicateTag), 1);
    assert_eq!(h.dropped(DropReason::InvalidTag), 3);

    // The backend still works afterwards.
    m.increment("conf.after", &[]);
    h.settle();
    assert_eq!(h.counter("conf.after", &[]), Some(1.0));
    assert_eq!(h.series_count(), 1);
}

/// Outcomes and timing guards follow the same rules: an operation name
/// that breaks one records neither duration nor outcome (each is counted),
/// nor does an error type longer than a tag value may be.
pub fn bad_outcomes_and_guards_are_counted(h: &dyn Harness) {
    let m = h.metrics();
    let long_error = "e".repeat(MAX_TAG_VALUE_LEN + 1);
    m.record_success("", &[]);
    m.record_failure("conf.op", &long_error, &[]);
    m.record_failure("conf.op", "timeout", &[("a", "1"), ("a", "2")]);
    m.start("", &[("k", "v")]).success();
    drop(m.start("conf\nop", &[]));
    h.settle();
    assert_eq!(h.series_count(), 0);
    assert_eq!(h.successes("conf.op", &[]), 0);
    assert_eq!(h.failures("conf.op", &long_error, &[]), 0);
    assert_eq!(h.dropped(DropReason::InvalidName), 5);
    assert_eq!(h.dropped(DropReason::InvalidTag), 1);
    assert_eq!(h.dropped(DropReason::DuplicateTag), 1);
}

/// A guard that ends again and again from one place (the same name and
/// tags, as a loop or a hot function passes them) is judged as the first
/// was: a backend that remembers the operation's series still refuses an
/// error type longer than a tag value may be, records the duration anyway,
/// and counts every other outcome.
pub fn a_repeated_guard_is_judged_every_time(h: &dyn Harness) {
    let m = h.metrics();
    let long_error = "e".repeat(MAX_TAG_VALUE_LEN + 1);
    let tags = [("k", "v")];
    for error_type in ["timeout", "timeout", long_error.as_str(), "timeout"] {
        m.start("conf.warm", &tags).failure(error_type);
    }
    for _ in 0..3 {
        m.start("conf.warm", &tags).success();
    }
    h.settle();
    assert_eq!(h.samples("conf.warm", &tags), Some(7));
    assert_eq!(h.failures("conf.warm", "timeout", &tags), 3);
    assert_eq!(h.successes("conf.warm", &tags), 3);
    assert_eq!(h.dropped(DropReason::InvalidTag), 1);
}

/// Names and tag values with characters that wire formats reserve
/// (quotes, backslashes, a newline, `:|@#,=;`, spaces, non-ASCII) are accepted and
/// recorded exactly once, into one series each, without creating any
/// other series.
pub fn reserved_characters_are_never_injected(h: &dyn Harness) {
    let m = h.metrics();
    let nasty = "a\"b\\c\nd e:f|g@h#i,j=k;l ✓";
    m.increment("conf.nasty", &[("v", nasty)]);
    m.increment("conf.nasty", &[("v", nasty)]);
    m.record_gauge("conf.nasty:1|c", 2.0, &[("w", "x|#y:z")]);
    h.settle();
    assert_eq!(h.series_count(), 2);
}
