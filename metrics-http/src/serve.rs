//! The accept loop (never waiting: past the connection limit the oldest
//! idle connection is asked to close), the connections (HTTP/1.1 and
//! HTTP/2 with prior knowledge, idle ones closed, hyper's parse errors
//! answered as JSON) and a server: a task on an application's runtime, or
//! on a thread of its own for programs that do not run tokio.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;
use tower::Service;

use crate::conn::JsonErrors;
use crate::{HttpConfig, HttpError, HttpStats, Source, router_with_stats};

/// The largest connection limit taken (a larger one is this).
const MAX_CONNECTIONS: usize = 1 << 20;

/// How long open connections (streams included) get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

/// How long a connection with nothing in flight is left alone after it
/// opened or was answered, however many are open: its client may be
/// sending a request.
const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// Requests an HTTP/2 connection may have in flight at once.
const H2_STREAMS_PER_CONNECTION: u32 = 32;

/// What an HTTP/2 client may send ahead (request bodies are small).
const H2_STREAM_WINDOW: u32 = 64 * 1024;
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;

/// Serves `app` on `listener` until `shutdown` completes: HTTP/1.1, and
/// HTTP/2 for clients that speak it from the start (prior knowledge, as
/// `curl --http2-prior-knowledge` does).
///
/// - A new connection is never left waiting. Past `config.max_connections`
///   open connections (1 to 2^20), the oldest idle one (else the oldest)
///   is asked to close: an idle keep-alive connection closes at once, a
///   busy one after its answer.
/// - A connection with no request in flight for
///   `config.header_read_timeout` is closed, and a request head must
///   arrive within it and fit in `config.max_header_bytes`.
/// - A request hyper cannot parse (a head too large, a malformed request
///   line or header, a bad `Content-Length`) is answered with the API's
///   JSON error, then the connection is closed.
///
/// At shutdown, connections get two seconds to finish what they are
/// sending, then are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_stats(listener, app, config, shutdown, HttpStats::default()).await;
}

/// [`serve`], counting into `stats`.
pub(crate) async fn serve_with_stats(
    listener: TcpListener,
    app: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
    stats: HttpStats,
) {
    let limit = config.max_connections.clamp(1, MAX_CONNECTIONS);
    let idle = config.header_read_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS_PER_CONNECTION)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW);
    let conns = Arc::new(Conns::new(limit, stats));
    let reaper = {
        let conns = conns.clone();
        tokio::spawn(async move { conns.reap().await })
    };
    let (closing, closed) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = conns.open();
        let io = TokioIo::new(JsonErrors::new(stream, config.max_header_bytes));
        let service = TowerToHyperService::new(Tracked {
            app: app.clone(),
            conn: conn.clone(),
        });
        let connection = builder.serve_connection(io, service).into_owned();
        tokio::spawn(run(connection, conn, conns.clone(), closed.clone(), idle));
    }
    reaper.abort();
    let _ = closing.send(true);
    // Wait until every connection has closed (bounded by DRAIN).
    let _ = tokio::time::timeout(DRAIN + Duration::from_millis(500), conns.all_closed()).await;
}

