//! Outcomes: exactly one success or failure per operation, with its tags
//! and an error type, however the timing guard ends.

use std::panic::{AssertUnwindSafe, catch_unwind};

use metrics_protocol::ErrorType;
use metrics_protocol::backend::outcome::{ABANDONED, PANICKED};

use crate::Harness;

/// Every way a timing guard ends records exactly one outcome with the
/// guard's tags; a guard dropped without one is an abandoned failure,
/// never a success.
pub fn every_guard_ends_in_exactly_one(h: &dyn Harness) {
    let m = h.metrics();
    let tags = [("queue", "a"), ("region", "eu")];
    m.start("conf.job", &tags).success();
    m.start("conf.job", &tags).failure("timeout");
    drop(m.start("conf.job", &tags));
    assert_eq!(m.time("conf.job", &tags, || 7), 7);
    let r: Result<(), &str> = m.time_result("conf.job", &tags, || Err("timeout"));
    assert!(r.is_err());
    let r: Result<u8, &str> = m.time_result("conf.job", &tags, || Ok(1));
    assert_eq!(r, Ok(1));
    h.settle();
    let reversed = [("region", "eu"), ("queue", "a")];
    assert_eq!(h.successes("conf.job", &reversed), 3);
    assert_eq!(h.failures("conf.job", "timeout", &reversed), 2);
    assert_eq!(h.failures("conf.job", ABANDONED, &reversed), 1);
    assert_eq!(h.successes("conf.job", &[("queue", "a")]), 0);
}

/// Outcomes recorded with different tags are told apart, and outcomes
/// without a guard count like those with one.
pub fn outcomes_keep_their_tags(h: &dyn Harness) {
    let m = h.metrics();
    m.record_success("conf.push", &[("remote", "origin")]);
    m.record_success("conf.push", &[("remote", "origin")]);
    m.record_success("conf.push", &[("remote", "backup")]);
    m.record_failure("conf.push", "auth", &[("remote", "backup")]);
    m.record_success("conf.push", &[]);
    h.settle();
    assert_eq!(h.successes("conf.push", &[("remote", "origin")]), 2);
    assert_eq!(h.successes("conf.push", &[("remote", "backup")]), 1);
    assert_eq!(h.successes("conf.push", &[]), 1);
    assert_eq!(h.failures("conf.push", "auth", &[("remote", "backup")]), 1);
    assert_eq!(h.failures("conf.push", "auth", &[("remote", "origin")]), 0);
    assert_eq!(h.failures("conf.push", "auth", &[]), 0);
}

/// A thread that panics while it holds a guard records the duration and
/// one failure of error type `panicked`, and no success.
pub fn a_panic_is_a_panicked_failure(h: &dyn Harness) {
    let m = h.metrics();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _timing = m.start("conf.render", &[("page", "home")]);
        panic!("a deliberate panic while a timing guard is held");
    }));
    assert!(caught.is_err());
    h.settle();
    assert_eq!(h.failures("conf.render", PANICKED, &[("page", "home")]), 1);
    assert_eq!(h.successes("conf.render", &[("page", "home")]), 0);
    assert_eq!(h.samples("conf.render", &[("page", "home")]), Some(1));
}

/// An error ends a timed operation as a failure of the error's
/// [`ErrorType`]: an `io::Error` under its kind in snake case, an
/// application's error under the word it chose.
pub fn errors_count_under_their_error_type(h: &dyn Harness) {
    enum Upload {
        Quota,
    }
    impl ErrorType for Upload {
        fn error_type(&self) -> &str {
            match self {
                Upload::Quota => "quota",
            }
        }
    }
    let m = h.metrics();
    let r: Result<(), std::io::Error> =
        m.time_result(
            "conf.read",
            &[],
            || Err(std::io::ErrorKind::NotFound.into()),
        );
    assert!(r.is_err());
    let r: Result<(), std::io::Error> =
        m.time_result(
            "conf.read",
            &[],
            || Err(std::io::ErrorKind::TimedOut.into()),
        );
    assert!(r.is_err());
    let r: Result<(), Upload> = m.time_result("conf.upload", &[], || Err(Upload::Quota));
    assert!(r.is_err());
    m.start("conf.upload", &[])
        .finish(&Err::<(), _>(Upload::Quota));
    h.settle();
    assert_eq!(h.failures("conf.read", "not_found", &[]), 1);
    assert_eq!(h.failures("conf.read", "timed_out", &[]), 1);
    assert_eq!(h.failures("conf.upload", "quota", &[]), 2);
    assert_eq!(h.successes("conf.upload", &[]), 0);
}
