//! The one error type of every fallible call in the protocol.

use std::fmt;

use crate::types::{MetricUnit, TimerId};

/// Everything that can go wrong in a fallible protocol call.
///
/// Recording never returns this: a bad sample is dropped and counted
/// instead (see [`crate::backend::validate`]). Queries, timers by id,
/// exports and resource readings return it; the application crates have
/// error types of their own.
#[derive(Debug)]
#[non_exhaustive]
pub enum MetricsError {
    /// `stop_timer` was given an id that was never started, was already
    /// stopped, or was evicted from the bounded table of running timers.
    UnknownTimer(TimerId),

    /// An export format name that is not one of json, csv, prometheus, openmetrics.
    UnsupportedFormat(String),

    /// A query asked about a metric, timer or operation with no data
    /// (never recorded, or nothing inside the requested window).
    NoData(String),

    /// The backend cannot answer this call (for example a query on the
    /// write-only StatsD backend, or a stopped monitor).
    Unsupported {
        /// The call that was made.
        operation: &'static str,
        /// The backend that refused it.
        backend: &'static str,
    },

    /// Two units that cannot be converted into each other.
    IncompatibleUnits {
        /// Source unit.
        from: MetricUnit,
        /// Target unit.
        to: MetricUnit,
    },

    /// An argument outside the accepted range (an interval too short, a
    /// window longer than the retention, an unknown dashboard kind, ...).
    InvalidArgument(String),

    /// A resource that does not exist (a path, an interface, a process).
    NotFound(String),

    /// An I/O error in a backend (socket, file, HTTP endpoint).
    Io {
        /// What the backend was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MetricsError::*;
        match self {
            UnknownTimer(id) => write!(
                f,
                "unknown timer id {id} (never started, already stopped, or evicted)"
            ),
            UnsupportedFormat(s) => write!(
                f,
                "unsupported export format `{s}` (expected one of: json, csv, prometheus, openmetrics)"
            ),
            NoData(what) => write!(f, "no data for `{what}`"),
            Unsupported { operation, backend } => {
                write!(f, "`{operation}` is not supported by the {backend} backend")
            }
            IncompatibleUnits { from, to } => write!(f, "cannot convert {from} into {to}"),
            InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            NotFound(s) => write!(f, "not found: {s}"),
            Io { context, source } => write!(f, "I/O error in {context}: {source}"),
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl MetricsError {
    /// Shorthand for [`MetricsError::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MetricsError::Io {
            context: context.into(),
            source,
        }
    }
}
