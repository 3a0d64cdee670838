//! [`Metrics`]: the one handle a library holds. It records, times and
//! tracks outcomes, and is built by the application from any backend.

use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::DropReason;
use crate::collector::MetricCollector;
use crate::error::MetricsError;
use crate::instruments::{Counter, Gauge, Histogram, Timer, bind_name};
use crate::key::Key;
use crate::measurement::{Measurement, Value};
use crate::noop::NoopMetrics;
use crate::types::{MetricType, MetricUnit, Tags};

/// Outcomes: the error types a guard records when an operation was not
/// completed by its caller (each a failure of the operation, with this
/// `error_type`), and how backends that export outcomes as counters name
/// them: `<operation>.success`, and `<operation>.failure` tagged
/// `error_type`.
pub mod outcome {
    /// Suffix of the success counter of an operation.
    pub const SUCCESS_SUFFIX: &str = ".success";
    /// Suffix of the failure counter of an operation.
    pub const FAILURE_SUFFIX: &str = ".failure";
    /// The tag that carries the kind of a failure.
    pub const ERROR_TYPE_TAG: &str = "error_type";
    /// The guard was dropped without [`success`](super::Timing::success) or
    /// [`failure`](super::Timing::failure): an early return or a `?`.
    pub const ABANDONED: &str = "abandoned";
    /// The thread panicked while the guard was held.
    pub const PANICKED: &str = "panicked";
    /// A future timed by [`Metrics::time_async`](super::Metrics::time_async)
    /// was dropped before it completed (a timeout, a `select!` that took
    /// another branch, an aborted task).
    pub const CANCELLED: &str = "cancelled";
}

/// The one value a library holds to record metrics: cheap to clone (one
/// `Arc`), `Send + Sync`, and a [`MetricCollector`] itself.
///
/// The application builds it from any backend (`Metrics::new(memory)`), from
/// a fan-out of several, or takes it from its metrics system; a library given
/// none uses [`Metrics::noop`] (also the [`Default`]).
///
/// ```
/// use metrics_protocol::Metrics;
///
/// #[derive(Clone, Default)]
/// pub struct Uploader { metrics: Metrics }
///
/// impl Uploader {
///     pub fn upload(&self, bytes: &[u8]) -> std::io::Result<()> {
///         let timing = self.metrics.start("upload", &[("kind", "blob")]);
///         self.metrics.record_histogram("upload.bytes", bytes.len() as f64, &[]);
///         let result = if bytes.is_empty() {
///             Err(std::io::Error::other("empty"))
///         } else {
///             Ok(())
///         };
///         timing.finish(&result); // the duration, then a success or a failure
///         result
///     }
/// }
///
/// Uploader::default().upload(b"hello").unwrap(); // records nowhere
/// ```
///
/// # Timing
///
/// [`start`](Self::start) returns a [`Timing`] guard; [`time`](Self::time),
/// [`time_result`](Self::time_result), [`time_async`](Self::time_async) and
/// [`time_async_result`](Self::time_async_result) wrap one around a closure
/// or a future. A guard allocates nothing, takes no lock and reads the
/// monotonic clock twice. When it ends it records the duration into the
/// timer series `operation` and exactly one outcome of `operation`:
///
/// | how the guard ends | outcome recorded |
/// | --- | --- |
/// | [`success`](Timing::success), `Ok` | success |
/// | [`failure(error_type)`](Timing::failure), `Err(e)` | failure, `e`'s [`ErrorType`] |
/// | dropped with neither (early return) | failure, [`outcome::ABANDONED`] |
/// | dropped while panicking | failure, [`outcome::PANICKED`] |
/// | a timed future dropped before completion | failure, [`outcome::CANCELLED`] |
#[derive(Clone)]
pub struct Metrics {
    backend: Arc<dyn MetricCollector>,
}

