//! The HTTP API's query parameters: any query string on any route answers
//! with a status below 500, never a panic (the router's panic layer would
//! turn one into a 500).

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use metrics_http::{HttpConfig, Source, router};
use metrics_protocol::Metrics;
use metrics_sdk::{Agent, AgentConfig};
use tower::ServiceExt;

use crate::shape;

const PATHS: [&str; 12] = [
    "/metrics",
    "/api/v1/health",
    "/api/v1/series",
    "/api/v1/summary",
    "/api/v1/query_range",
    "/api/v1/timing",
    "/api/v1/success",
    "/api/v1/top",
    "/api/v1/dashboards/",
    "/api/v1/export",
    "/api/v1/openapi.json",
    "/api/v1/stream",
];

#[derive(Debug, Arbitrary)]
struct HttpInput {
    path: u8,
    /// The dashboard kind, for `/api/v1/dashboards/{kind}`.
    segment: String,
    query: String,
    accept: Option<String>,
}

struct World {
    runtime: tokio::runtime::Runtime,
    source: Source,
}

/// One agent (memory backend, no poller thread) with a little of every
/// kind recorded, shared by every run.
fn world() -> Option<&'static World> {
    static WORLD: OnceLock<Option<World>> = OnceLock::new();
    WORLD
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let config = AgentConfig {
                system_polling: false,
                ..AgentConfig::default()
            };
            let agent = runtime.block_on(async { Agent::new(config) }).ok()?;
            let memory = agent.memory()?.clone();
            let metrics = Metrics::new(memory.clone());
            let tags = [("method", "GET"), ("code", "200")];
            metrics.record_counter("http.requests", 3.0, &tags);
            metrics.record_gauge("queue.depth", -2.5, &[]);
            metrics.record_histogram("payload.bytes", 512.0, &tags);
            metrics.record_timer("db.query", std::time::Duration::from_millis(12), &[]);
            metrics.record_success("checkout", &[("region", "eu")]);
            metrics.record_failure("checkout", "timeout", &[("region", "eu")]);
            let exporter = agent.exporter()?.clone();
            let source = Source::from_system(Arc::new(agent))
                .with_ranges(memory)
                .with_exporter(exporter);
            Some(World { runtime, source })
        })
        .as_ref()
}

/// Bytes a query string may hold as they are; the rest percent-encoded, so
/// every input reaches the handlers (a URI the client library refuses
/// would test nothing of ours).
fn encode(s: &str, keep: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one GET with a fuzzed query string.
pub fn http_query(data: &[u8]) {
    let Some(input) = shape::<HttpInput>(data) else {
        return;
    };
    let Some(world) = world() else { return };
    let mut path = PATHS[usize::from(input.path) % PATHS.len()].to_owned();
    if path.ends_with('/') {
        path.push_str(&encode(&input.segment, "-._~"));
    }
    let uri = format!("{path}?{}", encode(&input.query, "-._~!$&'()*+,;=:@/?%"));
    let mut req = Request::get(uri.as_str());
    if let Some(a) = &input.accept {
        req = req.header("accept", encode(a, " -._~!$&'()*+,;=:@/?%"));
    }
    let Ok(req) = req.body(Body::empty()) else {
        return;
    };
    let app = router(world.source.clone(), &HttpConfig::default());
    let streaming = path.ends_with("/stream");
    world.runtime.block_on(async {
        let resp = app.oneshot(req).await.expect("the router is infallible");
        let status = resp.status();
        let body = if streaming {
            Vec::new()
        } else {
            resp.into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default()
        };
        assert!(
            !status.is_server_error(),
            "{uri}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    });
}
