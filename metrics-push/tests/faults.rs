//! The remote write pusher against a receiver in the test (an axum server
//! on 127.0.0.1 that decodes each request) that is down, fails, refuses,
//! hangs or restarts; and a clock stepped both ways.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use metrics_exposition::ExpositionConfig;
use metrics_exposition::remote_write::{WriteRequest, decode};
use metrics_memory::MemoryMetrics;
use metrics_protocol::Metrics;
use metrics_push::{PushStatus, RemoteWriteConfig, RemoteWriter};
use parking_lot::Mutex;

/// The receiver answers with this status; [`HANG`] never answers.
const HANG: u16 = 1;

#[derive(Default)]
struct Received {
    /// What to answer.
    mode: AtomicU16,
    /// Requests that reached the handler.
    hits: AtomicU64,
    /// The requests accepted, decoded, in arrival order.
    accepted: Mutex<Vec<WriteRequest>>,
}

/// A receiver on its own runtime: stopping it drops the runtime, which
/// closes its listener and every connection (a process killed).
struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    fn start(addr: SocketAddr, state: Arc<Received>) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/api/v1/write", axum::routing::post(write))
            .with_state(state);
        runtime.spawn(async move {
            // The port was just freed by the test: retry if the kernel has
            // not let it go yet.
            let mut tries = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(e) if tries < 100 => {
                        tries += 1;
                        pause(e).await;
                    }
                    Err(e) => panic!("cannot bind {addr}: {e}"),
                }
            };
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            runtime: Some(runtime),
        }
    }

    fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn pause(_: std::io::Error) {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

async fn write(
    State(state): State<Arc<Received>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.load(Ordering::SeqCst);
    if mode == HANG {
        std::future::pending::<()>().await;
    }
    if mode != 0 {
        return StatusCode::from_u16(mode).unwrap();
    }
    assert_eq!(headers["content-encoding"], "snappy");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["x-prometheus-remote-write-version"], "0.1.0");
    assert_eq!(headers["authorization"], "Bearer sesame");
    let request = decode(&body).expect("a remote write request");
    state.accepted.lock().push(request);
    StatusCode::NO_CONTENT
}

/// A free port on 127.0.0.1, not listened on.
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn config(addr: SocketAddr) -> RemoteWriteConfig {
    let mut c = RemoteWriteConfig::new(format!("http://{addr}/api/v1/write"));
    c.interval = Duration::from_millis(20);
    c.timeout = Duration::from_secs(5);
    c.backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(40);
    c.headers = vec![("Authorization".into(), "Bearer sesame".into())];
    c
}

struct Setup {
    metrics: Metrics,
    state: Arc<Received>,
    writer: RemoteWriter,
}

fn setup(config: RemoteWriteConfig, clock: Option<Arc<AtomicI64>>) -> Setup {
    let memory = Arc::new(MemoryMetrics::new());
    let metrics = Metrics::new(memory.clone());
    let handle = tokio::runtime::Handle::current();
    let exposition = ExpositionConfig::default();
    let writer = match clock {
        Some(c) => RemoteWriter::with_clock(
            memory,
            exposition,
            config,
            handle,
            Arc::new(move || c.load(Ordering::SeqCst)),
        ),
        None => RemoteWriter::start(memory, exposition, config, handle),
    }
    .unwrap();
    Setup {
        metrics,
        state: Arc::new(Received::default()),
        writer,
    }
}

