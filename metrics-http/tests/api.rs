//! The routes through tower's `oneshot`, over the memory backend, and one
//! server through a real socket.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use metrics_exposition::Exporter;
use metrics_http::{HttpConfig, HttpError, Server, Source, router};
use metrics_memory::MemoryMetrics;
use metrics_protocol::app::{
    MetricSummary, MetricValue, MetricsAggregator, MetricsSystem, StreamEvent, TimingStats,
};
use metrics_protocol::backend::HealthStatus;
use metrics_protocol::{MetricType, MetricUnit, MetricsError, NoopMetrics, Tags};
use metrics_query::snapshot::{Snapshot, Snapshots};
use metrics_query::{
    InstanceScope, Outcomes, RangeGroup, RangeQueries, RangeRequest, RollupRequest,
};
use tower::ServiceExt;

mod common;
use common::TestSystem;

/// An aggregator whose every query panics.
struct Panicking;

impl MetricsAggregator for Panicking {
    fn metric_summary(&self, _: &str, _: Option<Duration>) -> Result<MetricSummary, MetricsError> {
        panic!("summary exploded")
    }
    fn metrics_by_tag<'a>(&self, _: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        panic!("by tag exploded")
    }
    fn top_metrics(&self, _: MetricType, _: usize) -> Result<Vec<MetricValue>, MetricsError> {
        panic!("top exploded")
    }
    fn success_rate(&self, _: &str, _: Option<Duration>) -> Result<f64, MetricsError> {
        panic!("success rate exploded")
    }
    fn failure_breakdown(
        &self,
        _: &str,
        _: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        panic!("failure breakdown exploded")
    }
    fn timing_stats(&self, _: &str, _: Option<Duration>) -> Result<TimingStats, MetricsError> {
        panic!("timing stats exploded")
    }
}

/// A backend whose every snapshot panics.
struct PanickingSnapshots;

impl Snapshots for PanickingSnapshots {
    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        panic!("export exploded")
    }
}

fn recorded() -> TestSystem {
    let s = TestSystem::new();
    let m = s.metrics();
    for i in 0..10 {
        m.record_counter("http.requests", 1.0, &[("method", "GET")]);
        m.record_counter("http.requests", 2.0, &[("method", "POST")]);
        m.record_histogram("payload.bytes", 100.0 * f64::from(i), &[]);
        m.record_timer("db.query", Duration::from_millis(5 + i as u64), &[]);
        if i % 5 == 0 {
            m.record_failure("checkout", "timeout", &[]);
        } else {
            m.record_success("checkout", &[]);
        }
    }
    m.record_gauge("queue.depth", 7.0, &[("queue", "a")]);
    s
}

fn app(system: TestSystem) -> Router {
    router(system.source(), &HttpConfig::default())
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    call(app, Method::GET, uri, &[]).await
}

