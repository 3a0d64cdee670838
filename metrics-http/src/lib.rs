//! Serves any metrics system built on `metrics-protocol` over HTTP.
//!
//! - `GET /metrics`: the Prometheus text format 0.0.4, or OpenMetrics 1.0.0
//!   when the `Accept` header asks for it (as a Prometheus server does);
//!   gzip when `Accept-Encoding` allows it; `HEAD` too.
//! - `GET /`: a live dashboard page (charts of the four dashboards, a
//!   series explorer, health), its files embedded in the binary.
//! - `GET /api/v1/...`: JSON queries (health, series, summary, timing,
//!   success, top, dashboards, export) and a live stream as server-sent
//!   events, described by the OpenAPI 3 document at `/api/v1/openapi.json`;
//!   with a [`RangeQueries`] history also `query_range` and calendar
//!   `rollup`, and other instances' history (`instance=NAME`, `*` for all)
//!   where it is a shared store.
//!
//! The rules of the JSON answers (the OpenAPI document states each):
//!
//! - Every value carries the unit `/metrics` exports it in (`bytes` for a
//!   metric described in a size unit or named `...bytes`, `milliseconds`
//!   for timers, `count` for plain counts).
//! - Numbers are JSON numbers everywhere, a distribution's statistics in
//!   `top`'s `metadata` too; a non-finite number is `null`.
//! - A counter's summary is `total` (the sum of its increments),
//!   `increments` (how many) and `rate` (total per second over the
//!   `window`, `null` for all time), without sample statistics (extremes of
//!   a counter would be of bins, not of increments); gauges, histograms
//!   and timers keep `count`, `sum`, `avg`, `min`, `max` and percentiles.
//! - A `window` shorter than the system's finest bin (10 s by default)
//!   holds no whole bin: 400 naming `window`, the message giving the
//!   shortest window.
//! - `start` and `end` of `query_range` and `rollup` take RFC 3339, Unix
//!   seconds, `now`, or a time before now (`-5m`, `-1.5h`); `end` defaults
//!   to now, `start` to an hour before `end`. Only bins that have ended by
//!   `end` count.
//!
//! Safe by default: [`Server::start`] is meant for `127.0.0.1`; an optional
//! bearer token guards every path; header and body sizes, request time,
//! open connections, requests of each kind at once and stream subscribers
//! are bounded, without a crowd of one kind holding up another: scrapes
//! stay fast whatever other clients do ([`HttpConfig`]). Every error answer
//! is a JSON object naming what was wrong. HTTP/1.1, and HTTP/2 with prior
//! knowledge.
//!
//! ```no_run
//! use std::sync::Arc;
//! use metrics_http::{HttpConfig, Server, Source};
//! use metrics_protocol::NoopMetrics;
//!
//! // Any value implementing MetricsSystem and AsyncMetricsSystem will do.
//! let source = Source::from_system(Arc::new(NoopMetrics));
//! let server = Server::start("127.0.0.1:9464".parse()?, source, HttpConfig::default())?;
//! println!("serving on http://{}/metrics", server.local_addr());
//! // ... the application runs ...
//! server.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In an application that already runs tokio, build the [`router`] and
//! hand it to [`serve`] with a listener of your own.
#![deny(missing_docs)]

mod api;
mod auth;
mod conn;
mod error;
mod exposition;
mod limits;
mod openapi;
mod page;
mod params;
mod range;
mod serve;
mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use metrics_exposition::Exporter;
use metrics_protocol::app::{AsyncMetricsSystem, MetricsSystem};
use metrics_query::RangeQueries;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use error::HttpError;
pub use exposition::negotiate;
pub use serve::{Server, serve};

/// The system being served: its synchronous side (queries, health,
/// dashboards, exports) and its asynchronous side (streams).
///
/// Usually both are the same value: [`Source::from_system`].
#[derive(Clone)]
pub struct Source {
    system: Arc<dyn MetricsSystem>,
    streams: Arc<dyn AsyncMetricsSystem>,
    ranges: Option<Arc<dyn RangeQueries>>,
    exporter: Option<Exporter>,
}

impl Source {
    /// Serves `system`, with streams from `streams`.
    pub fn new(system: Arc<dyn MetricsSystem>, streams: Arc<dyn AsyncMetricsSystem>) -> Self {
        Source {
            system,
            streams,
            ranges: None,
            exporter: None,
        }
    }

