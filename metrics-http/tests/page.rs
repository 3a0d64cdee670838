//! The dashboard page at `GET /`: its HTML, and every file it references,
//! served from the binary; served without the token, which still guards
//! the data.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use metrics_http::{HttpConfig, Source, router};
use metrics_protocol::NoopMetrics;
use tower::ServiceExt;

async fn get(
    app: &Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().uri(uri);
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

fn app(token: Option<&str>) -> Router {
    let config = HttpConfig {
        token: token.map(str::to_owned),
        ..HttpConfig::default()
    };
    router(Source::from_system(Arc::new(NoopMetrics)), &config)
}

/// Every `src="..."` and `href="..."` of `html` that points at this server.
fn local_references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let value = &rest[..rest.find('"').expect("a closed attribute")];
            if value.starts_with('/') && !value.starts_with("//") {
                refs.push(value.to_owned());
            }
        }
    }
    refs
}

#[tokio::test]
async fn the_page_is_html_and_every_file_it_references_is_served() {
    let app = app(None);
    let (status, headers, body) = get(&app, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = String::from_utf8(body).unwrap();
    assert!(html.starts_with("<!doctype html>"), "{html}");

    let refs = local_references(&html);
    for expected in [
        "/assets/dashboard.js",
        "/assets/dashboard.css",
        "/assets/uPlot.iife.min.js",
        "/assets/uPlot.min.css",
        "/assets/uPlot.LICENSE",
    ] {
        assert!(
            refs.iter().any(|r| r == expected),
            "{expected} not in {refs:?}"
        );
    }
    for r in &refs {
        let (status, headers, body) = get(&app, r, &[]).await;
        assert!(!body.is_empty(), "{r}");
        if !r.starts_with("/assets/") {
            // Links to the API: a route answers (a system without data
            // may answer 501; what they serve is the API's tests').
            assert_ne!(status, StatusCode::NOT_FOUND, "{r}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{r}");
        let ct = headers["content-type"].to_str().unwrap();
        let want = match r.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(ct, want, "{r}");
    }
    // The licence travels with the library.
    let (_, _, licence) = get(&app, "/assets/uPlot.LICENSE", &[]).await;
    assert!(String::from_utf8(licence).unwrap().contains("MIT License"));
    // Nothing outside the list.
    let (status, headers, _) = get(&app, "/assets/../Cargo.toml", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    let (status, _, _) = get(&app, "/assets/app.js", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_needs_no_token_but_the_data_still_does() {
    let app = app(Some("s3cret"));
    for uri in ["/", "/?token=s3cret", "/assets/dashboard.js"] {
        let (status, _, _) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    for uri in [
        "/api/v1/health",
        "/api/v1/dashboards/overview",
        "/metrics",
        "/nothing",
        "/api/v1/health?token=s3cret",
    ] {
        let (status, headers, _) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(headers["www-authenticate"], "Bearer");
    }
    let (status, _, _) = get(
        &app,
        "/api/v1/health",
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_page_is_compressed_when_the_client_allows() {
    let app = app(None);
    let (status, headers, body) = get(
        &app,
        "/assets/uPlot.iife.min.js",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    let plain = get(&app, "/assets/uPlot.iife.min.js", &[]).await.2;
    assert!(
        body.len() < plain.len() / 2,
        "{} of {}",
        body.len(),
        plain.len()
    );
}
