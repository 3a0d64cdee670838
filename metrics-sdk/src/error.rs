//! [`AgentError`]: why the agent could not be configured, built or asked
//! to do something.
//!
//! The protocol's traits ([`MetricsSystem`](metrics_protocol::app::MetricsSystem),
//! exports, streams) answer with [`MetricsError`]; an [`AgentError`]
//! becomes one where they need it (a configuration error as
//! [`MetricsError::InvalidArgument`] carrying the same message).

use metrics_protocol::MetricsError;

/// What went wrong in the agent.
///
/// ```
/// use metrics_sdk::{AgentConfig, AgentError};
/// let e = AgentConfig::from_toml_str("stream_buffer = 0")
///     .and_then(|c| c.validate().map(|()| c))
///     .unwrap_err();
/// match &e {
///     AgentError::Config { field, value, .. } => assert_eq!((field.as_str(), value.as_str()), ("stream_buffer", "0")),
///     other => panic!("{other}"),
/// }
/// assert_eq!(e.to_string(), "invalid configuration: stream_buffer = `0`: must be at least 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A configuration value that cannot be used.
    #[error("invalid configuration: {field} = `{value}`: {reason}")]
    Config {
        /// The field, as spelled where it was set (`statsd.addr`,
        /// `aggregations[0].batch`, `METRICS_BACKEND`, `--listen`, ...).
        field: String,
        /// The value that was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A configuration document that is not JSON or TOML.
    #[error("parse error: {0}")]
    Parse(String),

    /// An I/O error: reading a configuration file, starting a thread.
    #[error("I/O error in {context}: {source}")]
    Io {
        /// What the agent was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An error of a backend or of the protocol (a query, a timer, a
    /// resource reading).
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

impl AgentError {
    /// A configuration error naming `field`, its `value` and the `reason`.
    pub fn config(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        AgentError::Config {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AgentError::Io {
            context: context.into(),
            source,
        }
    }

    /// The same error with its field under `section` (`statsd.addr`), when
    /// it names a field.
    pub fn prefixed(self, section: &str) -> Self {
        match self {
            AgentError::Config {
                field,
                value,
                reason,
            } => AgentError::Config {
                field: format!("{section}.{field}"),
                value,
                reason,
            },
            other => other,
        }
    }

    /// The field a configuration error names.
    pub fn field(&self) -> Option<&str> {
        match self {
            AgentError::Config { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<AgentError> for MetricsError {
    /// A configuration or parse error becomes [`MetricsError::InvalidArgument`]
    /// with the same message; an I/O error stays one.
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Metrics(e) => e,
            AgentError::Io { context, source } => MetricsError::Io { context, source },
            e @ (AgentError::Config { .. } | AgentError::Parse(_)) => {
                MetricsError::InvalidArgument(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_error_keeps_its_message_as_a_protocol_error() {
        let e = AgentError::config("batch", "0s", "too short").prefixed("aggregations[0]");
        assert_eq!(e.field(), Some("aggregations[0].batch"));
        let m = MetricsError::from(e);
        assert!(
            matches!(&m, MetricsError::InvalidArgument(s) if s == "invalid configuration: aggregations[0].batch = `0s`: too short"),
            "{m}"
        );
        let io = AgentError::io("reading a.toml", std::io::Error::other("gone"));
        assert!(matches!(MetricsError::from(io), MetricsError::Io { .. }));
        let back = AgentError::from(MetricsError::NoData("x".into()));
        assert!(matches!(
            MetricsError::from(back),
            MetricsError::NoData(x) if x == "x"
        ));
    }
}