/// Builds the [`Key`] of `name`/`tags` and the [`Measurement`] of `value`
/// and hands it to `backend`'s [`record`](MetricCollector::record), or to
/// its [`reject`](MetricCollector::reject) with the first broken rule: what
/// [`MetricCollector::record_by_name`] does by default, for a layer that
/// overrides it and falls back.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use metrics_protocol::MetricCollector;
/// use metrics_protocol::backend::{self, DropReason, Measurement, Value};
///
/// #[derive(Default)]
/// struct Tally { recorded: AtomicU64, negative: AtomicU64 }
/// impl MetricCollector for Tally {
///     fn record(&self, _: &Measurement<'_>) { self.recorded.fetch_add(1, Relaxed); }
///     fn reject(&self, reason: DropReason) {
///         if reason == DropReason::NegativeCounter { self.negative.fetch_add(1, Relaxed); }
///     }
/// }
/// let tally = Tally::default();
/// backend::record_with_key(&tally, "jobs", &[("queue", "email")], Value::Counter(2.0));
/// backend::record_with_key(&tally, "jobs", &[], Value::Counter(-1.0));
/// assert_eq!(tally.recorded.load(Relaxed), 1);
/// assert_eq!(tally.negative.load(Relaxed), 1);
/// ```
#[inline]
pub fn record_with_key<C: MetricCollector + ?Sized>(
    backend: &C,
    name: &str,
    tags: Tags<'_>,
    value: Value,
) {
    match Key::new(name, tags) {
        Ok(key) => record_key(backend, &key, value),
        Err(reason) => backend.reject(reason),
    }
}

#[inline]
pub(crate) fn record_key<C: MetricCollector + ?Sized>(backend: &C, key: &Key<'_>, value: Value) {
    match Measurement::new(key, value) {
        Ok(m) => backend.record(&m),
        Err(reason) => backend.reject(reason),
    }
}

/// What a finished timing records, written once for the guard and every
/// [`PerformanceTimer`](crate::PerformanceTimer): the duration into the
/// timer series `key`, then exactly one outcome of it, a success (`failure`
/// is `None`) or a failure of that error type. A key that could not be
/// built refuses both, each counted under its reason.
///
/// ```
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use metrics_protocol::{Key, MetricCollector};
/// use metrics_protocol::backend::{self, DropReason, Measurement, Value};
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<String>>);
/// impl MetricCollector for Log {
///     fn record(&self, m: &Measurement<'_>) {
///         let what = match (m.value(), m.error_type()) {
///             (Value::Timer(d), _) => format!("{:?}", d),
///             (_, Some(error_type)) => format!("failure {error_type}"),
///             _ => "success".into(),
///         };
///         self.0.lock().unwrap().push(what);
///     }
///     fn reject(&self, reason: DropReason) {
///         self.0.lock().unwrap().push(format!("{reason:?}"));
///     }
/// }
/// let log = Log::default();
/// let key = Key::new("db.query", &[]);
/// backend::record_timing(&log, key.as_ref(), Duration::from_millis(3), Some("timeout"));
/// backend::record_timing(&log, Err(&DropReason::InvalidName), Duration::ZERO, None);
/// assert_eq!(
///     *log.0.lock().unwrap(),
///     ["3ms", "failure timeout", "InvalidName", "InvalidName"]
/// );
/// ```
pub fn record_timing<C: MetricCollector + ?Sized>(
    backend: &C,
    key: Result<&Key<'_>, &DropReason>,
    elapsed: Duration,
    failure: Option<&str>,
) {
    match key {
        Ok(key) => {
            record_key(backend, key, Value::Timer(elapsed));
            match failure {
                None => record_key(backend, key, Value::Success),
                Some(error_type) => record_failure_key(backend, key, error_type),
            }
        }
        Err(reason) => {
            // Neither the duration nor the outcome has a series.
            backend.reject(*reason);
            backend.reject(*reason);
        }
    }
}

/// Builds the [`Key`] of `name`/`tags` once and records a finished timing
/// through [`record_timing`]: what
/// [`MetricCollector::record_timing_by_name`] does by default, for a layer
/// that overrides it and falls back (as [`record_with_key`] is for
/// [`record_by_name`](MetricCollector::record_by_name)).
#[inline]
pub fn record_timing_with_key<C: MetricCollector + ?Sized>(
    backend: &C,
    name: &str,
    tags: Tags<'_>,
    elapsed: Duration,
    failure: Option<&str>,
) {
    record_timing(backend, Key::new(name, tags).as_ref(), elapsed, failure)
}

#[inline]
pub(crate) fn record_failure_key<C: MetricCollector + ?Sized>(
    backend: &C,
    key: &Key<'_>,
    error_type: &str,
) {
    match Measurement::failure(key, error_type) {
        Ok(m) => backend.record(&m),
        Err(reason) => backend.reject(reason),
    }
}