async fn get_json(app: &Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let (status, headers, body) = get(app, uri).await;
    assert_eq!(headers["content-type"], "application/json", "{uri}");
    (
        status,
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}")),
    )
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[tokio::test]
async fn metrics_serves_prometheus_text_by_default_and_head_without_a_body() {
    let app = app(recorded());
    let (status, headers, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = text(&body);
    assert!(body.contains("http_requests"), "{body}");
    assert!(!body.contains("# EOF"), "{body}");

    let (status, head_headers, head_body) = call(&app, Method::HEAD, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(head_headers["content-type"], headers["content-type"]);
    assert!(head_body.is_empty());
}

#[tokio::test]
async fn metrics_serves_openmetrics_when_a_prometheus_server_asks() {
    let app = app(recorded());
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (status, headers, body) = call(&app, Method::GET, "/metrics", &[("accept", accept)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text(&body).ends_with("# EOF\n"), "{}", text(&body));
    assert!(
        headers["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept")
    );
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_client_allows_it() {
    let app = app(recorded());
    let (_, _, plain) = get(&app, "/metrics").await;
    let (status, headers, zipped) = call(
        &app,
        Method::GET,
        "/metrics",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, text(&plain));
    let (_, headers, _) = call(&app, Method::GET, "/metrics", &[("accept-encoding", "br")]).await;
    assert!(headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn queries_answer_json() {
    let app = app(recorded());
    let (status, s) = get_json(&app, "/api/v1/summary?name=http.requests").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["total"], 30.0);
    assert_eq!(s["series"], 2);
    let (status, s) = get_json(&app, "/api/v1/summary?name=payload.bytes&window=5m").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["count"], 10);

    let (status, t) = get_json(&app, "/api/v1/timing?name=db.query&window=1h").await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["count"], 10);
    assert_eq!(t["min"], 5.0);
    assert_eq!(t["window_ms"], 3_600_000.0);

    let (status, r) = get_json(&app, "/api/v1/success?operation=checkout").await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["success_rate"], 0.8);
    assert_eq!(r["failures"]["timeout"], 2);

    let (status, top) = get_json(&app, "/api/v1/top?type=counter&limit=1").await;
    assert_eq!(status, StatusCode::OK, "{top}");
    assert_eq!(top["metrics"].as_array().unwrap().len(), 1);
    assert_eq!(top["metrics"][0]["tags"]["method"], "POST");

    let (status, series) = get_json(&app, "/api/v1/series?tag=method:GET").await;
    assert_eq!(status, StatusCode::OK, "{series}");
    let list = series["series"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{series}");
    assert_eq!(list[0]["name"], "http.requests");
    assert_eq!(list[0]["value"], 10.0);
    let (_, gauges) = get_json(&app, "/api/v1/series?type=gauge&prefix=queue.").await;
    assert_eq!(gauges["series"].as_array().unwrap().len(), 1, "{gauges}");

    let (status, d) = get_json(&app, "/api/v1/dashboards/errors").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["kind"], "errors");

    let (status, headers, csv) = get(&app, "/api/v1/export?format=csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(text(&csv).contains("http.requests"));
    let (status, _, json) = get(&app, "/api/v1/export").await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter_and_unknown_metrics_404() {
    let app = app(recorded());
    for (uri, parameter) in [
        ("/api/v1/summary", "name"),
        ("/api/v1/summary?name=", "name"),
        ("/api/v1/summary?name=http.requests&window=5x", "window"),
        ("/api/v1/summary?name=http.requests&window=0", "window"),
        ("/api/v1/summary?name=http.requests&window=300d", "window"),
        ("/api/v1/success?operation=checkout&window=300d", "window"),
        (
            "/api/v1/summary?name=http.requests&window=5m&window=1h",
            "window",
        ),
        ("/api/v1/summary?name=http.requests&tag=method:GET", "tag"),
        ("/api/v1/summary?name=http.requests&windw=5m", "windw"),
        ("/api/v1/timing?name=db.query&window=-1s", "window"),
        ("/api/v1/success", "operation"),
        ("/api/v1/top?limit=0", "limit"),
        ("/api/v1/top?limit=lots", "limit"),
        ("/api/v1/top?type=sundial", "type"),
        ("/api/v1/series?tag=nocolon", "tag"),
        ("/api/v1/dashboards/weather", "kind"),
        ("/api/v1/export?format=xml", "format"),
        ("/api/v1/stream?type=sundial", "type"),
        ("/api/v1/health?verbose=1", "verbose"),
    ] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["parameter"], parameter, "{uri}: {e}");
        assert_eq!(e["error"], "bad_parameter", "{uri}: {e}");
    }
    for uri in [
        "/api/v1/summary?name=never.recorded",
        "/api/v1/timing?name=never.recorded",
        "/api/v1/success?operation=never.recorded",
        "/api/v1/nothing",
        "/nothing",
    ] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {e}");
        assert_eq!(e["error"], "not_found", "{uri}: {e}");
    }
}

#[tokio::test]
async fn health_is_503_only_when_unhealthy() {
    for (status, code) in [
        (HealthStatus::Healthy, StatusCode::OK),
        (HealthStatus::Degraded, StatusCode::OK),
        (HealthStatus::Unhealthy, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let mut s = TestSystem::new();
        s.health = status;
        let (got, body) = get_json(&app(s), "/api/v1/health").await;
        assert_eq!(got, code, "{body}");
        assert_eq!(body["status"], status.to_string());
    }
}

#[tokio::test]
async fn a_panicking_backend_is_a_500_and_the_router_goes_on() {
    let mut s = recorded();
    s.aggregator = Some(Arc::new(Panicking));
    let source =
        Source::from_system(Arc::new(s)).with_exporter(Exporter::new(Arc::new(PanickingSnapshots)));
    let app = router(source, &HttpConfig::default());
    for uri in [
        "/metrics",
        "/api/v1/summary?name=x",
        "/api/v1/top",
        "/api/v1/timing?name=db.query",
        "/api/v1/success?operation=checkout",
    ] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(e["error"], "internal");
    }
    // Health does not ask the aggregator: it still answers.
    let (status, h) = get_json(&app, "/api/v1/health").await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["status"], "healthy");
}