    /// Answers `/api/v1/query_range` from `ranges` (without it, that path
    /// answers 501: the protocol itself has no range query), and
    /// `/api/v1/summary` and `/api/v1/timing` from it where it says so
    /// (a history that outlives the process).
    pub fn with_ranges(mut self, ranges: Arc<dyn RangeQueries>) -> Self {
        self.ranges = Some(ranges);
        self
    }

    /// Serves `/metrics` and `/api/v1/export` through `exporter` (without
    /// one, both answer 501: the protocol itself reads no snapshot; the
    /// composed system plugs in one over its memory backend).
    pub fn with_exporter(mut self, exporter: Exporter) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// Serves one value that is both sides of the protocol (an `Agent`,
    /// `NoopMetrics`, ...).
    pub fn from_system<S>(system: Arc<S>) -> Self
    where
        S: MetricsSystem + AsyncMetricsSystem + 'static,
    {
        Source {
            system: system.clone(),
            streams: system,
            ranges: None,
            exporter: None,
        }
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").finish_non_exhaustive()
    }
}

/// Limits and access control of the server.
///
/// The defaults suit a metrics endpoint on loopback: 256 connections
/// kept open, 10 s per request, 5 s to send a request head, 16 KiB of
/// headers, 64 KiB of body, 4 threads for scrapes and 4 for queries, 32
/// stream subscribers, no token.
///
/// # Guarantees
///
/// - **Nothing waits to be accepted.** A new connection is always served.
///   Past [`max_connections`](Self::max_connections) open connections, the
///   oldest idle one (else the oldest) is asked to close: an idle
///   keep-alive connection closes at once, one with a request in flight
///   after its answer.
/// - **One kind of request cannot starve another.** The calls into the
///   system that may take a while (exports, health checks, queries) run
///   on threads of their kind: [`max_scrapes`](Self::max_scrapes) for
///   `/metrics` and `/api/v1/health`, [`max_queries`](Self::max_queries)
///   for the other queries under `/api/v1/`. A call waits behind calls of
///   its own kind only; past 64 waiting per thread, the request is
///   answered 503 (`overloaded`) at once. The page's files are answered
///   without waiting; streams have their own limit.
/// - Every handler has [`request_timeout`](Self::request_timeout) to answer
///   (then 408); a call still waiting for a thread when its request times
///   out is never made.
/// - A stream subscriber past [`max_streams`](Self::max_streams) is
///   answered 503 at once.
/// - Every error answer is a JSON object `{"error", "message",
///   "parameter"}`, also those for requests the HTTP parser refuses (a
///   head too large, a malformed request line, header or `Content-Length`).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// When set, every request must carry `Authorization: Bearer <token>`
    /// (the main program reads it from `METRICS_HTTP_TOKEN`).
    pub token: Option<String>,
    /// Connections kept open at once (1 to 2^20). A new connection is never
    /// left waiting: past this many, the oldest idle connection (else the
    /// oldest) is asked to close, gracefully.
    pub max_connections: usize,
    /// Time a handler may take to produce its response, waiting for a
    /// thread of its kind included (a stream's events are not bounded by
    /// it, only its start).
    pub request_timeout: Duration,
    /// Time a client may take to send a request's head, counted from when
    /// the connection opened or from the end of its previous answer: a
    /// connection with nothing in flight for longer is closed (HTTP/1.1
    /// and HTTP/2 alike).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); at least 8 KiB.
    pub max_header_bytes: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Threads for the calls of scrapes (`GET /metrics`, `GET
    /// /api/v1/health`) at once (at least 1); more calls wait for one.
    pub max_scrapes: usize,
    /// Threads for the calls of queries (every other path under `/api/v1/`
    /// but the stream and the OpenAPI document) at once (at least 1); more
    /// calls wait for one.
    pub max_queries: usize,
    /// Stream subscribers (`/api/v1/stream`) at once; one more is
    /// answered 503 (the main program reads it from
    /// `METRICS_HTTP_MAX_STREAMS`).
    pub max_streams: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            token: None,
            max_connections: 256,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            max_scrapes: 4,
            max_queries: 4,
            max_streams: 32,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("max_connections", &self.max_connections)
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_scrapes", &self.max_scrapes)
            .field("max_queries", &self.max_queries)
            .field("max_streams", &self.max_streams)
            .finish()
    }
}