/// Drives one connection until it ends: asked to close (past the limit, or
/// idle too long) it closes gracefully; at shutdown it gets [`DRAIN`].
async fn run<C>(
    connection: auto::Connection<
        'static,
        TokioIo<JsonErrors<tokio::net::TcpStream>>,
        C,
        TokioExecutor,
    >,
    conn: Arc<Conn>,
    conns: Arc<Conns>,
    mut closed: watch::Receiver<bool>,
    idle: Duration,
) where
    C: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    C::Future: Send + 'static,
{
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    let mut drain_until: Option<Instant> = None;
    loop {
        let idle_deadline = conn.idle_deadline(idle);
        tokio::select! {
            r = connection.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                break;
            }
            () = conn.close.notified(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_deadline), if !closing => {
                if conn.idle_for() >= idle {
                    tracing::debug!("closing an idle HTTP connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = closed.changed(), if drain_until.is_none() => {
                if !closing {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                drain_until = Some(Instant::now() + DRAIN);
            }
            () = tokio::time::sleep_until(drain_until.unwrap_or_else(Instant::now)), if drain_until.is_some() => {
                break;
            }
        }
    }
    conns.close(conn.id);
}

/// The open connections, oldest first.
struct Conns {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    limit: usize,
    next: AtomicU64,
    /// Woken when more than `limit` are open.
    over: Notify,
    none_open: Notify,
    stats: HttpStats,
}

/// One open connection as the accept loop and its requests see it.
struct Conn {
    id: u64,
    /// Requests whose answer is not wholly sent yet.
    in_flight: AtomicUsize,
    /// When the last answer was sent (or the connection opened).
    idle_since: Mutex<Instant>,
    /// Whether it was asked to close already.
    asked: AtomicBool,
    close: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing is left halfway under these locks.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Conns {
    fn new(limit: usize, stats: HttpStats) -> Self {
        Conns {
            open: Mutex::new(BTreeMap::new()),
            limit,
            next: AtomicU64::new(0),
            over: Notify::new(),
            none_open: Notify::new(),
            stats,
        }
    }

    /// Registers a new connection; past the limit, wakes the reaper.
    fn open(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            asked: AtomicBool::new(false),
            close: Notify::new(),
        });
        let mut open = lock(&self.open);
        open.insert(conn.id, conn.clone());
        self.stats
            .0
            .connections
            .store(open.len() as u64, Ordering::Relaxed);
        if open.len() > self.limit {
            self.over.notify_one();
        }
        conn
    }

    /// Asks connections to close until at most `limit` are left that were
    /// not asked: first those idle for [`EVICTION_GRACE`] at least (oldest
    /// first), then those with a request in flight (they close after its
    /// answer). A connection that opened or was answered less than
    /// [`EVICTION_GRACE`] ago and has nothing in flight is left alone: its
    /// client may be sending a request hyper has not read yet. Returns
    /// when the next such connection becomes a candidate, if more must be
    /// asked.
    fn evict(&self) -> Option<Instant> {
        let open = lock(&self.open);
        let unasked = || open.values().filter(|c| !c.asked.load(Ordering::Relaxed));
        let mut over = unasked().count().saturating_sub(self.limit);
        if over == 0 {
            return None;
        }
        let now = Instant::now();
        let idle_since =
            |c: &Conn| (c.in_flight.load(Ordering::Acquire) == 0).then(|| *lock(&c.idle_since));
        let idle_long =
            unasked().filter(|c| idle_since(c).is_some_and(|t| t + EVICTION_GRACE <= now));
        let busy = unasked().filter(|c| idle_since(c).is_none());
        let victims: Vec<&Arc<Conn>> = idle_long.chain(busy).take(over).collect();
        for victim in victims {
            victim.asked.store(true, Ordering::Relaxed);
            victim.close.notify_one();
            self.stats.0.evicted.fetch_add(1, Ordering::Relaxed);
            over -= 1;
        }
        tracing::debug!(
            open = open.len(),
            limit = self.limit,
            "too many connections: asked some to close"
        );
        if over == 0 {
            return None;
        }
        unasked()
            .filter_map(|c| idle_since(c))
            .min()
            .map(|t| (t + EVICTION_GRACE).max(now + Duration::from_millis(1)))
    }

    /// Keeps the number of connections not asked to close at the limit:
    /// runs whenever a connection past it opens, and when a connection
    /// becomes a candidate.
    async fn reap(&self) {
        let mut next: Option<Instant> = None;
        loop {
            match next {
                Some(at) => {
                    tokio::select! {
                        () = self.over.notified() => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.over.notified().await,
            }
            next = self.evict();
        }
    }

    fn close(&self, id: u64) {
        let mut open = lock(&self.open);
        open.remove(&id);
        self.stats
            .0
            .connections
            .store(open.len() as u64, Ordering::Relaxed);
        if open.is_empty() {
            self.none_open.notify_waiters();
        }
    }

    /// Completes once no connection is open.
    async fn all_closed(&self) {
        loop {
            let notified = self.none_open.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.open).is_empty() {
                return;
            }
            notified.await;
        }
    }
}

impl Conn {
    /// When the connection will have been idle for `idle`, if it stays so.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            Instant::now() + idle
        } else {
            *lock(&self.idle_since) + idle
        }
    }

    /// How long the connection has had nothing in flight (zero if busy).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            Duration::ZERO
        } else {
            lock(&self.idle_since).elapsed()
        }
    }
}

/// Counts a request in flight on its connection until its answer's body
/// is sent (or dropped).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn new(conn: Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(conn)
    }

    /// Kept alive by the body that holds it.
    fn hold(&self) {}
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *lock(&self.0.idle_since) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router, for one connection: each request counted in flight.
#[derive(Clone)]
struct Tracked {
    app: Router,
    conn: Arc<Conn>,
}

