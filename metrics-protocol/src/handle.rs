//! [`Metrics`]: the one handle a library holds. It records, times and
//! tracks outcomes, and is built by the application from any backend.

use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collector::MetricCollector;
use crate::error::MetricsError;
use crate::health::BackendHealth;
use crate::instruments::{
    Counter, Gauge, Histogram, Timer, bind_counter, bind_gauge, bind_histogram, bind_timer,
};
use crate::noop::NoopMetrics;
use crate::tracking::SuccessFailureTracker;
use crate::types::{MetricType, MetricUnit, Tags};

/// What a [`Metrics`] handle records into: any value that is both a
/// [`MetricCollector`] and a [`SuccessFailureTracker`] (every backend, a
/// fan-out of backends, the composed system, the mocks). Implemented
/// automatically; nobody implements it by hand.
///
/// ```
/// use std::sync::Arc;
/// use metrics_protocol::{Metrics, MetricsBackend, NoopMetrics};
///
/// fn handle_for(backend: Arc<dyn MetricsBackend>) -> Metrics {
///     Metrics::from_dyn(backend)
/// }
/// handle_for(Arc::new(NoopMetrics)).increment("ready", &[]);
/// ```
pub trait MetricsBackend: MetricCollector + SuccessFailureTracker {}

impl<T: MetricCollector + SuccessFailureTracker + ?Sized> MetricsBackend for T {}

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
/// `Arc`), `Send + Sync`, and a [`MetricCollector`] and
/// [`SuccessFailureTracker`] itself.
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
    backend: Arc<dyn MetricsBackend>,
}

impl Metrics {
    /// A handle recording into `backend`.
    pub fn new<B: MetricsBackend + 'static>(backend: Arc<B>) -> Self {
        Metrics { backend }
    }

    /// A handle recording into a backend already behind a trait object.
    pub fn from_dyn(backend: Arc<dyn MetricsBackend>) -> Self {
        Metrics { backend }
    }

    /// A handle that records nothing ([`NoopMetrics`]).
    pub fn noop() -> Self {
        Metrics::new(Arc::new(NoopMetrics))
    }

    /// The backend behind the handle.
    pub fn backend(&self) -> &Arc<dyn MetricsBackend> {
        &self.backend
    }

    /// The backend as a plain collector (for APIs that take one).
    pub fn collector(&self) -> Arc<dyn MetricCollector> {
        self.backend.clone()
    }

    /// Adds `value` (finite, not negative) to the counter `name`.
    /// (Inherent forwarders: no trait import is needed to record.)
    #[inline]
    pub fn record_counter(&self, name: &str, value: f64, tags: Tags<'_>) {
        self.backend.record_counter(name, value, tags)
    }

    /// Adds one to the counter `name`.
    #[inline]
    pub fn increment(&self, name: &str, tags: Tags<'_>) {
        self.backend.record_counter(name, 1.0, tags)
    }

    /// Sets the gauge `name` to `value`.
    #[inline]
    pub fn record_gauge(&self, name: &str, value: f64, tags: Tags<'_>) {
        self.backend.record_gauge(name, value, tags)
    }

    /// Adds `delta` (negative to decrease) to the gauge `name`.
    #[inline]
    pub fn adjust_gauge(&self, name: &str, delta: f64, tags: Tags<'_>) {
        self.backend.adjust_gauge(name, delta, tags)
    }

    /// Records one sample of the histogram `name`.
    #[inline]
    pub fn record_histogram(&self, name: &str, value: f64, tags: Tags<'_>) {
        self.backend.record_histogram(name, value, tags)
    }

    /// Records one duration of the timer `name`.
    #[inline]
    pub fn record_timer(&self, name: &str, duration: Duration, tags: Tags<'_>) {
        self.backend.record_timer(name, duration, tags)
    }

    /// Counts one success of `operation`.
    #[inline]
    pub fn record_success(&self, operation: &str, tags: Tags<'_>) {
        self.backend.record_success(operation, tags)
    }

    /// Counts one failure of `operation`, of kind `error_type`.
    #[inline]
    pub fn record_failure(&self, operation: &str, error_type: &str, tags: Tags<'_>) {
        self.backend.record_failure(operation, error_type, tags)
    }

    /// A counter bound to `name` and `tags`: records without a lookup.
    pub fn counter(&self, name: &str, tags: Tags<'_>) -> Counter {
        bind_counter(&self.collector(), name, tags)
    }

    /// A gauge bound to `name` and `tags`.
    pub fn gauge(&self, name: &str, tags: Tags<'_>) -> Gauge {
        bind_gauge(&self.collector(), name, tags)
    }

    /// A histogram bound to `name` and `tags`.
    pub fn histogram(&self, name: &str, tags: Tags<'_>) -> Histogram {
        bind_histogram(&self.collector(), name, tags)
    }

    /// A timer bound to `name` and `tags`.
    pub fn timer(&self, name: &str, tags: Tags<'_>) -> Timer {
        bind_timer(&self.collector(), name, tags)
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

    /// Runs `f`, records its duration and a success (a failure of error type
    /// [`outcome::PANICKED`] if it panics), and returns its result.
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

    /// Runs `f`, records its duration and a success for `Ok` or a failure of
    /// the error's [`ErrorType`] for `Err`, and returns its result.
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

    /// Awaits `fut` to completion, then records its duration and a success.
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

impl<B: MetricsBackend + 'static> From<Arc<B>> for Metrics {
    fn from(backend: Arc<B>) -> Self {
        Metrics::new(backend)
    }
}