#[tokio::test]
async fn without_an_exporter_metrics_and_export_answer_501_saying_why() {
    let app = router(
        Source::from_system(Arc::new(recorded())),
        &HttpConfig::default(),
    );
    for uri in ["/metrics", "/api/v1/export?format=csv"] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{uri}");
        assert_eq!(e["error"], "unsupported", "{uri}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("no exporter"), "{uri}: {message}");
    }
    // The rest of the API is there.
    let (status, _) = get_json(&app, "/api/v1/top").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_token_guards_every_path() {
    let config = HttpConfig {
        token: Some("s3cret".into()),
        ..HttpConfig::default()
    };
    let app = router(recorded().source(), &config);
    for uri in [
        "/metrics",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/nothing",
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic s3cret"),
            Some("Bearer s3cre"),
        ] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let (status, h, _) = call(&app, Method::GET, uri, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {auth:?}");
            assert_eq!(h["www-authenticate"], "Bearer");
        }
    }
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/metrics",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(HttpConfig::from_env(|_| Some("  ".into())).token.is_none());
    assert_eq!(
        HttpConfig::from_env(|k| (k == "METRICS_HTTP_TOKEN").then(|| "t".into()))
            .token
            .as_deref(),
        Some("t")
    );
}

#[tokio::test]
async fn the_stream_sends_metrics_and_lag_as_events() {
    let mut s = TestSystem::new();
    let v = |name: &str, t| MetricValue::new(name, 1.0, t, MetricUnit::Count, &[("k", "v")]);
    s.events = vec![
        StreamEvent::Metric(v("jobs.done", MetricType::Counter)),
        StreamEvent::Lagged { missed: 3 },
        StreamEvent::Metric(v("queue.depth", MetricType::Gauge)),
    ];
    let app = app(s);
    let (status, headers, body) = get(&app, "/api/v1/stream?prefix=jobs.&tag=k:v").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let body = text(&body);
    assert!(body.contains("event: metric\ndata: {"), "{body}");
    assert!(body.contains("\"name\":\"jobs.done\""), "{body}");
    assert!(
        body.contains("event: lagged\ndata: {\"missed\":3}"),
        "{body}"
    );
    assert!(!body.contains("queue.depth"), "{body}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = app(TestSystem::new());
    let (status, doc) = get_json(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "health",
        "series",
        "summary",
        "query_range",
        "rollup",
        "timing",
        "success",
        "top",
        "dashboards/{kind}",
        "export",
        "stream",
    ] {
        let path = format!("/api/v1/{p}");
        assert!(paths.contains_key(&path), "{path}");
        // The errors any request may meet are documented on every path.
        let responses = paths[&path]["get"]["responses"].as_object().unwrap();
        for status in ["400", "401", "405", "408", "413", "431", "503"] {
            assert!(responses.contains_key(status), "{path} {status}");
        }
        // Every documented path answers (not 404) with its required parameters.
        let uri = match p {
            "summary" | "timing" => format!("{path}?name=http.requests"),
            "success" => format!("{path}?operation=x"),
            "dashboards/{kind}" => "/api/v1/dashboards/overview".into(),
            _ => path.clone(),
        };
        let (status, _, body) = get(&app, &uri).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        assert!(
            status != StatusCode::NOT_FOUND || text(&body).contains("no data"),
            "{uri}: {}",
            text(&body)
        );
    }
}

/// Reads a whole HTTP/1.1 answer from a fresh connection.
fn raw_request(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_real_socket_serves_limits_heads_and_reports_a_busy_port() {
    let config = HttpConfig {
        max_connections: 1,
        header_read_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let server =
        Server::start("127.0.0.1:0".parse().unwrap(), recorded().source(), config).unwrap();
    let addr = server.local_addr();

    // A client that connects and sends nothing does not hold the only
    // connection: the next client is served at once, and the silent one is
    // closed by the head timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let answer = raw_request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("content-type: text/plain; version=0.0.4"),
        "{answer}"
    );
    assert!(answer.contains("http_requests"), "{answer}");
    let mut buf = Vec::new();
    let _ = idle.read_to_end(&mut buf); // closed by the server, not hanging
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // A request head over the limit is refused, not buffered, with a JSON
    // error (the client may see its connection reset before the answer).
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = raw_request(addr, &huge);
    assert!(
        answer.is_empty()
            || (answer.starts_with("HTTP/1.1 431")
                && answer.contains("content-type: application/json")
                && answer.contains("\"error\":\"header_too_large\"")),
        "{answer}"
    );

    // The port is taken: a clear error, naming the address.
    let busy = Server::start(
        addr,
        Source::from_system(Arc::new(NoopMetrics)),
        HttpConfig::default(),
    );
    match busy {
        Err(e @ HttpError::Bind { .. }) => {
            assert!(e.to_string().contains(&addr.to_string()), "{e}")
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    server.shutdown();
    assert!(
        TcpStream::connect(addr).is_err() || raw_request(addr, "GET / HTTP/1.1\r\n\r\n").is_empty()
    );
}

/// The memory backend's range query behind the HTTP trait, as the main
/// program plugs it in.
struct Ranges(Arc<MemoryMetrics>);

impl RangeQueries for Ranges {
    fn query_range(&self, r: &RangeRequest) -> Result<Vec<RangeGroup>, MetricsError> {
        self.0.query_range(r)
    }

    fn rollup(&self, r: &RollupRequest) -> Option<Result<Vec<RangeGroup>, MetricsError>> {
        RangeQueries::rollup(&*self.0, r)
    }

    /// Outcomes as an earlier run would add them: 100 more successes.
    fn outcomes(
        &self,
        operation: &str,
        window: Option<Duration>,
        _instance: &InstanceScope,
    ) -> Option<Result<Outcomes, MetricsError>> {
        let older = std::collections::BTreeMap::new();
        let older = metrics_memory::OlderOutcomes {
            success: 100,
            failures: &older,
        };
        Some(self.0.outcomes_with_older(operation, window, Some(older)))
    }
}

#[tokio::test]
async fn rollups_answer_calendar_periods_and_history_answers_success() {
    let system = recorded();
    let mem = system.mem.clone();
    let plain = app(recorded());
    let uri = "/api/v1/rollup?name=http.requests&period=hour&start=0&end=1";
    let (status, e) = get_json(&plain, uri).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{e}");
    // Other instances need a shared store.
    for uri in [
        "/api/v1/rollup?name=x&period=hour&start=0&end=1&instance=*",
        "/api/v1/query_range?name=x&start=0&end=1&step=10s&instance=b",
        "/api/v1/summary?name=http.requests&window=1m&instance=b",
        "/api/v1/success?operation=checkout&instance=*",
    ] {
        let (status, e) = get_json(&plain, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["parameter"], "instance", "{uri}: {e}");
    }

    let app = router(
        system.source().with_ranges(Arc::new(Ranges(mem))),
        &HttpConfig::default(),
    );
    let now = chrono::Utc::now();
    let uri = format!(
        "/api/v1/rollup?name=http.requests&period=hour&start={}&end={}&group_by=method",
        (now - chrono::TimeDelta::hours(2)).timestamp(),
        (now + chrono::TimeDelta::hours(1)).timestamp()
    );
    let (status, r) = get_json(&app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let series = r["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{r}");
    let get = series.iter().find(|s| s["group"] == "GET").unwrap();
    let bin = &get["bins"][0];
    assert_eq!(bin["sum"], 10.0, "{r}");
    for k in ["start", "end", "covers_start", "covers_end"] {
        assert!(bin[k].is_string(), "{k}: {r}");
    }
    assert!(bin["start"].as_str() <= bin["covers_start"].as_str(), "{r}");

    for (uri, parameter) in [
        (
            "/api/v1/rollup?name=x&period=fortnight&start=0&end=5",
            "period",
        ),
        ("/api/v1/rollup?name=x&start=0&end=5", "period"),
        ("/api/v1/rollup?name=x&period=day&start=9&end=5", "end"),
        ("/api/v1/rollup?name=x&period=day&start=soon&end=5", "start"),
        ("/api/v1/rollup?period=day&start=0&end=5", "name"),
        (
            "/api/v1/rollup?name=x&period=day&start=0&end=5&group_by=",
            "group_by",
        ),
        (
            "/api/v1/rollup?name=x&period=day&start=0&end=5&instance=",
            "instance",
        ),
        ("/api/v1/summary?name=x&instance=*", "window"),
    ] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["parameter"], parameter, "{uri}: {e}");
    }

    // `success` merges what the history adds: 8 + 100 successes, 2 failures.
    let (status, r) = get_json(&app, "/api/v1/success?operation=checkout").await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["success_rate"], 108.0 / 110.0, "{r}");
    assert_eq!(r["failures"]["timeout"], 2, "{r}");
}

#[tokio::test]
async fn query_range_answers_bins_by_group_when_the_system_keeps_history() {
    let system = recorded();
    let mem = system.mem.clone();
    let plain = app(recorded());
    let (status, e) = get_json(
        &plain,
        "/api/v1/query_range?name=http.requests&start=0&end=1&step=10s",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{e}");

    let app = router(
        system.source().with_ranges(Arc::new(Ranges(mem))),
        &HttpConfig::default(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let uri = format!(
        "/api/v1/query_range?name=http.requests&start={}&end={}&step=1m&group_by=method",
        now - 3600,
        now + 60
    );
    let (status, r) = get_json(&app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let series = r["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{r}");
    let total = |group: &str| -> f64 {
        series.iter().find(|s| s["group"] == group).unwrap()["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["sum"].as_f64().unwrap())
            .sum()
    };
    assert_eq!((total("GET"), total("POST")), (10.0, 20.0), "{r}");
    // Every step is a minute and says what its bins cover: bins that
    // start in it (one may reach past its end: no bin is split).
    let time = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    // The answer says the grid it was given on: the range rounded out to
    // whole minutes, every step on it.
    let (g0, g1) = (time(&r["grid"]["start"]), time(&r["grid"]["end"]));
    assert_eq!(r["grid"]["step_seconds"], 60.0, "{r}");
    assert_eq!((g0 % 60, g1 % 60), (0, 0), "{r}");
    assert!(g0 <= now as i64 - 3600 && g0 > now as i64 - 3660, "{r}");
    for b in series.iter().flat_map(|s| s["bins"].as_array().unwrap()) {
        let (start, end) = (time(&b["start"]), time(&b["end"]));
        assert_eq!(end - start, 60, "{b}");
        assert!(start % 60 == 0 && start >= g0 && end <= g1, "{b}");
        let covers = (time(&b["covers_start"]), time(&b["covers_end"]));
        assert!(start <= covers.0 && covers.0 < end, "{b}");
        assert!(covers.0 < covers.1 && covers.1 <= end + 10, "{b}");
        // A counter's steps have no percentiles.
        assert!(b.get("p50").is_none() && b.get("p95").is_none(), "{b}");
    }

    // A distribution's steps carry their percentiles: 0, 100, ... 900
    // (one step of a day holds them all but once in a long while).
    let uri = format!(
        "/api/v1/query_range?name=payload.bytes&start={}&end={}&step=1d",
        now - 3600,
        now + 60
    );
    let (status, r) = get_json(&app, &uri).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let bins = r["series"][0]["bins"].as_array().unwrap();
    for b in bins {
        let (p50, p95, p99) = (b["p50"].as_f64(), b["p95"].as_f64(), b["p99"].as_f64());
        let (min, max) = (b["min"].as_f64().unwrap(), b["max"].as_f64().unwrap());
        for p in [p50, p95, p99] {
            let p = p.unwrap_or_else(|| panic!("no percentiles in {b}"));
            assert!(min <= p && p <= max, "{b}");
        }
        if b["count"] == 10 {
            let p50 = p50.unwrap();
            assert!((p50 - 400.0).abs() <= 4.0, "the 5th of 10: {b}");
            assert_eq!(p99, Some(900.0), "{b}");
        }
    }

    for (uri, parameter) in [
        (
            "/api/v1/query_range?name=x&start=10&end=5&step=10s".to_owned(),
            "end",
        ),
        (
            "/api/v1/query_range?name=x&start=0&end=1000000&step=10ms".to_owned(),
            "step",
        ),
        (
            format!(
                "/api/v1/query_range?name=x&start={}&end={}&step=7s",
                now - 60,
                now
            ),
            "step",
        ),
        (
            "/api/v1/query_range?name=x&start=soon&end=5&step=10s".to_owned(),
            "start",
        ),
        (
            "/api/v1/query_range?name=x&start=0&end=5".to_owned(),
            "step",
        ),
        (
            "/api/v1/query_range?name=x&start=0&end=5&step=10s&group_by=".to_owned(),
            "group_by",
        ),
    ] {
        let (status, e) = get_json(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["parameter"], parameter, "{uri}: {e}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the query string, every path answers without a server
    /// error (a 501 only where the system cannot answer).
    #[test]
    fn any_query_string_is_answered_without_a_server_error(
        q in "[a-z_=&:%0-9.A-Z+-]{0,40}",
        path in proptest::sample::select(vec![
            "/api/v1/summary", "/api/v1/timing", "/api/v1/success", "/api/v1/top",
            "/api/v1/series", "/api/v1/export", "/api/v1/health", "/api/v1/query_range",
            "/api/v1/rollup",
            "/api/v1/dashboards/errors", "/metrics",
        ]),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let app = app(recorded());
        let uri = format!("{path}?{q}");
        if let Ok(uri) = uri.parse::<axum::http::Uri>() {
            let (status, _, body) = rt.block_on(call(&app, Method::GET, &uri.to_string(), &[]));
            proptest::prop_assert!(
                !status.is_server_error() || status == StatusCode::NOT_IMPLEMENTED,
                "{uri}: {status} {}", text(&body)
            );
        }
    }
}
