//! Concurrency by kind of request: scrapes, queries and the page's files
//! each have their own places, so a crowd of one kind never holds up
//! another. Streams are limited by their own fan-out (`stream.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::{HttpConfig, HttpStats};

tokio::task_local! {
    /// The place the request being handled holds.
    static PLACE: Arc<OwnedSemaphorePermit>;
}

/// The place of the request being handled (on its task), for work it
/// hands to another thread: the place stays taken until that work is done
/// too, even when the request timed out first.
pub(crate) fn held_place() -> Option<Arc<OwnedSemaphorePermit>> {
    PLACE.try_with(Arc::clone).ok()
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

/// The places of each kind, shared by every request of a router.
#[derive(Clone)]
pub(crate) struct Limits {
    scrape: Place,
    query: Place,
    page: Place,
    wait: Duration,
    stats: HttpStats,
}

#[derive(Clone)]
struct Place {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Place {
    fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Place {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl Limits {
    pub(crate) fn new(config: &HttpConfig, stats: HttpStats) -> Self {
        Limits {
            scrape: Place::new(config.max_scrapes),
            query: Place::new(config.max_queries),
            page: Place::new(config.max_page_requests),
            wait: config.request_timeout,
            stats,
        }
    }
}

/// Runs the request once a place of its kind is free, waiting at most the
/// request timeout (then 503, with `Retry-After`).
pub(crate) async fn admit(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let kind = Kind::of(req.uri().path());
    let place = match kind {
        Kind::Scrape => &limits.scrape,
        Kind::Query => &limits.query,
        Kind::Page => &limits.page,
        Kind::Stream => return next.run(req).await,
    };
    let permit = match place.permits.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            match tokio::time::timeout(limits.wait, place.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    limits.stats.0.overloaded.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        kind = kind.name(),
                        "no place for a request within the timeout"
                    );
                    return ApiError::unavailable(
                        "overloaded",
                        format!(
                            "{} {} requests are being answered and this one waited {} ms for a \
                         place; retry later",
                            place.limit,
                            kind.name(),
                            limits.wait.as_millis()
                        ),
                    )
                    .into_response();
                }
            }
        }
    };
    PLACE.scope(Arc::new(permit), next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
