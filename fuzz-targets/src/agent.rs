//! The agent's configuration (JSON, TOML, the environment overlay) and its
//! export endpoints.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use metrics_sdk::AgentConfig;
use metrics_sdk::config::ENV_VARS;
use metrics_sdk::export::{Target, parse_endpoint};

use crate::shape;

#[derive(Debug, Arbitrary)]
struct ConfigInput {
    /// 0: JSON, 1: TOML, else the defaults.
    format: u8,
    text: String,
    /// `(index into ENV_VARS, value)`.
    env: Vec<(u8, String)>,
}

/// A configuration file and environment, whatever they hold: an error or a
/// configuration, never a panic; a configuration that validates gives a
/// memory configuration, and validating twice agrees.
pub fn config(data: &[u8]) {
    let Some(input) = shape::<ConfigInput>(data) else {
        return;
    };
    let parsed = match input.format {
        0 => AgentConfig::from_json_str(&input.text),
        1 => AgentConfig::from_toml_str(&input.text),
        _ => Ok(AgentConfig::default()),
    };
    let Ok(mut c) = parsed else { return };
    let first = c.validate().is_ok();
    assert_eq!(first, c.validate().is_ok(), "validate is deterministic");
    let env: BTreeMap<&str, String> = input
        .env
        .into_iter()
        .map(|(i, v)| (ENV_VARS[usize::from(i) % ENV_VARS.len()], v))
        .collect();
    let before = c.clone();
    match c.apply_env(|k| env.get(k).cloned()) {
        Ok(()) => {
            if env.is_empty() {
                assert_eq!(c, before, "an empty environment changes nothing");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if c.validate().is_ok() {
        let _ = c.metrics_config();
        let _ = c.collection_interval_duration();
        if c.backend.memory() {
            assert!(c.memory_config().is_ok(), "valid config, valid memory part");
        }
    }
}

/// An export endpoint: an error or a target and a format; a file target
/// names a path inside the endpoint text, an HTTP one is the whole text.
pub fn endpoint(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((target, _format)) = parse_endpoint(text) else {
        return;
    };
    match target {
        Target::File(p) => {
            let p = p.to_string_lossy();
            assert!(!p.trim().is_empty(), "an empty file path from {text:?}");
            assert!(text.contains(p.as_ref()), "path {p:?} not in {text:?}");
        }
        Target::Http(url) => {
            assert!(url.to_ascii_lowercase().starts_with("http://"));
            assert_eq!(url, text.trim());
        }
    }
}
