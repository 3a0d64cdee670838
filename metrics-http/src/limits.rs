//! Concurrency by kind of request. The work that can hold a thread (the
//! system's queries, health checks and exports, on tokio's blocking pool)
//! runs in a lane of its kind, scrapes (`/metrics`, `/api/v1/health`) in
//! one, queries in another, each with its own number of threads: a crowd of
//! queries never holds up a scrape. A lane's threads take the next call
//! waiting in it as soon as they are done, so waiting costs nothing more
//! than the blocking pool's own queue did. Streams are limited by their
//! fan-out (`stream.rs`); the page's files are answered at once.
//!
//! Every handler has the request timeout to answer (then 408), and a
//! blocking call still waiting for its lane when its request has timed out
//! is never run.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::{HttpConfig, HttpStats};

/// Calls that may wait in a lane, per thread of it; one more is refused
/// (503) at once.
const WAITING_PER_THREAD: usize = 64;

tokio::task_local! {
    /// The lane of the request being handled.
    static LANE: Arc<Lane>;
}

/// The kinds of request that are limited apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/metrics` and `/api/v1/health`: what monitoring depends on.
    Scrape,
    /// The queries under `/api/v1/`.
    Query,
    /// The page, its files, the OpenAPI document, unknown paths: static
    /// answers.
    Page,
    /// `/api/v1/stream`: long-lived, limited by the stream fan-out.
    Stream,
}

impl Kind {
    /// The kind of a request for `path`.
    pub(crate) fn of(path: &str) -> Kind {
        match path {
            "/metrics" | "/api/v1/health" => Kind::Scrape,
            "/api/v1/stream" => Kind::Stream,
            "/" | "/api/v1/openapi.json" => Kind::Page,
            p if p.starts_with("/api/") => Kind::Query,
            _ => Kind::Page,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Scrape => "scrape",
            Kind::Query => "query",
            Kind::Page => "page",
            Kind::Stream => "stream",
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The blocking calls of one kind: at most `threads` at once, the others
/// waiting in order.
pub(crate) struct Lane {
    kind: Kind,
    threads: usize,
    state: Mutex<LaneState>,
    stats: HttpStats,
}

#[derive(Default)]
struct LaneState {
    running: usize,
    waiting: VecDeque<Job>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Jobs run outside the lock: nothing is left halfway under it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Lane {
    fn new(kind: Kind, threads: usize, stats: HttpStats) -> Arc<Self> {
        Arc::new(Lane {
            kind,
            threads: threads.max(1),
            state: Mutex::new(LaneState::default()),
            stats,
        })
    }

    /// Runs `job` on a blocking thread of this lane, now or when one is
    /// free; `Err` when too many are waiting.
    fn submit(self: &Arc<Self>, job: Job) -> Result<(), Job> {
        let mut state = lock(&self.state);
        if state.running < self.threads {
            state.running += 1;
            drop(state);
            let lane = self.clone();
            tokio::task::spawn_blocking(move || lane.drain(job));
            Ok(())
        } else if state.waiting.len() < self.threads * WAITING_PER_THREAD {
            state.waiting.push_back(job);
            Ok(())
        } else {
            Err(job)
        }
    }

    /// Runs `job`, then every call waiting, then gives the thread back.
    fn drain(&self, job: Job) {
        let mut job = Some(job);
        while let Some(j) = job.take() {
            j();
            let mut state = lock(&self.state);
            job = state.waiting.pop_front();
            if job.is_none() {
                state.running -= 1;
            }
        }
    }
}

/// Runs a synchronous call in the lane of the request being handled (on
/// its task), or on the blocking pool when there is none. `None` when the
/// call panicked or the lane has too many waiting (logged, counted).
pub(crate) async fn run_blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Ok(lane) = LANE.try_with(Arc::clone) else {
        return tokio::task::spawn_blocking(f).await.map_err(|e| {
            tracing::error!(error = %e, "a metrics query failed");
            ApiError::internal("the query failed inside the metrics system")
        });
    };
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // Its request timed out while it waited: nobody wants the answer.
        if tx.is_closed() {
            return;
        }
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(f)));
    });
    if lane.submit(job).is_err() {
        lane.stats.0.overloaded.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(kind = lane.kind.name(), "too many calls waiting in a lane");
        return Err(ApiError::unavailable(
            "overloaded",
            format!(
                "{} {} requests are waiting for the {} threads of their kind; retry later",
                lane.threads * WAITING_PER_THREAD,
                lane.kind.name(),
                lane.threads
            ),
        ));
    }
    match rx.await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_owned());
            tracing::error!(panic = %what, "a metrics query panicked");
            Err(ApiError::internal(
                "the query failed inside the metrics system",
            ))
        }
        Err(_) => Err(ApiError::internal("the query was dropped")),
    }
}

