//! Errors: of the server ([`HttpError`]) and of a request (`ApiError`, a
//! JSON body naming the parameter).

use std::any::Any;

use axum::Json;
use axum::http::StatusCode;
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
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
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

    /// Maps a protocol error of a query whose main input is `parameter`:
    /// no data is 404, a refused argument 400 naming it, an unsupported
    /// query (a write-only backend) 501.
    pub fn from_metrics(e: MetricsError, parameter: &str) -> Self {
        let message = e.to_string();
        match e {
            MetricsError::NoData(_) | MetricsError::NotFound(_) => ApiError::not_found(message),
            MetricsError::InvalidArgument(_)
            | MetricsError::InvalidName { .. }
            | MetricsError::UnsupportedFormat(_)
            | MetricsError::Config { .. }
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
        (self.status, Json(&self)).into_response()
    }
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