impl Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::new(self.conn.clone());
        let answer = self.app.call(req);
        Box::pin(async move {
            let res = answer.await?;
            Ok(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    in_flight.hold();
                    frame
                }))
            }))
        })
    }
}

/// A running server: a task on an application's tokio runtime
/// ([`start_on`](Server::start_on)), or on a thread and runtime of its own
/// for programs that do not run tokio ([`start`](Server::start)). Stops on
/// [`shutdown`](Server::shutdown) or when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stats: HttpStats,
    stop: Option<oneshot::Sender<()>>,
    running: Option<Running>,
}

/// Where a [`Server`] runs.
#[derive(Debug)]
enum Running {
    /// Its own thread (which owns its runtime).
    Thread(JoinHandle<()>),
    /// A task on a runtime it was given; the receiver hears when it ended.
    Task(std::sync::mpsc::Receiver<()>),
}

/// A bound, non-blocking listener and its address.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), HttpError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    Ok((listener, local))
}

/// The serving future of a [`Server`].
async fn serving(
    listener: std::net::TcpListener,
    app: Router,
    config: HttpConfig,
    stopped: oneshot::Receiver<()>,
    stats: HttpStats,
) {
    match TcpListener::from_std(listener) {
        Ok(listener) => {
            let stopped = async {
                let _ = stopped.await;
            };
            serve_with_stats(listener, app, &config, stopped, stats).await;
        }
        Err(e) => tracing::error!(error = %e, "HTTP listener unusable"),
    }
}

impl Server {
    /// Binds `addr` now (so a port in use is an error here, not later) and
    /// serves `source` from a thread named `metrics-http` with a runtime
    /// of its own (two workers; the query and scrape lanes on its blocking
    /// pool). An application that runs tokio uses
    /// [`start_on`](Self::start_on) instead, so the service adds no thread.
    pub fn start(
        addr: SocketAddr,
        source: Source,
        config: HttpConfig,
    ) -> Result<Server, HttpError> {
        let (listener, local) = bind(addr)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            // The threads of the scrapes' and the queries' lanes.
            .max_blocking_threads((config.max_scrapes.max(1) + config.max_queries.max(1)).min(512))
            .thread_name("metrics-http")
            .enable_all()
            .build()
            .map_err(HttpError::Start)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let stats = HttpStats::default();
        let app = router_with_stats(source, &config, stats.clone());
        let serve = serving(listener, app, config, stopped, stats.clone());
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                runtime.block_on(serve);
                runtime.shutdown_timeout(DRAIN);
            })
            .map_err(HttpError::Start)?;
        Ok(Server {
            addr: local,
            stats,
            stop: Some(stop),
            running: Some(Running::Thread(thread)),
        })
    }

    /// Binds `addr` now and serves `source` as a task on `runtime` (the
    /// application's): no thread of its own; queries and scrapes run on
    /// the runtime's blocking pool, bounded by the configured lanes.
    /// [`shutdown`](Self::shutdown) then waits for the task from plain
    /// code or a multi-threaded runtime's thread; on a current-thread
    /// runtime's own thread it only asks it to stop.
    pub fn start_on(
        runtime: &tokio::runtime::Handle,
        addr: SocketAddr,
        source: Source,
        config: HttpConfig,
    ) -> Result<Server, HttpError> {
        let (listener, local) = bind(addr)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let stats = HttpStats::default();
        let app = {
            // The router's parts that spawn (none today) see the runtime.
            let _entered = runtime.enter();
            router_with_stats(source, &config, stats.clone())
        };
        let serve = serving(listener, app, config, stopped, stats.clone());
        let (ended, ended_rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            serve.await;
            let _ = ended.send(());
        });
        Ok(Server {
            addr: local,
            stats,
            stop: Some(stop),
            running: Some(Running::Task(ended_rx)),
        })
    }

    /// The address served (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's counters: connections open and asked to close, stream
    /// subscribers and encodings, requests refused.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// Stops accepting, lets open requests finish (two seconds at most),
    /// and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.running.take() {
            Some(Running::Thread(t)) => {
                let _ = t.join();
            }
            Some(Running::Task(ended)) => {
                // Open connections get DRAIN; the accept loop's own wait
                // is bounded a little above it.
                let wait = || {
                    let _ = ended.recv_timeout(DRAIN + Duration::from_secs(1));
                };
                match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                    Err(_) => wait(),
                    Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                        tokio::task::block_in_place(wait);
                    }
                    // Waiting here would stall the very thread the task
                    // needs: it stops on its own.
                    Ok(_) => {}
                }
            }
            None => {}
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}
