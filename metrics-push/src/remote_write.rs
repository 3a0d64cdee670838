//! The remote write pusher: its settings, its task, its status.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_exposition::ExpositionConfig;
use metrics_exposition::remote_write::{self as wire, HEADERS};
use metrics_query::snapshot::Snapshots;
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

/// Where samples get their time: milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The longest interval, timeout or backoff accepted.
const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// How much of a refusal's body is kept for the status and the log.
const ERROR_BODY: usize = 512;

/// The settings of a [`RemoteWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWriteConfig {
    /// The receiver's write endpoint: `http://host:port/api/v1/write`
    /// (Prometheus, VictoriaMetrics), `.../api/v1/push` (Mimir). Plain
    /// HTTP only: put a TLS-terminating proxy in front of an `https`
    /// receiver.
    pub url: String,
    /// Time between two pushes (default 15 s).
    pub interval: Duration,
    /// How long one request may take, connecting included, before it
    /// counts as failed and is retried (default 10 s).
    pub timeout: Duration,
    /// Requests waiting for the receiver at most (default 120: half an
    /// hour of pushes every 15 s); beyond it the oldest is dropped.
    pub queue: usize,
    /// Headers every request carries besides the protocol's: `Authorization`
    /// for a receiver behind authentication, `X-Scope-OrgID` for a Mimir
    /// tenant.
    pub headers: Vec<(String, String)>,
    /// The first delay before a retry (default 500 ms), doubled at each
    /// failure in a row.
    pub backoff: Duration,
    /// The longest delay between retries (default 30 s).
    pub max_backoff: Duration,
}

impl RemoteWriteConfig {
    /// Checks every setting as [`RemoteWriter::start`] does: the error
    /// names the field (`url`, `queue`, `headers.<name>`, ...).
    ///
    /// ```
    /// use metrics_push::RemoteWriteConfig;
    /// let e = RemoteWriteConfig::new("ftp://example.invalid/").check().unwrap_err();
    /// assert_eq!(e.field, "url");
    /// ```
    pub fn check(&self) -> Result<(), PushError> {
        Target::parse(self)?;
        for (field, d) in [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("backoff", self.backoff),
            ("max_backoff", self.max_backoff),
        ] {
            if d.is_zero() {
                return Err(PushError::new(field, "0", "must be longer than zero"));
            }
            if d > MAX_DURATION {
                return Err(PushError::new(
                    field,
                    format!("{} s", d.as_secs()),
                    "must be at most a day",
                ));
            }
        }
        if self.queue == 0 {
            return Err(PushError::new("queue", "0", "must be at least 1"));
        }
        Ok(())
    }

