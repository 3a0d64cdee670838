//! The server over real sockets: crowds of connections, kinds of request
//! that fill their places, stream subscribers, and every error (also those
//! the HTTP parser answers itself) as the API's JSON.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use metrics_http::{HttpConfig, Server};
use metrics_memory::MemoryMetrics;
use metrics_protocol::app::{
    MetricSummary, MetricValue, MetricsAggregator, MetricsSystem, StreamEvent, TimingStats,
};
use metrics_protocol::{MetricType, MetricUnit, MetricsError, Tags};

mod common;
use common::TestSystem;

/// Generous: the machine may be loaded.
const DEADLINE: Duration = Duration::from_secs(10);

/// Summaries wait here until the test opens the gate.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl Gate {
    fn pass(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Opens the gate however the test ends, so no blocking thread is left.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// The memory backend's queries, summaries waiting at a gate.
struct Gated {
    mem: Arc<MemoryMetrics>,
    gate: Arc<Gate>,
}

impl MetricsAggregator for Gated {
    fn metric_summary(
        &self,
        name: &str,
        window: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        self.gate.pass();
        self.mem.metric_summary(name, window)
    }
    fn metrics_by_tag<'a>(&self, tags: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        self.mem.metrics_by_tag(tags)
    }
    fn top_metrics(
        &self,
        kind: MetricType,
        limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        self.mem.top_metrics(kind, limit)
    }
    fn success_rate(&self, op: &str, window: Option<Duration>) -> Result<f64, MetricsError> {
        self.mem.success_rate(op, window)
    }
    fn failure_breakdown(
        &self,
        op: &str,
        window: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        self.mem.failure_breakdown(op, window)
    }
    fn timing_stats(
        &self,
        op: &str,
        window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        self.mem.timing_stats(op, window)
    }
}

/// A system with one counter recorded, whose summaries wait at the
/// returned gate, and whose streams the test feeds.
fn gated() -> (Arc<TestSystem>, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let mut system = TestSystem::new();
    system
        .metrics()
        .record_counter("http.requests", 3.0, &[("method", "GET")]);
    system.live = true;
    system.aggregator = Some(Arc::new(Gated {
        mem: system.mem.clone(),
        gate: gate.clone(),
    }));
    (Arc::new(system), gate)
}

fn start(system: &Arc<TestSystem>, config: HttpConfig) -> Server {
    Server::start(
        "127.0.0.1:0".parse().unwrap(),
        system.shared_source(),
        config,
    )
    .unwrap()
}

/// Waits for `done`, failing after [`DEADLINE`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An answer read off a socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as the API's JSON error, checking its shape.
    fn error(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let e: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&self.body)));
        assert!(e["error"].is_string() && e["message"].is_string(), "{e}");
        assert!(e.get("parameter").is_some(), "{e}");
        e
    }
}

/// Sends `request` as it is on a fresh connection and reads the answer
/// (to the end of its body, or until the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    // The server may refuse the rest of an oversized request: its answer
    // is what matters.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if let Some(answer) = parse(&out) {
            return answer;
        }
    }
    parse(&out).unwrap_or_else(|| {
        panic!(
            "no whole answer to {:?}: {:?}",
            String::from_utf8_lossy(&request[..request.len().min(80)]),
            String::from_utf8_lossy(&out)
        )
    })
}

/// A whole answer with a `content-length`, if `out` holds one.
fn parse(out: &[u8]) -> Option<Answer> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))?
        .trim()
        .parse()
        .ok()?;
    let body = out.get(end + 4..end + 4 + length)?.to_vec();
    Some(Answer { status, head, body })
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn past_the_connection_limit_a_crowd_of_idle_connections_does_not_hold_a_scrape() {
    let (system, _gate) = gated();
    let config = HttpConfig {
        max_connections: 8,
        // Idle connections would be held a minute: only the limit's
        // closing of the oldest idle ones lets a new client in.
        header_read_timeout: Duration::from_secs(60),
        ..HttpConfig::default()
    };
    let server = start(&system, config);
    let addr = server.local_addr();
    // 24 keep-alive clients: each asks once, then holds its connection
    // open, and opens another as soon as the server closes it.
    let stop = Arc::new(AtomicBool::new(false));
    let crowd: Vec<_> = (0..24)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                    let _ = s.write_all(b"GET /assets/uPlot.LICENSE HTTP/1.1\r\nHost: t\r\n\r\n");
                    let mut buf = [0u8; 4096];
                    while !stop.load(Ordering::Relaxed) {
                        match s.read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                            Err(_) => break,
                        }
                    }
                }
            })
        })
        .collect();
    // Once idle for a moment, the 16 past the limit are asked to close.
    wait_for("the crowd to be cut down to the limit", || {
        server.stats().evicted() >= 16
    });

    for path in ["/metrics", "/api/v1/health"] {
        let answer = get(addr, path);
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }

    stop.store(true, Ordering::Relaxed);
    for c in crowd {
        c.join().unwrap();
    }
    server.shutdown();
}