/// Waits (polling, for at most a minute: the condition is what is tested,
/// not how soon it holds) until `f` holds.
async fn until(what: &str, writer: &RemoteWriter, mut f: impl FnMut(&PushStatus) -> bool) {
    for _ in 0..6000 {
        if f(&writer.status()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}; {:?}", writer.status());
}

/// The `jobs_total` value of every accepted request, in arrival order.
fn totals(state: &Received) -> Vec<(i64, f64)> {
    state
        .accepted
        .lock()
        .iter()
        .filter_map(|r| {
            r.timeseries
                .iter()
                .find(|t| t.label("__name__") == Some("jobs_total"))
                .map(|t| (t.samples[0].timestamp, t.samples[0].value))
        })
        .collect()
}

fn last_total(state: &Received) -> Option<f64> {
    totals(state).last().map(|t| t.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_at_start_gets_everything_when_it_comes_up() {
    let addr = free_addr();
    let s = setup(config(addr), None);
    s.metrics.record_counter("jobs", 5.0, &[("queue", "mail")]);
    until("failed pushes queued", &s.writer, |st| {
        st.failed_attempts >= 3 && st.queued >= 2
    })
    .await;
    s.metrics.record_counter("jobs", 7.0, &[("queue", "mail")]);
    let _receiver = Receiver::start(addr, s.state.clone());
    let state = s.state.clone();
    until("the total arrives", &s.writer, |_| {
        last_total(&state) == Some(12.0)
    })
    .await;
    s.writer.shutdown_async().await;
    let st = s.writer.status();
    assert_eq!((st.dropped, st.dropped_samples), (0, 0), "{st:?}");
    let totals = totals(&s.state);
    // The requests queued while it was down arrived first, in order.
    assert_eq!(totals[0].1, 5.0, "{totals:?}");
    assert!(totals.windows(2).all(|w| w[0].0 < w[1].0), "{totals:?}");
    assert_eq!(totals.last().unwrap().1, 12.0);
    assert_eq!(st.sent as usize, s.state.accepted.lock().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_accepted() {
    let addr = free_addr();
    let s = setup(config(addr), None);
    s.state.mode.store(500, Ordering::SeqCst);
    let _receiver = Receiver::start(addr, s.state.clone());
    s.metrics.record_counter("jobs", 2.0, &[]);
    let state = s.state.clone();
    until("five 500s", &s.writer, |_| {
        state.hits.load(Ordering::SeqCst) >= 5
    })
    .await;
    s.metrics.record_counter("jobs", 3.0, &[]);
    s.state.mode.store(0, Ordering::SeqCst);
    until("the total arrives", &s.writer, |_| {
        last_total(&state) == Some(5.0)
    })
    .await;
    let st = s.writer.status();
    assert!(st.failed_attempts >= 5, "{st:?}");
    assert_eq!(st.dropped, 0, "{st:?}");
    assert_eq!(totals(&s.state)[0].1, 2.0, "the first request was retried");
    // Accepted again: healthy.
    until("healthy", &s.writer, PushStatus::healthy).await;

    // 429 is retried as well.
    s.state.mode.store(429, Ordering::SeqCst);
    let before = s.writer.status().failed_attempts;
    until("429s", &s.writer, |st| st.failed_attempts >= before + 3).await;
    s.metrics.record_counter("jobs", 1.0, &[]);
    s.state.mode.store(0, Ordering::SeqCst);
    until("the total arrives", &s.writer, |_| {
        last_total(&state) == Some(6.0)
    })
    .await;
    assert_eq!(s.writer.status().dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_dropped_and_counted_not_retried() {
    let addr = free_addr();
    let s = setup(config(addr), None);
    s.state.mode.store(400, Ordering::SeqCst);
    let _receiver = Receiver::start(addr, s.state.clone());
    s.metrics.record_counter("jobs", 1.0, &[("a", "1")]);
    s.metrics.record_counter("jobs", 1.0, &[("a", "2")]);
    until("refusals", &s.writer, |st| st.dropped >= 4).await;
    s.writer.shutdown_async().await;
    let st = s.writer.status();
    let hits = s.state.hits.load(Ordering::SeqCst);
    // Each request was tried once, refused, and dropped with its samples.
    assert_eq!(st.sent, 0, "{st:?}");
    assert_eq!((st.dropped, st.failed_attempts), (hits, hits), "{st:?}");
    assert_eq!(st.dropped_samples, 2 * hits, "{st:?}");
    assert_eq!(st.queued, 0);
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("400"),
        "{st:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    let addr = free_addr(); // nobody listens
    let mut c = config(addr);
    c.queue = 3;
    // A clock that stands still: each request is stamped 1 ms after the
    // one before, so a stamp tells how many were built before it.
    const START: i64 = 1_700_000_000_000;
    let s = setup(c, Some(Arc::new(AtomicI64::new(START))));
    s.metrics.record_counter("jobs", 1.0, &[]);
    until("drops", &s.writer, |st| st.dropped >= 5).await;
    let st = s.writer.status();
    assert!(st.queued <= 3, "{st:?}");
    assert_eq!(st.dropped_samples, st.dropped, "one series per request");
    assert_eq!(st.queued_samples, st.queued as u64);
    s.metrics.record_counter("jobs", 1.0, &[]);
    // Back: what is queued, then the newest, arrive; the total is exact.
    let _receiver = Receiver::start(addr, s.state.clone());
    let state = s.state.clone();
    until("the total arrives", &s.writer, |_| {
        last_total(&state) == Some(2.0)
    })
    .await;
    // The oldest were dropped: the first to arrive was built after them.
    let first = totals(&s.state)[0].0;
    assert!(first > START + 4, "{} ms after the first", first - START);
    s.writer.shutdown_async().await;
    let st = s.writer.status();
    let accepted = s.state.accepted.lock().len() as u64;
    assert_eq!(st.sent, accepted);
    assert_eq!(st.queued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_times_out_and_the_queue_stays_bounded() {
    let addr = free_addr();
    let mut c = config(addr);
    c.timeout = Duration::from_millis(100);
    c.queue = 4;
    let s = setup(c, None);
    s.state.mode.store(HANG, Ordering::SeqCst);
    let _receiver = Receiver::start(addr, s.state.clone());
    s.metrics.record_counter("jobs", 4.0, &[]);
    until("timeouts", &s.writer, |st| {
        st.failed_attempts >= 4 && st.dropped >= 2
    })
    .await;
    let st = s.writer.status();
    assert!(st.queued <= 4, "{st:?}");
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer within 100 ms"),
        "{st:?}"
    );
    s.state.mode.store(0, Ordering::SeqCst);
    s.metrics.record_counter("jobs", 1.0, &[]);
    let state = s.state.clone();
    until("the total arrives", &s.writer, |_| {
        last_total(&state) == Some(5.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_restarted_mid_run_gets_the_totals() {
    let addr = free_addr();
    let s = setup(config(addr), None);
    let mut receiver = Receiver::start(addr, s.state.clone());
    s.metrics.record_counter("jobs", 1.0, &[]);
    let state = s.state.clone();
    until("the first total", &s.writer, |_| {
        last_total(&state) == Some(1.0)
    })
    .await;
    receiver.stop();
    s.metrics.record_counter("jobs", 2.0, &[]);
    until("failures while down", &s.writer, |st| {
        st.consecutive_failures >= 3
    })
    .await;
    s.metrics.record_counter("jobs", 3.0, &[]);
    let _receiver = Receiver::start(addr, s.state.clone());
    until("the total arrives", &s.writer, |_| {
        last_total(&state) == Some(6.0)
    })
    .await;
    assert_eq!(s.writer.status().dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_both_ways_does_not_stop_pushes() {
    const START: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;
    let addr = free_addr();
    let clock = Arc::new(AtomicI64::new(START));
    let s = setup(config(addr), Some(clock.clone()));
    let _receiver = Receiver::start(addr, s.state.clone());
    let state = s.state.clone();
    let mut total = 0.0;
    for step in [0, HOUR, -2 * HOUR] {
        clock.fetch_add(step, Ordering::SeqCst);
        s.metrics.record_counter("jobs", 1.0, &[]);
        total += 1.0;
        let seen = totals(&state).len();
        until("pushes go on", &s.writer, |_| {
            let t = totals(&state);
            t.len() >= seen + 2 && t.last().map(|x| x.1) == Some(total)
        })
        .await;
    }
    let t = totals(&state);
    // Stamps never go back: after the step back they go on 1 ms apart,
    // after the step forward they are at the new time.
    assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{t:?}");
    assert!(t.iter().any(|x| x.0 >= START + HOUR), "{t:?}");
    assert!(t.last().unwrap().0 > START + HOUR, "{t:?}");
    assert_eq!(s.writer.status().dropped, 0);
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused_by_name() {
    let memory = Arc::new(MemoryMetrics::new());
    let start = |c: RemoteWriteConfig| {
        RemoteWriter::start(
            memory.clone(),
            ExpositionConfig::default(),
            c,
            tokio::runtime::Handle::current(),
        )
        .map(drop)
    };
    let e = start(RemoteWriteConfig::new("https://mimir.example/api/v1/push")).unwrap_err();
    assert_eq!(e.field, "url");
    assert!(e.reason.contains("https"), "{e}");
    assert_eq!(
        start(RemoteWriteConfig::new("not a url"))
            .unwrap_err()
            .field,
        "url"
    );
    let mut c = RemoteWriteConfig::new("http://127.0.0.1:9/api/v1/write");
    c.queue = 0;
    assert_eq!(start(c).unwrap_err().field, "queue");
    let mut c = RemoteWriteConfig::new("http://127.0.0.1:9/api/v1/write");
    c.headers = vec![("Content-Type".into(), "text/plain".into())];
    assert_eq!(start(c).unwrap_err().field, "headers.Content-Type");
    let mut c = RemoteWriteConfig::new("http://127.0.0.1:9/api/v1/write");
    c.headers = vec![("Authorization".into(), "Bearer a\nb".into())];
    let e = start(c).unwrap_err();
    assert_eq!(e.field, "headers.Authorization");
    assert!(!e.to_string().contains("Bearer"), "a secret stays out: {e}");
}

#[tokio::test]
async fn durations_beyond_a_day_are_refused() {
    let mut c = RemoteWriteConfig::new("http://127.0.0.1:9/api/v1/write");
    c.interval = Duration::from_secs(u64::MAX / 2);
    assert_eq!(c.check().unwrap_err().field, "interval");
    c.interval = Duration::from_secs(15);
    c.timeout = Duration::from_secs(86_401);
    assert_eq!(c.check().unwrap_err().field, "timeout");
}
