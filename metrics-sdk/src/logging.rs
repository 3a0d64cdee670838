//! What an application (the main program among them) logs on stderr:
//! `RUST_LOG`, else the configuration's `log`, else [`DEFAULT_LOG`]
//! (`info` for this project's crates, `warn` for the others). The history
//! writer's warnings (a store that is full, down or not answering) reach
//! the operator this way.

use crate::error::AgentError;
use tracing_subscriber::EnvFilter;

/// The directives used when neither `RUST_LOG` nor the configuration's
/// `log` says otherwise: `info` for this project's crates, `warn` for
/// every other.
pub const DEFAULT_LOG: &str = "warn,metrics_protocol=info,metrics_kit=info,metrics_memory=info,\
metrics_statsd=info,metrics_system=info,metrics_sdk=info,metrics_agent=info,metrics_bridge=info,\
metrics_http=info,metrics_store=info";

/// `directives` (from `source`: `RUST_LOG` or `log`) as a filter; an
/// error naming the source and the value when they do not parse.
pub fn parse(source: &str, directives: &str) -> Result<EnvFilter, AgentError> {
    EnvFilter::builder()
        .with_regex(false)
        .parse(directives)
        .map_err(|e| AgentError::config(source, directives, e.to_string()))
}

/// The filter for the main program's log: `rust_log` (the `RUST_LOG`
/// variable) when set and not blank, else `configured` (the
/// configuration's `log`), else [`DEFAULT_LOG`].
pub fn filter(rust_log: Option<&str>, configured: Option<&str>) -> Result<EnvFilter, AgentError> {
    match (rust_log.filter(|v| !v.trim().is_empty()), configured) {
        (Some(v), _) => parse("RUST_LOG", v),
        (None, Some(v)) => parse("log", v),
        (None, None) => parse("log", DEFAULT_LOG),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn our_crates_log_info_and_others_warn_by_default() {
        let f = filter(None, None).unwrap().to_string();
        for ours in [
            "metrics_store=info",
            "metrics_sdk=info",
            "metrics_agent=info",
            "metrics_http=info",
        ] {
            assert!(f.contains(ours), "{f}");
        }
        assert!(f.split(',').any(|d| d == "warn"), "{f}");
        assert_eq!(
            filter(None, None).unwrap().max_level_hint(),
            Some(LevelFilter::INFO)
        );
    }

    #[test]
    fn rust_log_wins_over_the_configuration_and_bad_values_are_named() {
        let hint = |r: Option<&str>, c: Option<&str>| filter(r, c).unwrap().max_level_hint();
        assert_eq!(hint(Some("debug"), Some("error")), Some(LevelFilter::DEBUG));
        assert_eq!(hint(None, Some("error")), Some(LevelFilter::ERROR));
        assert_eq!(hint(Some(" "), Some("error")), Some(LevelFilter::ERROR));
        let e = filter(Some("metrics_store=loud"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RUST_LOG") && e.contains("loud"), "{e}");
        let e = filter(None, Some("=")).unwrap_err().to_string();
        assert!(e.contains("log"), "{e}");
    }
}