impl HttpConfig {
    /// The defaults, with the token read through `env` from
    /// `METRICS_HTTP_TOKEN` (an empty value means no token) and the stream
    /// limit from `METRICS_HTTP_MAX_STREAMS` (a whole number; any other
    /// value is logged and the default kept).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let defaults = HttpConfig::default();
        let max_streams = match env("METRICS_HTTP_MAX_STREAMS") {
            None => defaults.max_streams,
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(
                    value = %v,
                    default = defaults.max_streams,
                    "METRICS_HTTP_MAX_STREAMS is not a whole number; keeping the default"
                );
                defaults.max_streams
            }),
        };
        HttpConfig {
            token: env("METRICS_HTTP_TOKEN").filter(|t| !t.trim().is_empty()),
            max_streams,
            ..defaults
        }
    }
}

/// Counters of a running server, for tests and operators: connections
/// open and asked to close, stream subscribers and the events encoded for
/// them, requests refused for want of a place.
///
/// Cheap to clone (the counters are shared).
#[derive(Clone, Default)]
pub struct HttpStats(Arc<StatsInner>);

#[derive(Default)]
struct StatsInner {
    connections: AtomicU64,
    evicted: AtomicU64,
    streams: AtomicU64,
    stream_upstreams: AtomicU64,
    stream_encodings: AtomicU64,
    refused_streams: AtomicU64,
    overloaded: AtomicU64,
}

impl HttpStats {
    /// Connections open now.
    pub fn connections(&self) -> u64 {
        self.0.connections.load(Ordering::Relaxed)
    }

    /// Connections asked to close so far because more than
    /// [`HttpConfig::max_connections`] were open.
    pub fn evicted(&self) -> u64 {
        self.0.evicted.load(Ordering::Relaxed)
    }

    /// Stream subscribers now.
    pub fn streams(&self) -> u64 {
        self.0.streams.load(Ordering::Relaxed)
    }

    /// Subscriptions to the system's stream now: one per distinct filter
    /// among the subscribers, however many share it.
    pub fn stream_upstreams(&self) -> u64 {
        self.0.stream_upstreams.load(Ordering::Relaxed)
    }

    /// Stream events encoded so far: each event once for all the
    /// subscribers sharing its filter.
    pub fn stream_encodings(&self) -> u64 {
        self.0.stream_encodings.load(Ordering::Relaxed)
    }

    /// Stream subscribers refused (503) because [`HttpConfig::max_streams`]
    /// were subscribed.
    pub fn refused_streams(&self) -> u64 {
        self.0.refused_streams.load(Ordering::Relaxed)
    }

    /// Requests answered 503 because too many calls of their kind were
    /// waiting for a thread.
    pub fn overloaded(&self) -> u64 {
        self.0.overloaded.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for HttpStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStats")
            .field("connections", &self.connections())
            .field("evicted", &self.evicted())
            .field("streams", &self.streams())
            .field("stream_upstreams", &self.stream_upstreams())
            .field("stream_encodings", &self.stream_encodings())
            .field("refused_streams", &self.refused_streams())
            .field("overloaded", &self.overloaded())
            .finish()
    }
}

/// The JSON API's routes under `/api/v1`, each GET (and HEAD): the router
/// serves these and no other, and the OpenAPI document describes exactly
/// these (a test holds the two equal).
fn api_routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    vec![
        ("/openapi.json", get(openapi::document)),
        ("/health", get(api::health)),
        ("/series", get(api::series)),
        ("/summary", get(api::summary)),
        ("/query_range", get(range::query_range)),
        ("/rollup", get(range::rollup)),
        ("/timing", get(api::timing)),
        ("/success", get(api::success)),
        ("/top", get(api::top)),
        ("/dashboards/{kind}", get(api::dashboard)),
        ("/export", get(api::export)),
        ("/stream", get(api::stream)),
    ]
}