impl Metrics {
    /// A handle recording into `backend`.
    pub fn new<B: MetricCollector + 'static>(backend: Arc<B>) -> Self {
        Metrics { backend }
    }

    /// A handle recording into a backend already behind a trait object.
    pub fn from_dyn(backend: Arc<dyn MetricCollector>) -> Self {
        Metrics { backend }
    }

    /// A handle that records nothing ([`NoopMetrics`]).
    pub fn noop() -> Self {
        Metrics::new(Arc::new(NoopMetrics))
    }

    /// The backend behind the handle.
    pub fn collector(&self) -> &Arc<dyn MetricCollector> {
        &self.backend
    }

    /// Records `value` into the series `key` (a [`Key`] built once, often a
    /// constant): no name or tag is checked or hashed again.
    #[inline]
    pub fn record(&self, key: &Key<'_>, value: Value) {
        record_key(&*self.backend, key, value)
    }

    /// Adds `value` (finite, not negative) to the counter `name`.
    #[inline]
    pub fn record_counter(&self, name: &str, value: f64, tags: Tags<'_>) {
        self.backend
            .record_by_name(name, tags, &Value::Counter(value))
    }

    /// Adds one to the counter `name`.
    #[inline]
    pub fn increment(&self, name: &str, tags: Tags<'_>) {
        self.backend
            .record_by_name(name, tags, &Value::Counter(1.0))
    }

    /// Sets the gauge `name` to `value`.
    #[inline]
    pub fn record_gauge(&self, name: &str, value: f64, tags: Tags<'_>) {
        self.backend
            .record_by_name(name, tags, &Value::Gauge(value))
    }

    /// Adds `delta` (negative to decrease) to the gauge `name`.
    #[inline]
    pub fn adjust_gauge(&self, name: &str, delta: f64, tags: Tags<'_>) {
        self.backend
            .record_by_name(name, tags, &Value::GaugeDelta(delta))
    }

    /// Records one sample of the histogram `name`.
    #[inline]
    pub fn record_histogram(&self, name: &str, value: f64, tags: Tags<'_>) {
        self.backend
            .record_by_name(name, tags, &Value::Histogram(value))
    }

    /// Records one duration of the timer `name`.
    #[inline]
    pub fn record_timer(&self, name: &str, duration: Duration, tags: Tags<'_>) {
        self.backend
            .record_by_name(name, tags, &Value::Timer(duration))
    }

    /// Counts one success of `operation`.
    #[inline]
    pub fn record_success(&self, operation: &str, tags: Tags<'_>) {
        self.backend
            .record_by_name(operation, tags, &Value::Success)
    }

    /// Counts one failure of `operation`, of kind `error_type`.
    #[inline]
    pub fn record_failure(&self, operation: &str, error_type: &str, tags: Tags<'_>) {
        match Key::new(operation, tags) {
            Ok(key) => record_failure_key(&*self.backend, &key, error_type),
            Err(reason) => self.backend.reject(reason),
        }
    }

    /// Describes the metric `name` (kind, unit, one-line help) for the
    /// exports that carry it.
    pub fn describe(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>, help: &str) {
        self.backend.describe(name, kind, unit, help)
    }

    /// A counter bound to `name` and `tags`: records without a lookup.
    pub fn counter(&self, name: &str, tags: Tags<'_>) -> Counter {
        Counter::from_arc(bind_name(&self.backend, name, tags, MetricType::Counter))
    }

    /// A gauge bound to `name` and `tags`.
    pub fn gauge(&self, name: &str, tags: Tags<'_>) -> Gauge {
        Gauge::from_arc(bind_name(&self.backend, name, tags, MetricType::Gauge))
    }

    /// A histogram bound to `name` and `tags`.
    pub fn histogram(&self, name: &str, tags: Tags<'_>) -> Histogram {
        Histogram::from_arc(bind_name(&self.backend, name, tags, MetricType::Histogram))
    }

    /// A timer bound to `name` and `tags`.
    pub fn timer(&self, name: &str, tags: Tags<'_>) -> Timer {
        Timer::from_arc(bind_name(&self.backend, name, tags, MetricType::Timer))
    }

    /// Starts timing `operation`; the guard records when it ends (see
    /// [Timing](Self#timing)).
    ///
    /// ```
    /// use metrics_protocol::Metrics;
    /// fn fetch(metrics: &Metrics, key: &str) -> Option<u32> {
    ///     let timing = metrics.start("cache.fetch", &[("tier", "l1")]);
    ///     if key.is_empty() {
    ///         return None; // recorded as a failure, error type "abandoned"
    ///     }
    ///     timing.success();
    ///     Some(7)
    /// }
    /// assert_eq!(fetch(&Metrics::noop(), "k"), Some(7));
    /// ```
    #[inline]
    pub fn start<'a>(&'a self, operation: &'a str, tags: Tags<'a>) -> Timing<'a> {
        Timing::new(&*self.backend, operation, tags, outcome::ABANDONED)
    }

    /// Runs `f` under a guard: records its duration and a success (a
    /// failure of error type [`outcome::PANICKED`] if it panics), and
    /// returns its result.
    ///
    /// ```
    /// use metrics_protocol::Metrics;
    /// assert_eq!(Metrics::noop().time("compute", &[], || 6 * 7), 42);
    /// ```
    #[inline]
    pub fn time<R>(&self, operation: &str, tags: Tags<'_>, f: impl FnOnce() -> R) -> R {
        let timing = self.start(operation, tags);
        let out = f();
        timing.success();
        out
    }

    /// Runs `f` under a guard: records its duration and a success for `Ok`
    /// or a failure of the error's [`ErrorType`] for `Err`, and returns its
    /// result.
    ///
    /// ```
    /// use metrics_protocol::Metrics;
    /// let r = Metrics::noop().time_result("read", &[], || std::fs::read("/no/such/file"));
    /// assert!(r.is_err()); // recorded as a failure of error type "not_found"
    /// ```
    #[inline]
    pub fn time_result<T, E: ErrorType>(
        &self,
        operation: &str,
        tags: Tags<'_>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let timing = self.start(operation, tags);
        let out = f();
        timing.finish(&out);
        out
    }

    /// Awaits `fut` under a guard, then records its duration and a success.
    /// If the returned future is dropped first (a timeout, a `select!`), it
    /// records the time until then and a failure of error type
    /// [`outcome::CANCELLED`].
    ///
    /// ```
    /// use std::pin::pin;
    /// use std::task::{Context, Poll, Waker};
    /// use metrics_protocol::Metrics;
    ///
    /// let metrics = Metrics::noop();
    /// let mut timed = pin!(metrics.time_async("compute", &[], async { 42 }));
    /// let poll = timed.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    /// assert_eq!(poll, Poll::Ready(42));
    /// ```
    pub async fn time_async<F: IntoFuture>(
        &self,
        operation: &str,
        tags: Tags<'_>,
        fut: F,
    ) -> F::Output {
        let timing = Timing::new(&*self.backend, operation, tags, outcome::CANCELLED);
        let out = fut.await;
        timing.success();
        out
    }

    /// [`time_async`](Self::time_async) for a future that yields a `Result`:
    /// `Err(e)` records a failure of `e`'s [`ErrorType`].
    pub async fn time_async_result<T, E, F>(
        &self,
        operation: &str,
        tags: Tags<'_>,
        fut: F,
    ) -> Result<T, E>
    where
        E: ErrorType,
        F: IntoFuture<Output = Result<T, E>>,
    {
        let timing = Timing::new(&*self.backend, operation, tags, outcome::CANCELLED);
        let out = fut.await;
        timing.finish(&out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::noop()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl<B: MetricCollector + 'static> From<Arc<B>> for Metrics {
    fn from(backend: Arc<B>) -> Self {
        Metrics::new(backend)
    }
}

impl MetricCollector for Metrics {
    crate::forward_collector!(|s| &*s.backend);
}

/// A running timing of one operation, from [`Metrics::start`]. It records
/// once, when it ends: the duration into the timer series `operation`, then
/// one outcome (see [Timing](Metrics#timing)).
///
/// It borrows the operation name and tags and reads `Instant::now()` at
/// start and end; it allocates nothing and takes no lock. The name and tags
/// are checked when it ends, by the backend's
/// [`record_timing_by_name`](MetricCollector::record_timing_by_name): one
/// that already holds the operation's series finds it without building a
/// key.
#[must_use = "a timing records when it ends: call success(), failure() or finish()"]
pub struct Timing<'a> {
    backend: &'a dyn MetricCollector,
    operation: &'a str,
    tags: Tags<'a>,
    started: Instant,
    if_dropped: &'static str,
    done: bool,
}

