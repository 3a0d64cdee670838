//! `GET /metrics`: the Prometheus or OpenMetrics text of the source's
//! exporter, chosen by the `Accept` header.

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exposition::ExportFormat;

use crate::Source;
use crate::api::blocking;
use crate::error::ApiError;

/// The exposition format an `Accept` header asks for: OpenMetrics when
/// `application/openmetrics-text` is accepted at least as much as
/// `text/plain` (a Prometheus server lists it first), else the Prometheus
/// text format 0.0.4 (also when there is no header or it names neither).
///
/// ```
/// use metrics_http::negotiate;
/// use metrics_exposition::ExportFormat;
/// let prometheus_server = "application/openmetrics-text;version=1.0.0,\
///     application/openmetrics-text;version=0.0.1;q=0.75,\
///     text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate(Some(prometheus_server)), ExportFormat::OpenMetrics);
/// assert_eq!(negotiate(Some("text/plain")), ExportFormat::Prometheus);
/// assert_eq!(negotiate(None), ExportFormat::Prometheus);
/// ```
pub fn negotiate(accept: Option<&str>) -> ExportFormat {
    let Some(accept) = accept else {
        return ExportFormat::Prometheus;
    };
    let mut openmetrics = 0.0_f64;
    let mut text = 0.0_f64;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f64>().unwrap_or(0.0));
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        ExportFormat::OpenMetrics
    } else {
        ExportFormat::Prometheus
    }
}

/// `GET /metrics` (and `HEAD`); 501 when the source has no exporter.
pub(crate) async fn metrics(State(source): State<Source>, headers: HeaderMap) -> Response {
    let format = negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let Some(exporter) = source.exporter.clone() else {
        return no_exporter().into_response();
    };
    let text = match blocking(move || exporter.export(format)).await {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => return ApiError::from_metrics(e, "format").into_response(),
        Err(e) => return e.into_response(),
    };
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (VARY, HeaderValue::from_static("Accept")),
        ],
        text,
    )
        .into_response()
}

/// 501: the source was built without an exporter, so nothing reads its
/// series to encode them.
pub(crate) fn no_exporter() -> ApiError {
    ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        error: "unsupported",
        message: "this system has no exporter: nothing serves a snapshot of its series \
                  (the HTTP source was built without Source::with_exporter)"
            .into(),
        parameter: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        use ExportFormat::*;
        for (accept, want) in [
            ("application/openmetrics-text", OpenMetrics),
            (
                "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;q=0.5",
                OpenMetrics,
            ),
            ("text/plain;version=0.0.4", Prometheus),
            (
                "text/plain;q=1,application/openmetrics-text;q=0.5",
                Prometheus,
            ),
            ("application/openmetrics-text;q=0", Prometheus),
            ("application/openmetrics-text;q=bogus", Prometheus),
            ("application/json", Prometheus),
            ("*/*", Prometheus),
            ("", Prometheus),
            (";;;,,,", Prometheus),
        ] {
            assert_eq!(negotiate(Some(accept)), want, "{accept}");
        }
    }
}
