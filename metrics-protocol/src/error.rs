//! The one error type of every fallible call in the protocol.

use crate::types::{MetricUnit, TimerId};

/// Everything that can go wrong in a fallible protocol call.
///
/// Recording calls (`record_counter`, ...) never return this: a bad sample is
/// dropped and counted instead (see [`crate::validate`]). Queries, timers,
/// exports, configuration and resource readings return it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// `stop_timer` was given an id that was never started, was already
    /// stopped, or was evicted from the bounded table of running timers.
    #[error("unknown timer id {0} (never started, already stopped, or evicted)")]
    UnknownTimer(TimerId),

    /// An export format name that is not one of json, csv, prometheus, openmetrics.
    #[error(
        "unsupported export format `{0}` (expected one of: json, csv, prometheus, openmetrics)"
    )]
    UnsupportedFormat(String),

    /// A metric name that breaks the validation rules.
    #[error("invalid metric name `{name}`: {reason}")]
    InvalidName {
        /// The offending name (possibly truncated for display by the caller).
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A query asked about a metric, timer or operation with no data
    /// (never recorded, or nothing inside the requested window).
    #[error("no data for `{0}`")]
    NoData(String),

    /// The backend cannot answer this call (for example a query on the
    /// write-only StatsD backend, or a stopped monitor).
    #[error("`{operation}` is not supported by the {backend} backend")]
    Unsupported {
        /// The call that was made.
        operation: &'static str,
        /// The backend that refused it.
        backend: &'static str,
    },

    /// Two units that cannot be converted into each other.
    #[error("cannot convert {from} into {to}")]
    IncompatibleUnits {
        /// Source unit.
        from: MetricUnit,
        /// Target unit.
        to: MetricUnit,
    },

    /// A configuration field with a value that cannot be used.
    #[error("invalid configuration: {field} = `{value}`: {reason}")]
    Config {
        /// The field, as spelled in the configuration (`statsd.addr`, `METRICS_BACKEND`, ...).
        field: String,
        /// The value that was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An argument outside the accepted range (an interval too short, a
    /// window longer than the retention, an unknown dashboard kind, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A resource that does not exist (a path, an interface, a process).
    #[error("not found: {0}")]
    NotFound(String),

    /// An I/O error in a backend (socket, file, HTTP endpoint).
    #[error("I/O error in {context}: {source}")]
    Io {
        /// What the backend was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An export could not be produced (serialisation failure).
    #[error("export failed: {0}")]
    Export(String),

    /// A malformed input line or document (sample lines, configuration files).
    #[error("parse error: {0}")]
    Parse(String),
}

impl MetricsError {
    /// Shorthand for [`MetricsError::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MetricsError::Io {
            context: context.into(),
            source,
        }
    }

    /// Shorthand for [`MetricsError::Config`].
    pub fn config(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        MetricsError::Config {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}