    /// The defaults, pushing to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RemoteWriteConfig {
            url: url.into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            queue: 120,
            headers: Vec::new(),
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A setting a [`RemoteWriter`] cannot start with: the field, the value and
/// why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = `{value}`: {reason}")]
pub struct PushError {
    /// The setting (`url`, `interval`, `headers.<name>`, ...).
    pub field: String,
    /// Its value, as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PushError {
    fn new(field: impl Into<String>, value: impl Into<String>, reason: impl Into<String>) -> Self {
        PushError {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// What a [`RemoteWriter`] has done so far. Samples are counted as the
/// receiver counts them: one per series per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStatus {
    /// The receiver.
    pub url: String,
    /// Requests waiting to be sent (the queue's depth).
    pub queued: usize,
    /// The samples in them.
    pub queued_samples: u64,
    /// Requests the receiver accepted.
    pub sent: u64,
    /// The samples in them.
    pub sent_samples: u64,
    /// Attempts that failed: connection errors, timeouts, 5xx, 429 (each
    /// retried), and refusals (4xx, not retried).
    pub failed_attempts: u64,
    /// Requests given up: pushed out of a full queue, refused with a 4xx,
    /// or still queued when the writer stopped.
    pub dropped: u64,
    /// The samples in them.
    pub dropped_samples: u64,
    /// Failures in a row since the last accepted request.
    pub consecutive_failures: u32,
    /// Why the last attempt failed, until one succeeds.
    pub last_error: Option<String>,
}

impl PushStatus {
    /// Whether the receiver accepted the last attempt (or none failed yet).
    pub fn healthy(&self) -> bool {
        self.consecutive_failures == 0
    }
}

/// One request waiting to be sent.
struct Pending {
    body: Bytes,
    samples: u64,
}

/// What the task and the handle share.
struct Shared {
    status: Mutex<PushStatus>,
    queue: Mutex<VecDeque<Pending>>,
    stop: AtomicBool,
    wake: Notify,
    done: Mutex<bool>,
    done_cond: Condvar,
    done_notify: Notify,
}

impl Shared {
    fn set_done(&self) {
        *self.done.lock() = true;
        self.done_cond.notify_all();
        self.done_notify.notify_waiters();
    }
}

/// Sets the shared `done` flag when dropped: when the task returns, and
/// when a runtime shutting down drops it unfinished.
struct DoneOnDrop(Arc<Shared>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        self.0.set_done();
    }
}

/// Pushes a backend's snapshot to a Prometheus remote write receiver every
/// interval, as a task on the runtime it is given (see the crate docs for
/// its promises). [`status`](Self::status) tells what it did;
/// [`shutdown`](Self::shutdown) pushes once more and stops it; dropping it
/// stops it without waiting.
pub struct RemoteWriter {
    shared: Arc<Shared>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for RemoteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriter")
            .field("status", &self.status())
            .finish()
    }
}

/// The request, parsed once: where and with what headers.
struct Target {
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    fn parse(config: &RemoteWriteConfig) -> Result<Self, PushError> {
        let bad = |reason: &str| PushError::new("url", &config.url, reason);
        let uri: Uri = config
            .url
            .trim()
            .parse()
            .map_err(|_| bad("expected a URL such as http://127.0.0.1:9090/api/v1/write"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "https is not supported: push over http, through a TLS-terminating proxy if need be",
                ));
            }
            _ => {
                return Err(bad(
                    "expected an http:// URL such as http://127.0.0.1:9090/api/v1/write",
                ));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("the URL has no host"));
        }
        let mut headers = Vec::new();
        for (k, v) in &config.headers {
            let field = format!("headers.{k}");
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| PushError::new(&field, v, "not a header name"))?;
            if HEADERS.iter().any(|(h, _)| *h == name.as_str()) {
                return Err(PushError::new(
                    &field,
                    v,
                    "set by the protocol: cannot be changed",
                ));
            }
            let mut value = HeaderValue::from_str(v.trim()).map_err(|_| {
                PushError::new(&field, "(hidden)", "not a header value (visible ASCII)")
            })?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        Ok(Target { uri, headers })
    }
}

/// How one attempt ended.
enum Attempt {
    /// Accepted (2xx).
    Sent,
    /// Worth retrying: connection error, timeout, 5xx, 429.
    Retry(String),
    /// Never accepted: any other status.
    Refused(String),
}

impl RemoteWriter {
    /// Starts pushing `source` per `config`, its series named and shaped as
    /// `exposition` has the Prometheus text name them, as a task on
    /// `runtime` (the application's: a multi-threaded runtime, or a
    /// current-thread one that is driven). The first push is one interval
    /// after the start. A setting that cannot work is an error naming it;
    /// a receiver that does not answer yet is retried.
    pub fn start(
        source: Arc<dyn Snapshots>,
        exposition: ExpositionConfig,
        config: RemoteWriteConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, PushError> {
        Self::with_clock(source, exposition, config, runtime, Arc::new(system_ms))
    }

    /// [`start`](Self::start), stamping samples with `clock` (see the
    /// crate docs, "Time").
    pub fn with_clock(
        source: Arc<dyn Snapshots>,
        exposition: ExpositionConfig,
        config: RemoteWriteConfig,
        runtime: tokio::runtime::Handle,
        clock: Clock,
    ) -> Result<Self, PushError> {
        config.check()?;
        let target = Target::parse(&config)?;
        exposition
            .check()
            .map_err(|e| PushError::new(e.field, e.value, e.reason))?;
        let shared = Arc::new(Shared {
            status: Mutex::new(PushStatus {
                url: config.url.trim().to_owned(),
                ..PushStatus::default()
            }),
            queue: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            done: Mutex::new(false),
            done_cond: Condvar::new(),
            done_notify: Notify::new(),
        });
        let guard = DoneOnDrop(shared.clone());
        let task = Task {
            source,
            exposition: Arc::new(exposition),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build_http(),
            target,
            config,
            clock,
            last_ms: i64::MIN,
            shared: shared.clone(),
        };
        runtime.spawn(async move {
            let _guard = guard;
            task.run().await;
        });
        Ok(RemoteWriter {
            shared,
            stopped: AtomicBool::new(false),
        })
    }

    /// What the writer has done so far.
    pub fn status(&self) -> PushStatus {
        self.shared.status.lock().clone()
    }

    /// Pushes everything recorded so far (one more snapshot, after the
    /// queued requests; one attempt each, within one timeout in all), then
    /// stops; what is still queued is counted as dropped. Waits for it,
    /// but not on a current-thread runtime (whose one thread the push
    /// needs); later calls return at once.
    pub fn shutdown(&self) {
        if !self.request_stop() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread => {
                tracing::debug!(
                    "remote write asked to stop from a current-thread runtime: not waiting for its last push"
                );
            }
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.wait_done());
            }
            _ => self.wait_done(),
        }
    }

    /// [`shutdown`](Self::shutdown) for async code.
    pub async fn shutdown_async(&self) {
        if !self.request_stop() {
            return;
        }
        loop {
            let notified = self.shared.done_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if *self.shared.done.lock() {
                return;
            }
            notified.await;
        }
    }

    fn wait_done(&self) {
        let mut done = self.shared.done.lock();
        while !*done {
            self.shared.done_cond.wait(&mut done);
        }
    }

    /// Asks the task to stop; false when asked before.
    fn request_stop(&self) -> bool {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        true
    }
}