#[test]
fn queries_that_fill_their_places_do_not_hold_up_scrapes() {
    let (system, gate) = gated();
    let _open_at_the_end = OpenOnDrop(gate.clone());
    // As many waiting queries as the server has blocking threads.
    let server = start(&system, HttpConfig::default());
    let addr = server.local_addr();
    let queries: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || get(addr, "/api/v1/summary?name=http.requests")))
        .collect();
    let places = HttpConfig::default().max_queries;
    wait_for("the queries to fill their places", || {
        gate.waiting.load(Ordering::SeqCst) >= places
    });

    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(String::from_utf8_lossy(&metrics.body).contains("http_requests"));
    assert_eq!(get(addr, "/api/v1/health").status, 200);
    assert_eq!(get(addr, "/assets/uPlot.LICENSE").status, 200);
    assert_eq!(gate.waiting.load(Ordering::SeqCst), places);

    gate.open();
    for q in queries {
        assert_eq!(q.join().unwrap().status, 200);
    }
    server.shutdown();
}

#[test]
fn a_query_that_times_out_waiting_for_a_thread_is_a_408_json_and_is_never_made() {
    let (system, gate) = gated();
    let _open_at_the_end = OpenOnDrop(gate.clone());
    let config = HttpConfig {
        max_queries: 1,
        request_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let server = start(&system, config);
    let addr = server.local_addr();
    let first = std::thread::spawn(move || get(addr, "/api/v1/summary?name=http.requests"));
    wait_for("the first query to take the thread", || {
        gate.waiting.load(Ordering::SeqCst) == 1
    });
    let waited = get(addr, "/api/v1/summary?name=http.requests");
    assert_eq!(waited.status, 408, "{waited:?}");
    assert_eq!(waited.error()["error"], "timeout");
    // The first timed out too, at the gate.
    assert_eq!(first.join().unwrap().status, 408);
    gate.open();
    // The thread is free again; the call that timed out while it waited
    // was dropped, not made.
    assert_eq!(get(addr, "/api/v1/summary?name=http.requests").status, 200);
    assert_eq!(gate.waiting.load(Ordering::SeqCst), 2);
    server.shutdown();
}

/// A stream subscriber on a raw socket.
struct Subscriber {
    socket: TcpStream,
    read: Vec<u8>,
}

impl Subscriber {
    fn connect(addr: SocketAddr) -> Result<Subscriber, Answer> {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(DEADLINE)).unwrap();
        socket
            .write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut read = Vec::new();
        let mut buf = [0u8; 4096];
        while !read.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&read));
            read.extend_from_slice(&buf[..n]);
        }
        if read.starts_with(b"HTTP/1.1 200") {
            return Ok(Subscriber { socket, read });
        }
        loop {
            if let Some(answer) = parse(&read) {
                return Err(answer);
            }
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&read));
            read.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads until `n` metric events have arrived.
    fn events(&mut self, n: usize) -> String {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.read).into_owned();
            if text.matches("event: metric\n").count() >= n {
                return text;
            }
            let got = self.socket.read(&mut buf).unwrap();
            assert!(got > 0, "closed: {text}");
            self.read.extend_from_slice(&buf[..got]);
        }
    }
}

