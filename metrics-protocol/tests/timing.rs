//! Timing that cannot lie: every way a guard can end records the duration
//! and exactly one outcome, never a success it did not see.

use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use metrics_protocol::Metrics;
use metrics_protocol::backend::outcome;
use metrics_protocol::testing::Capture;

const TAGS: &[(&str, &str)] = &[("bucket", "b1")];

fn outcomes(c: &Capture, op: &str) -> (u64, Vec<(String, u64)>) {
    let ok = c.successes(op, TAGS);
    let failed = [
        "quota",
        outcome::ABANDONED,
        outcome::PANICKED,
        outcome::CANCELLED,
        "not_found",
    ]
    .into_iter()
    .map(|e| (e.to_owned(), c.failures(op, e, TAGS)))
    .filter(|(_, n)| *n > 0)
    .collect();
    (ok, failed)
}

#[test]
fn success_and_failure_are_recorded_once_each() {
    let c = Capture::new();
    let m = c.metrics();
    m.start("upload", TAGS).success();
    m.start("upload", TAGS).failure("quota");
    assert_eq!(c.timings("upload", TAGS).len(), 2);
    assert_eq!(outcomes(&c, "upload"), (1, vec![("quota".into(), 1)]));
}

#[test]
fn an_early_return_is_abandoned_not_a_success() {
    fn upload(m: &Metrics, fail: bool) -> Result<(), ()> {
        let t = m.start("upload", TAGS);
        if fail {
            return Err(()); // no outcome given
        }
        t.success();
        Ok(())
    }
    let c = Capture::new();
    let m = c.metrics();
    for fail in [false, true, true] {
        let _ = upload(&m, fail);
    }
    assert_eq!(
        outcomes(&c, "upload"),
        (1, vec![(outcome::ABANDONED.into(), 2)])
    );
    assert_eq!(c.timings("upload", TAGS).len(), 3);
}

#[test]
fn a_panic_under_a_guard_is_recorded_as_panicked() {
    let c = Capture::new();
    let m = c.metrics();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.time("upload", TAGS, || panic!("boom"));
    }));
    assert!(r.is_err());
    assert_eq!(
        outcomes(&c, "upload"),
        (0, vec![(outcome::PANICKED.into(), 1)])
    );
}

#[test]
fn time_result_uses_the_errors_type() {
    let c = Capture::new();
    let m = c.metrics();
    let r = m.time_result("read", TAGS, || std::fs::read("/definitely/not/here"));
    assert!(r.is_err());
    let ok: Result<u8, std::io::Error> = m.time_result("read", TAGS, || Ok(1));
    assert_eq!(ok.unwrap(), 1);
    assert_eq!(outcomes(&c, "read"), (1, vec![("not_found".into(), 1)]));
}

#[test]
fn an_async_timing_covers_the_whole_future_and_a_cancellation_is_cancelled() {
    let c = Capture::new();
    let m = c.metrics();
    let mut cx = Context::from_waker(Waker::noop());

    // A future that is pending once: the timing must span both polls.
    let mut polled = false;
    let slow = std::future::poll_fn(move |cx| {
        if polled {
            Poll::Ready(5)
        } else {
            polled = true;
            std::thread::sleep(Duration::from_millis(20));
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    });
    let mut fut = pin!(m.time_async("fetch", TAGS, slow));
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        c.timings("fetch", TAGS).len(),
        0,
        "nothing is recorded before completion"
    );
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(5));
    let t = c.timings("fetch", TAGS);
    assert_eq!(t.len(), 1);
    assert!(
        t[0] >= Duration::from_millis(20),
        "the wait is timed, not only creation: {t:?}"
    );
    assert_eq!(outcomes(&c, "fetch"), (1, vec![]));

    // Dropped while pending, as a timeout would: a cancellation.
    {
        let mut never = pin!(m.time_async("fetch", TAGS, std::future::pending::<()>()));
        assert!(never.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        outcomes(&c, "fetch"),
        (1, vec![(outcome::CANCELLED.into(), 1)])
    );

    // An Err from an async result names its type.
    let mut failing = pin!(m.time_async_result("fetch", TAGS, async {
        Err::<(), _>(std::io::Error::from(std::io::ErrorKind::NotFound))
    }));
    assert!(matches!(
        failing.as_mut().poll(&mut cx),
        Poll::Ready(Err(_))
    ));
    assert_eq!(c.failures("fetch", "not_found", TAGS), 1);
}

#[test]
fn gauges_go_up_and_down_and_counters_only_up() {
    let c = Capture::new();
    let m = c.metrics();
    let inflight = m.gauge("inflight", &[]);
    inflight.increment();
    inflight.increment();
    inflight.decrement();
    m.increment("requests", &[]);
    m.record_counter("requests", -1.0, &[]); // a counter never goes down: dropped, counted
    assert_eq!(c.gauge("inflight", &[]), Some(1.0));
    assert_eq!(c.counter("requests", &[]), 1.0);
    assert_eq!(
        c.dropped(metrics_protocol::backend::DropReason::NegativeCounter),
        1
    );
}