impl Drop for RemoteWriter {
    fn drop(&mut self) {
        self.request_stop();
    }
}

/// The system clock, in milliseconds since the Unix epoch.
fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pusher's task and what it owns.
struct Task {
    source: Arc<dyn Snapshots>,
    exposition: Arc<ExpositionConfig>,
    client: Client<HttpConnector, Full<Bytes>>,
    target: Target,
    config: RemoteWriteConfig,
    clock: Clock,
    /// The timestamp of the last request built.
    last_ms: i64,
    shared: Arc<Shared>,
}

impl Task {
    async fn run(mut self) {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.interval,
            self.config.interval,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the head of the queue may be tried again (`None`: now).
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut backoff = self.config.backoff;
        let shared = self.shared.clone();
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                break;
            }
            let queued = !self.shared.queue.lock().is_empty();
            let wait_retry = async move {
                match (queued, retry_at) {
                    (true, Some(at)) => tokio::time::sleep_until(at).await,
                    (true, None) => {}
                    (false, _) => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => self.enqueue().await,
                () = wait_retry => {
                    retry_at = None;
                    match self.send_head().await {
                        Ok(()) => backoff = self.config.backoff,
                        Err(()) => {
                            retry_at = Some(tokio::time::Instant::now() + jitter(backoff));
                            backoff = (backoff * 2).min(self.config.max_backoff);
                        }
                    }
                }
                () = shared.wake.notified() => {}
            }
        }
        self.last_push().await;
    }

    /// Takes a snapshot, builds its request and queues it; the oldest
    /// request is dropped (and counted) when the queue is full. The
    /// snapshot is read and encoded on the runtime's blocking pool (10,000
    /// series take tens of milliseconds), never on a worker.
    async fn enqueue(&mut self) {
        let now = (self.clock)();
        // Never earlier than the request before (see the crate docs, "Time").
        let ts = if self.last_ms == i64::MIN {
            now
        } else {
            now.max(self.last_ms.saturating_add(1))
        };
        self.last_ms = ts;
        let source = self.source.clone();
        let exposition = self.exposition.clone();
        let built = tokio::task::spawn_blocking(move || {
            let request = {
                let snapshot = source.snapshot();
                wire::write_request(&*snapshot, &exposition, ts)
            };
            let samples = request.sample_count() as u64;
            let mut body = Vec::new();
            let encoded = wire::encode(&request, &mut body);
            (encoded.map(|()| body), samples)
        })
        .await;
        let (body, samples) = match built {
            Ok((_, 0)) => return,
            Ok((Ok(body), samples)) => (body, samples),
            Ok((Err(e), samples)) => {
                tracing::warn!(error = %e, samples, "remote write: a request could not be encoded; dropped");
                let mut s = self.shared.status.lock();
                s.dropped += 1;
                s.dropped_samples += samples;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "remote write: building a request failed; no push this time");
                return;
            }
        };
        let mut queue = self.shared.queue.lock();
        let mut status = self.shared.status.lock();
        while queue.len() >= self.config.queue {
            let Some(old) = queue.pop_front() else { break };
            status.dropped += 1;
            status.dropped_samples += old.samples;
            tracing::warn!(
                samples = old.samples,
                queue = self.config.queue,
                "remote write: queue full, oldest request dropped"
            );
        }
        queue.push_back(Pending {
            body: Bytes::from(body),
            samples,
        });
        status.queued = queue.len();
        status.queued_samples = queue.iter().map(|p| p.samples).sum();
    }

    /// Sends the oldest queued request once: removed when accepted or
    /// refused for good, kept (error) when worth retrying.
    async fn send_head(&self) -> Result<(), ()> {
        let Some((body, samples)) = self
            .shared
            .queue
            .lock()
            .front()
            .map(|p| (p.body.clone(), p.samples))
        else {
            return Ok(());
        };
        let outcome = self.attempt(body).await;
        let mut queue = self.shared.queue.lock();
        let mut s = self.shared.status.lock();
        let result = match outcome {
            Attempt::Sent => {
                queue.pop_front();
                s.sent += 1;
                s.sent_samples += samples;
                s.consecutive_failures = 0;
                s.last_error = None;
                Ok(())
            }
            Attempt::Refused(why) => {
                queue.pop_front();
                s.failed_attempts += 1;
                s.dropped += 1;
                s.dropped_samples += samples;
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                tracing::warn!(samples, error = %why, "remote write: request refused; dropped");
                s.last_error = Some(why);
                Ok(())
            }
            Attempt::Retry(why) => {
                s.failed_attempts += 1;
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                if s.consecutive_failures == 1 || s.consecutive_failures.is_power_of_two() {
                    tracing::warn!(
                        error = %why,
                        failures = s.consecutive_failures,
                        queued = queue.len(),
                        "remote write: push failed; retrying"
                    );
                }
                s.last_error = Some(why);
                Err(())
            }
        };
        s.queued = queue.len();
        s.queued_samples = queue.iter().map(|p| p.samples).sum();
        result
    }

    /// One POST of `body`, within the timeout.
    async fn attempt(&self, body: Bytes) -> Attempt {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.target.uri.clone());
        for (k, v) in HEADERS {
            builder = builder.header(k, v);
        }
        for (k, v) in &self.target.headers {
            builder = builder.header(k, v);
        }
        let request = match builder.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return Attempt::Refused(format!("the request could not be built: {e}")),
        };
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| connection_error(&e))?;
            let status = response.status();
            let text = match Limited::new(response.into_body(), ERROR_BODY * 8)
                .collect()
                .await
            {
                Ok(b) => {
                    let b = b.to_bytes();
                    String::from_utf8_lossy(&b[..b.len().min(ERROR_BODY)])
                        .trim()
                        .to_owned()
                }
                Err(_) => String::new(),
            };
            Ok::<_, String>((status, text))
        };
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Err(_) => Attempt::Retry(format!(
                "no answer within {}",
                fmt_duration(self.config.timeout)
            )),
            Ok(Err(e)) => Attempt::Retry(e),
            Ok(Ok((status, _))) if status.is_success() => Attempt::Sent,
            Ok(Ok((status, text)))
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                Attempt::Retry(answer(status, &text))
            }
            Ok(Ok((status, text))) => Attempt::Refused(answer(status, &text)),
        }
    }

    /// On stop: one more request, then one attempt per queued request
    /// within one timeout; what is left is counted as dropped.
    async fn last_push(&mut self) {
        self.enqueue().await;
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        loop {
            if self.shared.queue.lock().is_empty() {
                break;
            }
            match tokio::time::timeout_at(deadline, self.send_head()).await {
                Ok(Ok(())) => {}
                Ok(Err(())) | Err(_) => break,
            }
        }
        let mut queue = self.shared.queue.lock();
        let mut s = self.shared.status.lock();
        let left: u64 = queue.iter().map(|p| p.samples).sum();
        if left > 0 {
            tracing::warn!(
                samples = left,
                requests = queue.len(),
                "remote write stopped with requests unsent; dropped"
            );
        }
        s.dropped += queue.len() as u64;
        s.dropped_samples += left;
        queue.clear();
        s.queued = 0;
        s.queued_samples = 0;
    }
}

/// `d` between half and all of itself: full jitter keeps a fleet that
/// failed together from retrying together.
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(fastrand::f64())
}

fn connection_error(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn answer(status: StatusCode, text: &str) -> String {
    if text.is_empty() {
        format!("the receiver answered {status}")
    } else {
        format!("the receiver answered {status}: {text}")
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
