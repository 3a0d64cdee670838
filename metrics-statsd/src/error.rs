//! The errors of building a [`StatsdMetrics`](crate::StatsdMetrics).

/// A setting that cannot be used: the field, the value given and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid StatsD setting `{field}` = `{value}`: {reason}")]
pub struct ConfigError {
    /// The field (`addr`, `max_datagram_bytes`, `flavor`, ...).
    pub field: &'static str,
    /// The value it was given.
    pub value: String,
    /// What it must be instead.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Why [`StatsdMetrics::new`](crate::StatsdMetrics::new) could not start a
/// backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is wrong; the error names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The socket or the sender thread could not be set up.
    #[error("{context}: {source}")]
    Io {
        /// What was being set up.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StartError::Io {
            context: context.into(),
            source,
        }
    }
}
