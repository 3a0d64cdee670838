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
//! Safe by default: [`Server::start`] is meant for `127.0.0.1`; an optional
//! bearer token guards every path; header and body sizes, request time and
//! concurrent connections are bounded ([`HttpConfig`]).
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
mod error;
mod exposition;
mod openapi;
mod page;
mod params;
mod range;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_protocol::system::{AsyncMetricsSystem, MetricsSystem};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::HttpError;
pub use exposition::negotiate;
pub use range::{
    ALL_INSTANCES, InstanceScope, MAX_POINTS, Outcomes, Period, RangeAnswer, RangeBin,
    RangeQueries, RangeRequest, RangeSeries, RollupRequest,
};
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
}

impl Source {
    /// Serves `system`, with streams from `streams`.
    pub fn new(system: Arc<dyn MetricsSystem>, streams: Arc<dyn AsyncMetricsSystem>) -> Self {
        Source {
            system,
            streams,
            ranges: None,
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
/// The defaults suit a metrics endpoint on loopback: 256 connections,
/// 10 s per request, 5 s to send the request head, 16 KiB of headers,
/// 64 KiB of body, no token.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// When set, every request must carry `Authorization: Bearer <token>`
    /// (the main program reads it from `METRICS_HTTP_TOKEN`).
    pub token: Option<String>,
    /// Connections served at once (1 to 2^20); further ones wait in the listen backlog
    /// until one closes.
    pub max_connections: usize,
    /// Time a handler may take to produce its response (a stream's events
    /// are not bounded by it, only its start).
    pub request_timeout: Duration,
    /// Time a client may take to send a request's head; a client that
    /// sends it slowly is disconnected.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); at least 8 KiB.
    pub max_header_bytes: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
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
            .finish()
    }
}

impl HttpConfig {
    /// The defaults, with the token read through `env` from
    /// `METRICS_HTTP_TOKEN` (an empty value means no token).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        HttpConfig {
            token: env("METRICS_HTTP_TOKEN").filter(|t| !t.trim().is_empty()),
            ..HttpConfig::default()
        }
    }
}

/// Every route, with the limits and the token check of `config` (the
/// connection limit and the header limits are the [`serve`] loop's). The
/// dashboard page (`/` and `/assets/...`) holds no data and is served
/// without the token; every other path needs it when one is set.
pub fn router(source: Source, config: &HttpConfig) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/health", get(api::health))
        .route("/series", get(api::series))
        .route("/summary", get(api::summary))
        .route("/query_range", get(range::query_range))
        .route("/rollup", get(range::rollup))
        .route("/timing", get(api::timing))
        .route("/success", get(api::success))
        .route("/top", get(api::top))
        .route("/dashboards/{kind}", get(api::dashboard))
        .route("/export", get(api::export))
        .route("/stream", get(api::stream));
    let guarded = Router::new()
        .route("/metrics", get(exposition::metrics))
        .nest("/api/v1", api)
        .fallback(api::not_found)
        .with_state(source)
        .layer(axum::middleware::from_fn_with_state(
            auth::Token::new(config.token.clone()),
            auth::require_token,
        ));
    // The page and its files hold no data: served without the token (the
    // page sends it with every API request).
    page::routes()
        .merge(guarded)
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(CatchPanicLayer::custom(error::panic_response))
}