/// Puts each request in the lane of its kind and gives its handler the
/// request timeout (then 408, as the API's JSON error).
#[derive(Clone)]
pub(crate) struct AdmitLayer {
    scrape: Arc<Lane>,
    query: Arc<Lane>,
    timeout: Duration,
}

impl AdmitLayer {
    pub(crate) fn new(config: &HttpConfig, stats: HttpStats) -> Self {
        AdmitLayer {
            scrape: Lane::new(Kind::Scrape, config.max_scrapes, stats.clone()),
            query: Lane::new(Kind::Query, config.max_queries, stats),
            timeout: config.request_timeout,
        }
    }
}

impl<S> Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            lanes: self.clone(),
        }
    }
}

/// See [`AdmitLayer`].
#[derive(Clone)]
pub(crate) struct Admit<S> {
    inner: S,
    lanes: AdmitLayer,
}

type Answer = Result<Response, Infallible>;

impl<S> Service<Request> for Admit<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Answer>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let lane = match Kind::of(req.uri().path()) {
            Kind::Scrape => Some(self.lanes.scrape.clone()),
            Kind::Query => Some(self.lanes.query.clone()),
            // A stream's events are not timed, only its start.
            Kind::Page | Kind::Stream => None,
        };
        let answer = timed(self.inner.call(req), self.lanes.timeout);
        match lane {
            Some(lane) => Box::pin(LANE.scope(lane, answer)),
            None => Box::pin(answer),
        }
    }
}

/// `answer`, or 408 with the JSON error once `limit` has passed.
async fn timed<F: Future<Output = Answer>>(answer: F, limit: Duration) -> Answer {
    match tokio::time::timeout(limit, answer).await {
        Ok(answer) => answer,
        Err(_) => Ok(ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            error: "timeout",
            message: format!(
                "the answer took longer than this server allows ({} ms)",
                limit.as_millis()
            ),
            parameter: None,
        }
        .into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lane_runs_its_threads_calls_at_once_and_refuses_past_64_waiting_per_thread() {
        let stats = HttpStats::default();
        let lane = Lane::new(Kind::Query, 2, stats.clone());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let job = |wait: bool| -> Job {
            let (released, ran) = (released.clone(), ran.clone());
            Box::new(move || {
                if wait {
                    let _ = lock(&released).recv();
                }
                ran.fetch_add(1, Ordering::SeqCst);
            })
        };
        // Two threads held, 128 calls waiting: the next is refused.
        assert!(lane.submit(job(true)).is_ok());
        assert!(lane.submit(job(true)).is_ok());
        for _ in 0..2 * WAITING_PER_THREAD {
            assert!(lane.submit(job(false)).is_ok());
        }
        assert!(lane.submit(job(false)).is_err());
        assert_eq!(lock(&lane.state).running, 2);
        drop(release);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while lock(&lane.state).running > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the lane did not drain"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2 + 2 * WAITING_PER_THREAD);
        assert!(lane.submit(job(false)).is_ok(), "room again once drained");
    }

    #[test]
    fn paths_fall_into_their_kinds() {
        for (path, kind) in [
            ("/metrics", Kind::Scrape),
            ("/api/v1/health", Kind::Scrape),
            ("/api/v1/stream", Kind::Stream),
            ("/api/v1/summary", Kind::Query),
            ("/api/v1/dashboards/errors", Kind::Query),
            ("/api/v1/openapi.json", Kind::Page),
            ("/", Kind::Page),
            ("/assets/dashboard.js", Kind::Page),
            ("/nothing", Kind::Page),
            ("/metrics/", Kind::Page),
        ] {
            assert_eq!(Kind::of(path), kind, "{path}");
        }
    }
}