impl MetricCollector for Metrics {
    #[inline]
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.backend.record_counter(name, value, tags)
    }
    #[inline]
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.backend.record_gauge(name, value, tags)
    }
    #[inline]
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.backend.adjust_gauge(name, delta, tags)
    }
    #[inline]
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.backend.record_histogram(name, value, tags)
    }
    #[inline]
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.backend.record_timer(name, duration, tags)
    }
    fn register_counter<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Counter> {
        Some(self.counter(name, tags))
    }
    fn register_gauge<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Gauge> {
        Some(self.gauge(name, tags))
    }
    fn register_histogram<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Histogram> {
        Some(self.histogram(name, tags))
    }
    fn register_timer<'a>(&self, name: &'a str, tags: Tags<'a>) -> Option<Timer> {
        Some(self.timer(name, tags))
    }
    fn describe<'a>(
        &self,
        name: &'a str,
        kind: MetricType,
        unit: Option<MetricUnit>,
        description: &'a str,
    ) {
        self.backend.describe(name, kind, unit, description)
    }
    fn flush(&self) -> Result<(), MetricsError> {
        self.backend.flush()
    }
    fn health(&self) -> Vec<BackendHealth> {
        self.backend.health()
    }
}

impl SuccessFailureTracker for Metrics {
    #[inline]
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        self.backend.record_success(operation, metadata)
    }
    #[inline]
    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        self.backend.record_failure(operation, error_type, metadata)
    }
    fn get_success_rate(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<f64, MetricsError> {
        self.backend.get_success_rate(operation, time_window)
    }
    fn get_failure_breakdown(
        &self,
        operation: &str,
        time_window: Option<Duration>,
    ) -> Result<std::collections::BTreeMap<String, u64>, MetricsError> {
        self.backend.get_failure_breakdown(operation, time_window)
    }
}

/// A running timing of one operation, from [`Metrics::start`]. It records
/// once, when it ends: the duration into the timer series `operation`, then
/// one outcome (see [Timing](Metrics#timing)).
///
/// It borrows the operation name and tags, so it allocates nothing; it
/// reads `Instant::now()` at start and end and takes no lock.
#[must_use = "a timing records when it ends: call success(), failure() or finish()"]
pub struct Timing<'a> {
    backend: &'a dyn MetricsBackend,
    operation: &'a str,
    tags: Tags<'a>,
    started: Instant,
    if_dropped: &'static str,
    done: bool,
}

impl<'a> Timing<'a> {
    fn new(
        backend: &'a dyn MetricsBackend,
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
            .record_timer(self.operation, elapsed, self.tags);
        match failure {
            None => self.backend.record_success(self.operation, self.tags),
            Some(error_type) => self
                .backend
                .record_failure(self.operation, error_type, self.tags),
        }
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
            MetricsError::InvalidName { .. } => "invalid_name",
            MetricsError::NoData(_) => "no_data",
            MetricsError::Unsupported { .. } => "unsupported",
            MetricsError::IncompatibleUnits { .. } => "incompatible_units",
            MetricsError::Config { .. } => "config",
            MetricsError::InvalidArgument(_) => "invalid_argument",
            MetricsError::NotFound(_) => "not_found",
            MetricsError::Io { source, .. } => source.error_type(),
            MetricsError::Export(_) => "export",
            MetricsError::Parse(_) => "parse",
        }
    }
}
