//! Errors: of the server ([`HttpError`]) and of a request (`ApiError`, a
//! JSON body naming the parameter).

use std::any::Any;
use std::time::Duration;

use axum::Json;
use axum::extract::OriginalUri;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_protocol::MetricsError;
use serde::Serialize;

/// What can go wrong starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address could not be bound (in use, not permitted, not local).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not be started.
    #[error("cannot start the HTTP server: {0}")]
    Start(#[source] std::io::Error),
}

/// An error answer of the API: `{"error": code, "message": ..., "parameter": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// What kind of error (`bad_parameter`, `not_found`, `unsupported`,
    /// `overloaded`, ...).
    #[schema(value_type = String)]
    pub error: &'static str,
    /// What was wrong, for a person.
    pub message: String,
    /// The parameter (or part of the request) at fault, if any.
    pub parameter: Option<String>,
}

impl ApiError {
    /// 400, naming the parameter.
    pub fn bad_parameter(parameter: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_parameter",
            message: message.into(),
            parameter: Some(parameter.to_owned()),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "not_found",
            message: message.into(),
            parameter: None,
        }
    }

    /// 500 (an internal failure: a panicking backend call, ...).
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal",
            message: message.into(),
            parameter: None,
        }
    }

    /// 503: the server is at a limit for this kind of request; the
    /// answer says to retry after a second.
    pub fn unavailable(error: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error,
            message: message.into(),
            parameter: None,
        }
    }

    /// Maps a protocol error of a query whose main input is `parameter`:
    /// no data is 404, a refused argument 400 naming it, an unsupported
    /// query (a write-only backend) 501; anything else (an I/O failure in
    /// the backend, ...) is 500.
    pub fn from_metrics(e: MetricsError, parameter: &str) -> Self {
        let message = e.to_string();
        match e {
            MetricsError::NoData(_) | MetricsError::NotFound(_) => ApiError::not_found(message),
            MetricsError::InvalidArgument(_)
            | MetricsError::UnsupportedFormat(_)
            | MetricsError::IncompatibleUnits { .. } => ApiError::bad_parameter(parameter, message),
            MetricsError::Unsupported { .. } => ApiError {
                status: StatusCode::NOT_IMPLEMENTED,
                error: "unsupported",
                message,
                parameter: None,
            },
            _ => ApiError::internal(message),
        }
    }
}

/// Maps the error of a query over `window` about `subject` (the name or
/// operation): a refused argument is the window's fault when one was given
/// (longer than the backend keeps, ...), else the subject's.
pub(crate) fn query_error(
    e: MetricsError,
    subject: &str,
    window: Option<std::time::Duration>,
) -> ApiError {
    match e {
        MetricsError::InvalidArgument(_) if window.is_some() => {
            ApiError::bad_parameter("window", e.to_string())
        }
        e => ApiError::from_metrics(e, subject),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// What the error answers of the outer layers name: the limits they enforce.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorContext {
    max_body_bytes: usize,
    request_timeout: Duration,
}

impl From<&crate::HttpConfig> for ErrorContext {
    fn from(config: &crate::HttpConfig) -> Self {
        ErrorContext {
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
        }
    }
}

/// `405` for every route (all are GET and HEAD), as the API's JSON error
/// naming the method; the router adds `Allow`.
pub(crate) async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        error: "method_not_allowed",
        message: format!(
            "`{method}` is not allowed on `{}`: this server answers GET and HEAD only",
            uri.path()
        ),
        parameter: None,
    }
}

/// Gives every error answer that is not JSON yet (the body limit's 413,
/// the timeout's 408, an extractor's plain-text rejection) the API's JSON
/// shape, naming the limit; other headers are kept.
pub(crate) fn json_error_bodies<B>(
    context: ErrorContext,
) -> impl Fn(axum::http::Response<B>) -> Response + Clone + Send + Sync + 'static
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    move |res: axum::http::Response<B>| {
        let res = res.map(axum::body::Body::new);
        let status = res.status();
        if !(status.is_client_error() || status.is_server_error()) || is_json(&res) {
            return res;
        }
        let (error, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                format!(
                    "the request body is larger than this server accepts ({} bytes)",
                    context.max_body_bytes
                ),
            ),
            StatusCode::REQUEST_TIMEOUT => (
                "timeout",
                format!(
                    "the answer took longer than this server allows ({} ms)",
                    context.request_timeout.as_millis()
                ),
            ),
            StatusCode::BAD_REQUEST => ("bad_request", "malformed request".to_owned()),
            other => (
                "error",
                other
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_owned(),
            ),
        };
        let (mut parts, _body) = res.into_parts();
        for h in [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING] {
            parts.headers.remove(h);
        }
        let mut json = ApiError {
            status,
            error,
            message,
            parameter: None,
        }
        .into_response();
        parts.headers.extend(std::mem::take(json.headers_mut()));
        Response::from_parts(parts, json.into_body())
    }
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The answer when a handler panicked: 500 with a JSON error; the server
/// goes on.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    tracing::error!(panic = %what, "an HTTP handler panicked");
    ApiError::internal("the request handler failed").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_map_to_statuses_naming_the_parameter_when_it_is_at_fault() {
        let cases = [
            (
                MetricsError::NoData("x".into()),
                StatusCode::NOT_FOUND,
                None,
            ),
            (
                MetricsError::NotFound("x".into()),
                StatusCode::NOT_FOUND,
                None,
            ),
            (
                MetricsError::InvalidArgument("x".into()),
                StatusCode::BAD_REQUEST,
                Some("p"),
            ),
            (
                MetricsError::UnsupportedFormat("xml".into()),
                StatusCode::BAD_REQUEST,
                Some("p"),
            ),
            (
                MetricsError::IncompatibleUnits {
                    from: metrics_protocol::MetricUnit::Bytes,
                    to: metrics_protocol::MetricUnit::Seconds,
                },
                StatusCode::BAD_REQUEST,
                Some("p"),
            ),
            (
                MetricsError::Unsupported {
                    operation: "metric_summary",
                    backend: "statsd",
                },
                StatusCode::NOT_IMPLEMENTED,
                None,
            ),
            (
                MetricsError::io("export", std::io::Error::other("disk")),
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
            (
                MetricsError::UnknownTimer(metrics_protocol::TimerId(7)),
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
        ];
        for (e, status, parameter) in cases {
            let what = e.to_string();
            let api = ApiError::from_metrics(e, "p");
            assert_eq!(api.status, status, "{what}");
            assert_eq!(api.parameter.as_deref(), parameter, "{what}");
            assert_eq!(api.message, what);
        }
    }

    #[test]
    fn a_refused_argument_is_the_window_s_fault_when_a_window_was_given() {
        let e = || MetricsError::InvalidArgument("longer than kept".into());
        let with = query_error(e(), "name", Some(Duration::from_secs(60)));
        assert_eq!(with.parameter.as_deref(), Some("window"));
        let without = query_error(e(), "name", None);
        assert_eq!(without.parameter.as_deref(), Some("name"));
        let no_data = query_error(
            MetricsError::NoData("x".into()),
            "name",
            Some(Duration::ZERO),
        );
        assert_eq!(no_data.status, StatusCode::NOT_FOUND);
    }
}