impl<'a> Timing<'a> {
    pub(crate) fn new(
        backend: &'a dyn MetricCollector,
        operation: &'a str,
        tags: Tags<'a>,
        if_dropped: &'static str,
    ) -> Self {
        Timing {
            backend,
            operation,
            tags,
            started: Instant::now(),
            if_dropped,
            done: false,
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends with a success; returns the duration recorded.
    #[inline]
    pub fn success(mut self) -> Duration {
        self.end(None)
    }

    /// Ends with a failure of kind `error_type`; returns the duration recorded.
    #[inline]
    pub fn failure(mut self, error_type: &str) -> Duration {
        self.end(Some(error_type))
    }

    /// Ends with a success for `Ok`, or a failure of the error's
    /// [`ErrorType`] for `Err`; returns the duration recorded.
    #[inline]
    pub fn finish<T, E: ErrorType>(mut self, result: &Result<T, E>) -> Duration {
        match result {
            Ok(_) => self.end(None),
            Err(e) => self.end(Some(e.error_type())),
        }
    }

    fn end(&mut self, failure: Option<&str>) -> Duration {
        self.done = true;
        let elapsed = self.started.elapsed();
        self.backend
            .record_timing_by_name(self.operation, self.tags, elapsed, failure);
        elapsed
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        if !self.done {
            let error_type = if std::thread::panicking() {
                outcome::PANICKED
            } else {
                self.if_dropped
            };
            self.end(Some(error_type));
        }
    }
}

impl fmt::Debug for Timing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timing")
            .field("operation", &self.operation)
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

/// The `error_type` an error is counted under when a timed operation fails:
/// a short, stable, low-cardinality word (`"timeout"`, `"not_found"`), never
/// the error's message.
///
/// Implement it on your error enum with one `match`:
///
/// ```
/// use metrics_protocol::ErrorType;
/// enum UploadError { Timeout, Rejected(String) }
/// impl ErrorType for UploadError {
///     fn error_type(&self) -> &str {
///         match self {
///             UploadError::Timeout => "timeout",
///             UploadError::Rejected(_) => "rejected",
///         }
///     }
/// }
/// assert_eq!(UploadError::Rejected("quota".into()).error_type(), "rejected");
/// ```
pub trait ErrorType {
    /// The error type to count this error under.
    fn error_type(&self) -> &str;
}

impl ErrorType for str {
    fn error_type(&self) -> &str {
        self
    }
}

impl ErrorType for String {
    fn error_type(&self) -> &str {
        self
    }
}

impl<E: ErrorType + ?Sized> ErrorType for &E {
    fn error_type(&self) -> &str {
        (**self).error_type()
    }
}

impl<E: ErrorType + ?Sized> ErrorType for Box<E> {
    fn error_type(&self) -> &str {
        (**self).error_type()
    }
}

impl ErrorType for std::convert::Infallible {
    fn error_type(&self) -> &str {
        match *self {}
    }
}

/// The `io::ErrorKind` in snake case for the common kinds, `"io"` for the rest.
impl ErrorType for std::io::Error {
    fn error_type(&self) -> &str {
        use std::io::ErrorKind::*;
        match self.kind() {
            NotFound => "not_found",
            PermissionDenied => "permission_denied",
            ConnectionRefused => "connection_refused",
            ConnectionReset => "connection_reset",
            ConnectionAborted => "connection_aborted",
            NotConnected => "not_connected",
            AddrInUse => "addr_in_use",
            AddrNotAvailable => "addr_not_available",
            BrokenPipe => "broken_pipe",
            AlreadyExists => "already_exists",
            WouldBlock => "would_block",
            InvalidInput => "invalid_input",
            InvalidData => "invalid_data",
            TimedOut => "timed_out",
            WriteZero => "write_zero",
            Interrupted => "interrupted",
            Unsupported => "unsupported",
            UnexpectedEof => "unexpected_eof",
            OutOfMemory => "out_of_memory",
            _ => "io",
        }
    }
}

/// The error's variant name in snake case (`no_data`, `unknown_timer`, ...).
impl ErrorType for MetricsError {
    fn error_type(&self) -> &str {
        match self {
            MetricsError::UnknownTimer(_) => "unknown_timer",
            MetricsError::UnsupportedFormat(_) => "unsupported_format",
            MetricsError::NoData(_) => "no_data",
            MetricsError::Unsupported { .. } => "unsupported",
            MetricsError::IncompatibleUnits { .. } => "incompatible_units",
            MetricsError::InvalidArgument(_) => "invalid_argument",
            MetricsError::NotFound(_) => "not_found",
            MetricsError::Io { source, .. } => source.error_type(),
        }
    }
}
