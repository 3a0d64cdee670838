//! [`Tap`]: shows every measurement to an observer on its way down.

use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::backend::{self, DropReason, InstrumentFn, Measurement, OwnedKey, Value};
use metrics_protocol::{Key, MetricCollector, MetricType, Tags};

use super::Layer;

/// Sees every measurement that passes a [`Tap`], before the collector
/// below it does: a live stream, a stream aggregation, a test probe.
/// Called on the recording thread: be quick, never block.
pub trait Observer: Send + Sync {
    /// One measurement on its way down.
    fn observe(&self, measurement: &Measurement<'_>);

    /// Whether [`observe`](Self::observe) may do anything with a
    /// measurement of `name` and `value` (true, the default, when unsure).
    /// False lets the tap pass a recording by name straight down, without
    /// building its key.
    #[inline]
    fn wants(&self, name: &str, value: &Value) -> bool {
        let _ = (name, value);
        true
    }
}

impl<F: Fn(&Measurement<'_>) + Send + Sync> Observer for F {
    fn observe(&self, measurement: &Measurement<'_>) {
        self(measurement)
    }
}

/// Shows each measurement to an [`Observer`], then hands it to the
/// collector below. Bound handles are tapped too.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use metrics_kit::layers::{Stack, TapLayer};
/// use metrics_protocol::Metrics;
/// use metrics_protocol::backend::Measurement;
/// use metrics_protocol::testing::Capture;
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let counter = seen.clone();
/// let capture = Capture::new();
/// let stack = Stack::new(capture.clone())
///     .push(TapLayer::new(move |_: &Measurement<'_>| { counter.fetch_add(1, Ordering::Relaxed); }));
/// let metrics = Metrics::new(Arc::new(stack.into_inner()));
/// metrics.increment("a", &[]);
/// metrics.counter("b", &[]).increment();
/// assert_eq!(seen.load(Ordering::Relaxed), 2);
/// assert_eq!(capture.counter("b", &[]), 1.0);
/// ```
///
/// The observer's type is a parameter (a trait object by default), so a
/// system that knows its observer has its `wants` inlined.
pub struct Tap<C, O: ?Sized = dyn Observer> {
    inner: Arc<C>,
    observer: Arc<O>,
}

impl<C, O: Observer + ?Sized> Tap<C, O> {
    /// Taps `inner` with `observer`.
    pub fn new(inner: C, observer: Arc<O>) -> Self {
        Tap {
            inner: Arc::new(inner),
            observer,
        }
    }

    /// The collector below.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

/// Makes a [`Tap`] (see [`Stack`](super::Stack)).
#[derive(Clone)]
pub struct TapLayer {
    observer: Arc<dyn Observer>,
}

impl TapLayer {
    /// A tap showing every measurement to `observer`.
    pub fn new(observer: impl Observer + 'static) -> Self {
        TapLayer {
            observer: Arc::new(observer),
        }
    }

    /// A tap with an observer already shared.
    pub fn shared(observer: Arc<dyn Observer>) -> Self {
        TapLayer { observer }
    }
}

impl<C> Layer<C> for TapLayer {
    type Output = Tap<C>;
    fn layer(&self, inner: C) -> Tap<C> {
        Tap::new(inner, self.observer.clone())
    }
}

/// A bound handle below a tap: shows each value, with the key it keeps, to
/// the observer, then records it into the handle below.
struct Tapped<O: ?Sized> {
    inner: Arc<dyn InstrumentFn>,
    key: OwnedKey,
    observer: Arc<O>,
}

impl<O: Observer + ?Sized> InstrumentFn for Tapped<O> {
    #[inline]
    fn record(&self, value: Value) {
        self.key.with_key(|key| {
            if let Ok(m) = Measurement::new(key, value) {
                self.observer.observe(&m);
            }
        });
        self.inner.record(value);
    }
    fn reject(&self, reason: DropReason) {
        self.inner.reject(reason);
    }
}

impl<C: MetricCollector + 'static, O: Observer + ?Sized + 'static> MetricCollector for Tap<C, O> {
    #[inline]
    fn record(&self, m: &Measurement<'_>) {
        self.observer.observe(m);
        self.inner.record(m);
    }