#[test]
fn stream_subscribers_share_one_subscription_and_one_encoding_per_event_up_to_a_cap() {
    let (system, _gate) = gated();
    let config = HttpConfig {
        max_streams: 3,
        ..HttpConfig::default()
    };
    let server = start(&system, config);
    let addr = server.local_addr();
    let mut subscribers: Vec<Subscriber> =
        (0..3).map(|_| Subscriber::connect(addr).unwrap()).collect();
    assert_eq!(system.subscriptions.load(Ordering::SeqCst), 1);

    let value = |i: u32| {
        StreamEvent::Metric(MetricValue::new(
            "jobs.done",
            f64::from(i),
            MetricType::Counter,
            MetricUnit::Count,
            &[],
        ))
    };
    for i in 0..5 {
        system.send(&value(i));
    }
    for s in &mut subscribers {
        let text = s.events(5);
        assert!(text.contains("\"value\":4.0"), "{text}");
    }
    assert_eq!(server.stats().stream_encodings(), 5, "{:?}", server.stats());

    // Past the cap: 503 with the JSON error, at once.
    let refused = Subscriber::connect(addr).err().unwrap();
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.error()["error"], "too_many_streams");
    assert_eq!(server.stats().refused_streams(), 1);

    // One leaves: its place is free again.
    drop(subscribers.pop());
    wait_for("the subscriber to leave", || server.stats().streams() == 2);
    subscribers.push(Subscriber::connect(addr).unwrap());

    // All leave: nothing of theirs is kept, not even the subscription.
    drop(subscribers);
    wait_for("every subscriber to leave", || {
        server.stats().streams() == 0 && system.live_subscriptions() == 0
    });
    assert_eq!(server.stats().stream_upstreams(), 0);
    server.shutdown();
}

#[test]
fn every_error_is_the_api_json_also_those_of_the_http_parser() {
    let (system, _gate) = gated();
    let server = start(&system, HttpConfig::default());
    let addr = server.local_addr();
    let big = "a".repeat(20 * 1024);
    // What is sent, the status, the error and the parameter it names.
    type Case<'a> = (&'a str, Vec<u8>, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "a header over 16 KiB",
            format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").into_bytes(),
            431,
            "header_too_large",
            None,
        ),
        (
            "a query string over 16 KiB",
            format!("GET /api/v1/series?prefix={big} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
            431,
            "header_too_large",
            None,
        ),
        (
            "a wrong method",
            b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "raw invalid UTF-8 in the path",
            b"GET /metrics\xff HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            400,
            "bad_request",
            Some("path"),
        ),
        (
            "garbage",
            b"HELLO THERE\r\n\r\n".to_vec(),
            400,
            "bad_request",
            Some("version"),
        ),
        (
            "a bad Content-Length",
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n".to_vec(),
            400,
            "bad_request",
            Some("content-length"),
        ),
        (
            "a body over 64 KiB",
            b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
                .to_vec(),
            413,
            "payload_too_large",
            None,
        ),
    ];
    for (what, request, status, error, parameter) in cases {
        let answer = exchange(addr, &request);
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        let e = answer.error();
        assert_eq!(e["error"], error, "{what}: {e}");
        assert_eq!(e["parameter"].as_str(), parameter, "{what}: {e}");
        if status == 405 {
            assert_eq!(answer.header("allow"), Some("GET,HEAD"), "{answer:?}");
            assert!(e["message"].as_str().unwrap().contains("POST"), "{e}");
        }
    }
    server.shutdown();
}

#[test]
fn invalid_utf8_once_percent_decoded_is_a_400_naming_the_parameter_or_the_path_everywhere() {
    let (system, _gate) = gated();
    let server = start(&system, HttpConfig::default());
    let addr = server.local_addr();
    for (path, parameter) in [
        ("/api/v1/summary?name=%FF", "name"),
        ("/api/v1/series?prefix=%FF", "prefix"),
        ("/api/v1/series?prefix=a&tag=k:%C3", "tag"),
        ("/api/v1/stream?prefix=%FF", "prefix"),
        ("/api/v1/summary?%FF=1", "%FF"),
        ("/metrics?x=%FF", "x"),
        ("/api/v1/dashboards/%FF", "path"),
        ("/api/v1/%FF", "path"),
        ("/assets/%FF", "path"),
        ("/%FF", "path"),
    ] {
        let answer = get(addr, path);
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        let e = answer.error();
        assert_eq!(e["error"], "bad_parameter", "{path}: {e}");
        assert_eq!(e["parameter"], parameter, "{path}: {e}");
    }
    server.shutdown();
}

#[test]
fn http2_with_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let (system, _gate) = gated();
    let server = start(&system, HttpConfig::default());
    let addr = server.local_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        for (path, status) in [("/metrics", 200), ("/api/v1/nothing", 404)] {
            let req = hyper::Request::get(format!("http://{addr}{path}"))
                .body(Empty::<axum::body::Bytes>::new())
                .unwrap();
            let res = tokio::time::timeout(DEADLINE, sender.send_request(req))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(res.status(), status, "{path}");
            assert_eq!(res.version(), hyper::Version::HTTP_2);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            if status == 200 {
                assert!(String::from_utf8_lossy(&body).contains("http_requests"));
            } else {
                let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(e["error"], "not_found", "{e}");
            }
        }
    });
    server.shutdown();
}
