//! JSON and TOML configuration documents: errors name the field's path
//! (`statsd.addr`, `aggregations[0].batch`) and the value written there.

use std::path::Path;

use super::AgentConfig;
use crate::error::AgentError;

impl AgentConfig {
    /// Reads a file: `.json` as JSON, `.toml` as TOML. Not validated yet.
    /// An error in the document names the field and the file.
    pub fn from_file(path: &Path) -> Result<AgentConfig, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AgentError::io(format!("reading {}", path.display()), e))?;
        let read = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => AgentConfig::from_json_str(&text),
            Some(e) if e.eq_ignore_ascii_case("toml") => AgentConfig::from_toml_str(&text),
            _ => {
                return Err(AgentError::config(
                    "config file",
                    path.display().to_string(),
                    "must end in .json or .toml",
                ));
            }
        };
        read.map_err(|e| match e {
            AgentError::Config {
                field,
                value,
                reason,
            } => AgentError::config(field, value, format!("{reason} (in {})", path.display())),
            AgentError::Parse(m) => AgentError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses JSON. A value of the wrong type or an unknown field is an
    /// [`AgentError::Config`] naming the field's path (`statsd.addr`) and
    /// the value.
    pub fn from_json_str(text: &str) -> Result<AgentConfig, AgentError> {
        let doc: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| AgentError::Parse(format!("config (JSON): {e}")))?;
        from_document(doc)
    }

    /// Parses TOML, with the same errors as [`from_json_str`](Self::from_json_str).
    pub fn from_toml_str(text: &str) -> Result<AgentConfig, AgentError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| AgentError::Parse(format!("config (TOML): {e}")))?;
        let doc = serde_json::to_value(table)
            .map_err(|e| AgentError::Parse(format!("config (TOML): {e}")))?;
        from_document(doc)
    }
}

/// Deserialises a parsed document, naming the field path and the value on error.
fn from_document(doc: serde_json::Value) -> Result<AgentConfig, AgentError> {
    let de = doc.clone();
    serde_path_to_error::deserialize::<_, AgentConfig>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // `unknown field` errors point at the parent: name the field itself.
        if let Some(field) = inner
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            let full = if path == "." || path.is_empty() {
                field.to_owned()
            } else if path == field || path.ends_with(&format!(".{field}")) {
                path.clone()
            } else {
                format!("{path}.{field}")
            };
            let value = lookup(&doc, &full).map_or_else(String::new, render);
            return AgentError::config(full, value, inner);
        }
        let value = lookup(&doc, &path).map_or_else(String::new, render);
        AgentError::config(path, value, inner)
    })
}

/// The value at a dotted path (`statsd.addr`, `export_endpoints[0]`).
fn lookup<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = doc;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