    #[inline]
    fn record_by_name(&self, name: &str, tags: Tags<'_>, value: &Value) {
        if self.observer.wants(name, value) {
            backend::record_with_key(self, name, tags, *value)
        } else {
            self.inner.record_by_name(name, tags, value)
        }
    }

    /// Passes a finished timing straight down when the observer wants
    /// neither its duration nor its outcome.
    #[inline]
    fn record_timing_by_name(
        &self,
        name: &str,
        tags: Tags<'_>,
        elapsed: Duration,
        failure: Option<&str>,
    ) {
        let outcome = if failure.is_some() {
            Value::Failure
        } else {
            Value::Success
        };
        if self.observer.wants(name, &Value::Timer(elapsed)) || self.observer.wants(name, &outcome)
        {
            backend::record_timing_with_key(self, name, tags, elapsed, failure)
        } else {
            self.inner
                .record_timing_by_name(name, tags, elapsed, failure)
        }
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        let below: Arc<dyn MetricCollector> = self.inner.clone();
        let inner = backend::bind(&below, key, kind);
        Some(Arc::new(Tapped {
            inner,
            key: OwnedKey::from(key),
            observer: self.observer.clone(),
        }))
    }

    metrics_protocol::forward_collector!(@describe @rest |s| &*s.inner);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use metrics_protocol::Metrics;
    use metrics_protocol::testing::Capture;

    use super::*;

    /// Wants only names starting with `db.`, and keeps what it sees.
    #[derive(Default)]
    struct DbOnly(Mutex<Vec<String>>);

    impl Observer for DbOnly {
        fn wants(&self, name: &str, _: &Value) -> bool {
            name.starts_with("db.")
        }
        fn observe(&self, m: &Measurement<'_>) {
            self.0.lock().unwrap().push(m.key().name().to_owned());
        }
    }

    #[test]
    fn by_name_recordings_the_observer_does_not_want_pass_straight_down() {
        let capture = Capture::new();
        let observer = Arc::new(DbOnly::default());
        let tap = Tap::new(capture.clone(), observer.clone());
        let metrics = Metrics::new(Arc::new(tap));
        metrics.increment("http.requests", &[("code", "200")]);
        metrics.record_histogram("db.latency", 3.0, &[]);
        // Refused either way, counted once, shown to nobody.
        metrics.increment("http\nrequests", &[]);
        metrics.increment("db\nlatency", &[]);
        metrics.record_counter("http.requests", -1.0, &[("code", "200")]);
        assert_eq!(capture.counter("http.requests", &[("code", "200")]), 1.0);
        assert_eq!(capture.histogram("db.latency", &[]), vec![3.0]);
        assert_eq!(capture.dropped(DropReason::InvalidName), 2);
        assert_eq!(capture.dropped(DropReason::NegativeCounter), 1);
        assert_eq!(*observer.0.lock().unwrap(), vec!["db.latency".to_owned()]);
    }

    #[test]
    fn timings_the_observer_does_not_want_pass_straight_down() {
        let capture = Capture::new();
        let observer = Arc::new(DbOnly::default());
        let metrics = Metrics::new(Arc::new(Tap::new(capture.clone(), observer.clone())));
        metrics.start("http.get", &[]).success();
        metrics.start("db.query", &[]).failure("timeout");
        metrics.start("http\nget", &[]).success();
        assert_eq!(capture.timings("http.get", &[]).len(), 1);
        assert_eq!(capture.timings("db.query", &[]).len(), 1);
        assert_eq!(capture.successes("http.get", &[]), 1);
        assert_eq!(capture.failures("db.query", "timeout", &[]), 1);
        // Refused twice (duration and outcome) either way.
        assert_eq!(capture.dropped(DropReason::InvalidName), 2);
        // The observer saw both measurements of the timing it wants.
        assert_eq!(*observer.0.lock().unwrap(), vec!["db.query"; 2]);
    }
}