#[cfg(test)]
mod route_tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use metrics_protocol::NoopMetrics;
    use tower::ServiceExt;

    use super::*;

    /// The paths and methods the OpenAPI document describes are those the
    /// router serves: every route is documented, every documented path
    /// answers GET (not the 404 of an unknown path) and refuses POST (405).
    #[tokio::test]
    async fn the_document_describes_exactly_the_routes_served() {
        let doc = openapi::build();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(method, _)| (path.clone(), method.to_ascii_uppercase()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = api_routes()
            .into_iter()
            .map(|(path, _)| (format!("/api/v1{path}"), "GET".to_owned()))
            .collect();
        assert_eq!(documented, served);

        let app = router(
            Source::from_system(Arc::new(NoopMetrics)),
            &HttpConfig::default(),
        );
        for (path, _) in &served {
            let uri = path.replace("{kind}", "overview");
            for (method, refused) in [(Method::GET, false), (Method::POST, true)] {
                let req = Request::builder()
                    .method(method.clone())
                    .uri(&uri)
                    .body(Body::empty())
                    .unwrap();
                let res = app.clone().oneshot(req).await.unwrap();
                if refused {
                    assert_eq!(
                        res.status(),
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {uri}"
                    );
                    continue;
                }
                assert_ne!(
                    res.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri}"
                );
                let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let body = String::from_utf8_lossy(&body);
                assert!(!body.contains("no such path"), "{method} {uri}: {body}");
            }
        }
    }
    /// Every reference in the document names a schema it holds (a schema
    /// only a parameter uses is easily left out).
    #[test]
    fn every_reference_in_the_document_resolves() {
        fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        out.push(r.to_owned());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = openapi::build();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "{found:?}");
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}: not a schema reference"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r}: no such schema"
            );
        }
    }

    /// The query parameters each operation of the document lists are the
    /// ones its handler accepts: an unknown parameter is refused with the
    /// list of those it takes, which must be the documented ones.
    #[tokio::test]
    async fn each_operation_documents_exactly_the_parameters_its_handler_takes() {
        // Taken only to be refused with a better message than "unknown".
        let refused_with_a_reason = [("/api/v1/summary", "tag")];
        let doc = openapi::build();
        let app = router(
            Source::from_system(Arc::new(NoopMetrics)),
            &HttpConfig::default(),
        );
        let paths = doc["paths"].as_object().expect("the document has paths");
        assert_eq!(paths.len(), api_routes().len());
        for (path, item) in paths {
            let documented: BTreeSet<String> = item["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let uri = format!("{}?not_a_parameter=1", path.replace("{kind}", "overview"));
            let req = Request::builder().uri(&uri).body(Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{uri}");
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let message = error["message"].as_str().unwrap_or_default();
            let list = message
                .split_once("(expected ")
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{uri}: {message}"));
            let taken: BTreeSet<String> = list
                .split(", ")
                .filter(|n| *n != "none")
                .filter(|n| !refused_with_a_reason.contains(&(path.as_str(), *n)))
                .map(str::to_owned)
                .collect();
            assert_eq!(documented, taken, "{path}");
        }
    }
}

/// What the handlers share: the system and the streams' fan-out.
#[derive(Clone)]
pub(crate) struct AppState {
    source: Source,
    streams: Arc<stream::Streams>,
}

impl FromRef<AppState> for Source {
    fn from_ref(state: &AppState) -> Source {
        state.source.clone()
    }
}

impl FromRef<AppState> for Arc<stream::Streams> {
    fn from_ref(state: &AppState) -> Arc<stream::Streams> {
        state.streams.clone()
    }
}

/// Every route, with the limits and the token check of `config` (the
/// connection limit and the header limits are the [`serve`] loop's). The
/// dashboard page (`/` and `/assets/...`) holds no data and is served
/// without the token; every other path needs it when one is set.
pub fn router(source: Source, config: &HttpConfig) -> Router {
    router_with_stats(source, config, HttpStats::default())
}

/// [`router`], counting into `stats`.
pub(crate) fn router_with_stats(source: Source, config: &HttpConfig, stats: HttpStats) -> Router {
    let streams = Arc::new(stream::Streams::new(
        source.streams.clone(),
        config.max_streams,
        stats.clone(),
    ));
    let state = AppState { source, streams };
    let api = api_routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route));
    let guarded = Router::new()
        .route("/metrics", get(exposition::metrics))
        .nest("/api/v1", api)
        .fallback(api::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            auth::Token::new(config.token.clone()),
            auth::require_token,
        ));
    // The page and its files hold no data: served without the token (the
    // page sends it with every API request).
    page::routes()
        .merge(guarded)
        .method_not_allowed_fallback(error::method_not_allowed)
        // One stack, so each route is wrapped (and boxed) once.
        .layer(
            tower::ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(error::panic_response))
                .layer(CompressionLayer::new())
                .layer(tower::util::MapResponseLayer::new(
                    error::json_error_bodies(error::ErrorContext::from(config)),
                ))
                .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
                .map_request(|req: axum::http::Request<_>| req.map(axum::body::Body::new))
                .layer(limits::AdmitLayer::new(config, stats))
                .layer(params::CheckUtf8Layer),
        )
}
