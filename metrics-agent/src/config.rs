//! The agent's configuration: defaults, then a JSON or TOML file, then
//! environment variables, each overriding the one before.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use metrics_memory::{MemoryConfig, WindowSpec};
use metrics_protocol::MetricsError;
use metrics_protocol::system::MetricsConfig;
use metrics_statsd::{StatsdConfig, TagFlavor};

use crate::aggregate::AggregationSpec;
use serde::{Deserialize, Serialize};

/// Which backends record what the application's libraries report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The in-memory backend only: local queries, dashboards, exports.
    #[default]
    Memory,
    /// A StatsD daemon only: queries answer `Unsupported`.
    Statsd,
    /// Both, through a `Fanout`: local queries and fleet export.
    Both,
}

impl BackendChoice {
    /// Whether the in-memory backend is used.
    pub fn memory(self) -> bool {
        matches!(self, BackendChoice::Memory | BackendChoice::Both)
    }

    /// Whether the StatsD backend is used.
    pub fn statsd(self) -> bool {
        matches!(self, BackendChoice::Statsd | BackendChoice::Both)
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Memory => "memory",
            BackendChoice::Statsd => "statsd",
            BackendChoice::Both => "both",
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendChoice {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(BackendChoice::Memory),
            "statsd" => Ok(BackendChoice::Statsd),
            "both" => Ok(BackendChoice::Both),
            _ => Err(MetricsError::config(
                "backend",
                s,
                "expected memory, statsd or both",
            )),
        }
    }
}

/// Settings of `get_system_health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Milliseconds one registered health check may take before it counts
    /// as unhealthy (default 2000).
    pub check_timeout_ms: u64,
    /// Seconds of history the error rate covers (default 300).
    pub error_rate_window_secs: u64,
    /// Error rate (0 to 1) above which the system is degraded (default 0.1).
    pub error_rate_degraded: f64,
    /// Error rate (0 to 1) above which the system is unhealthy (default 0.5).
    pub error_rate_unhealthy: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check_timeout_ms: 2000,
            error_rate_window_secs: 300,
            error_rate_degraded: 0.1,
            error_rate_unhealthy: 0.5,
        }
    }
}

impl HealthConfig {
    /// The per-check timeout.
    pub fn check_timeout(&self) -> Duration {
        Duration::from_millis(self.check_timeout_ms)
    }

    /// The error-rate window.
    pub fn error_rate_window(&self) -> Duration {
        Duration::from_secs(self.error_rate_window_secs)
    }
}

/// Where the results of a configured stream aggregation go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregationTarget {
    /// Recorded back into the system as gauges: every backend and stream.
    #[default]
    System,
    /// Published to `metrics_stream` subscribers only.
    Stream,
}

/// One stream aggregation started with the system, as the reference
/// metric stream configures it: a metric, a tumbling window by time
/// (`window`) or by count (`count`), named functions, default tags.
///
/// ```
/// use metrics_agent::AgentConfig;
/// let c = AgentConfig::from_toml_str(r#"
///     [[aggregations]]
///     metric = "http.request"
///     window = "10s"
///     functions = ["mean", "p95", "count"]
///     default_tags = { service = "api" }
/// "#)?;
/// let spec = c.aggregations[0].spec("aggregations[0]")?;
/// assert_eq!(spec.functions.len(), 3);
/// # Ok::<(), metrics_protocol::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregationConfig {
    /// The metric whose samples are aggregated (exact name).
    pub metric: String,
    /// Tumbling time windows: `10s`, `500ms`, `1m`. Exactly one of
    /// `window` and `count`.
    pub window: Option<String>,
    /// Tumbling batches of this many samples.
    pub count: Option<usize>,
    /// `sum`, `count`, `min`, `max`, `mean`, `last`, or a percentile `p95`.
    pub functions: Vec<String>,
    /// Tags every sample gets; a sample's own tag of the same key wins.
    pub default_tags: BTreeMap<String, String>,
    /// Where results go (default: back into the system).
    pub target: AggregationTarget,
}

impl AggregationConfig {
    /// The aggregation spec; errors name the field under `path`
    /// (`aggregations[0].window`) and the value.
    pub fn spec(&self, path: &str) -> Result<AggregationSpec, MetricsError> {
        let field = |f: &str| format!("{path}.{f}");
        let mut spec = match (&self.window, self.count) {
            (Some(w), None) => {
                let d = parse_duration(w)
                    .map_err(|reason| MetricsError::config(field("window"), w, reason))?;
                AggregationSpec::time(self.metric.clone(), d)
            }
            (None, Some(n)) => AggregationSpec::count(self.metric.clone(), n),
            (Some(w), Some(n)) => {
                return Err(MetricsError::config(
                    field("window"),
                    format!("{w} (and count = {n})"),
                    "give either window or count, not both",
                ));
            }
            (None, None) => {
                return Err(MetricsError::config(
                    field("window"),
                    "",
                    "give a time window (window = \"10s\") or a count (count = 100)",
                ));
            }
        };
        spec = spec
            .functions(&self.functions)
            .map_err(|e| prefixed(path, e))?;
        spec.default_tags = self.default_tags.clone();
        spec.validate().map_err(|e| prefixed(path, e))?;
        Ok(spec)
    }
}

/// Everything the agent is built from.
///
/// The top-level `collection_interval`, `retention_days` and
/// `export_endpoints` are the protocol's [`MetricsConfig`]
/// (see [`AgentConfig::metrics_config`]). Every field has a default;
/// unknown fields are an error that names them.
///
/// ```
/// use metrics_agent::{AgentConfig, BackendChoice};
/// let c = AgentConfig::from_toml_str(r#"
///     backend = "both"
///     collection_interval = 5
///     [statsd]
///     addr = "127.0.0.1:8125"
///     prefix = "api"
/// "#)?;
/// assert_eq!(c.backend, BackendChoice::Both);
/// assert_eq!(c.statsd.prefix, "api");
/// assert!(c.system_sampling); // the default
/// # Ok::<(), metrics_protocol::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Which backends to use (default: memory).
    pub backend: BackendChoice,
    /// Sample system resources into the backends every
    /// `collection_interval` (default: on).
    pub system_sampling: bool,
    /// Seconds between two resource samples (default 10, at least 0.2).
    pub collection_interval: f64,
    /// Days of history the in-memory backend keeps: the span of its
    /// coarsest window (default 1).
    pub retention_days: f64,
    /// Where `export_metrics_async` sends exports by default: file paths or
    /// `http://127.0.0.1:PORT/...` URLs.
    pub export_endpoints: Vec<String>,
    /// Values each `metrics_stream` subscriber may have waiting before the
    /// oldest are dropped (default 1024).
    pub stream_buffer: usize,
    /// Health checks and the error rate.
    pub health: HealthConfig,
    /// The StatsD backend (used when `backend` is statsd or both).
    pub statsd: StatsdConfig,
    /// The in-memory backend (used when `backend` is memory or both).
    pub memory: MemoryConfig,
    /// Stream aggregations started with the system.
    pub aggregations: Vec<AggregationConfig>,
    /// Where the main program serves HTTP (`127.0.0.1:9464` when unset;
    /// `off` for nowhere). `METRICS_LISTEN` and `--listen` override it.
    pub listen: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            backend: BackendChoice::Memory,
            system_sampling: true,
            collection_interval: 10.0,
            retention_days: 1.0,
            export_endpoints: Vec::new(),
            stream_buffer: 1024,
            health: HealthConfig::default(),
            statsd: StatsdConfig::default(),
            memory: MemoryConfig::default(),
            aggregations: Vec::new(),
            listen: None,
        }
    }
}

/// The environment variables [`AgentConfig::apply_env`] reads.
pub const ENV_VARS: [&str; 11] = [
    "METRICS_BACKEND",
    "METRICS_STATSD_ADDR",
    "METRICS_STATSD_FLAVOR",
    "METRICS_PREFIX",
    "METRICS_COMMON_TAGS",
    "METRICS_SYSTEM_SAMPLING",
    "METRICS_SAMPLE_INTERVAL",
    "METRICS_RETENTION_DAYS",
    "METRICS_EXPORT_ENDPOINTS",
    "METRICS_STREAM_BUFFER",
    "METRICS_HEALTH_CHECK_TIMEOUT",
];

/// The smallest collection interval: the system monitor's minimum.
const MIN_COLLECTION_INTERVAL: f64 = 0.2;

impl AgentConfig {
    /// Defaults, then the file at `path` (if any), then the environment
    /// read through `env` (see [`apply_env`](Self::apply_env)); validated.
    ///
    /// Pass `|k| std::env::var(k).ok()` for the process environment, or a
    /// map lookup in tests.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AgentConfig, MetricsError> {
        let mut c = match path {
            Some(p) => AgentConfig::from_file(p)?,
            None => AgentConfig::default(),
        };
        c.apply_env(env)?;
        c.validate()?;
        Ok(c)
    }

    /// Reads a file: `.json` as JSON, `.toml` as TOML. Not validated yet.
    pub fn from_file(path: &Path) -> Result<AgentConfig, MetricsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MetricsError::io(format!("reading {}", path.display()), e))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => AgentConfig::from_json_str(&text),
            Some(e) if e.eq_ignore_ascii_case("toml") => AgentConfig::from_toml_str(&text),
            _ => Err(MetricsError::config(
                "config file",
                path.display().to_string(),
                "must end in .json or .toml",
            )),
        }
    }

    /// Parses JSON. A value of the wrong type or an unknown field is a
    /// [`MetricsError::Config`] naming the field's path (`statsd.addr`) and
    /// the value.
    pub fn from_json_str(text: &str) -> Result<AgentConfig, MetricsError> {
        let doc: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| MetricsError::Parse(format!("config (JSON): {e}")))?;
        from_document(doc)
    }

    /// Parses TOML, with the same errors as [`from_json_str`](Self::from_json_str).
    pub fn from_toml_str(text: &str) -> Result<AgentConfig, MetricsError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| MetricsError::Parse(format!("config (TOML): {e}")))?;
        let doc = serde_json::to_value(table)
            .map_err(|e| MetricsError::Parse(format!("config (TOML): {e}")))?;
        from_document(doc)
    }

    /// Overrides fields from environment variables read through `env`
    /// (empty values count as unset):
    ///
    /// | variable | field |
    /// | --- | --- |
    /// | `METRICS_BACKEND` | `backend`: memory, statsd or both |
    /// | `METRICS_STATSD_ADDR` | `statsd.addr` |
    /// | `METRICS_STATSD_FLAVOR` | `statsd.flavor`: dogstatsd, etsy or none |
    /// | `METRICS_PREFIX` | `statsd.prefix` |
    /// | `METRICS_COMMON_TAGS` | `statsd.common_tags`, as `k=v,k2=v2` |
    /// | `METRICS_SYSTEM_SAMPLING` | `system_sampling`: on/off, true/false, 1/0 |
    /// | `METRICS_SAMPLE_INTERVAL` | `collection_interval`: `10`, `10s`, `500ms`, `2m` |
    /// | `METRICS_RETENTION_DAYS` | `retention_days` |
    /// | `METRICS_EXPORT_ENDPOINTS` | `export_endpoints`, comma-separated |
    /// | `METRICS_STREAM_BUFFER` | `stream_buffer` |
    /// | `METRICS_HEALTH_CHECK_TIMEOUT` | `health.check_timeout_ms`, as a duration |
    ///
    /// A bad value is a [`MetricsError::Config`] naming the variable and the value.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), MetricsError> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("METRICS_BACKEND") {
            self.backend = v.parse().map_err(|_| {
                MetricsError::config("METRICS_BACKEND", &v, "expected memory, statsd or both")
            })?;
        }
        if let Some(v) = get("METRICS_STATSD_ADDR") {
            self.statsd.addr = v.trim().to_owned();
        }
        if let Some(v) = get("METRICS_STATSD_FLAVOR") {
            self.statsd.flavor = v.parse::<TagFlavor>().map_err(|_| {
                MetricsError::config(
                    "METRICS_STATSD_FLAVOR",
                    &v,
                    "expected dogstatsd, etsy or none",
                )
            })?;
        }
        if let Some(v) = get("METRICS_PREFIX") {
            self.statsd.prefix = v.trim().to_owned();
        }
        if let Some(v) = get("METRICS_COMMON_TAGS") {
            self.statsd.common_tags = parse_tags("METRICS_COMMON_TAGS", &v)?;
        }
        if let Some(v) = get("METRICS_SYSTEM_SAMPLING") {
            self.system_sampling = match v.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => true,
                "off" | "false" | "0" | "no" => false,
                _ => {
                    return Err(MetricsError::config(
                        "METRICS_SYSTEM_SAMPLING",
                        &v,
                        "expected on or off",
                    ));
                }
            };
        }
        if let Some(v) = get("METRICS_SAMPLE_INTERVAL") {
            let d = parse_duration(&v)
                .map_err(|reason| MetricsError::config("METRICS_SAMPLE_INTERVAL", &v, reason))?;
            check_interval("METRICS_SAMPLE_INTERVAL", &v, d.as_secs_f64())?;
            self.collection_interval = d.as_secs_f64();
        }
        if let Some(v) = get("METRICS_RETENTION_DAYS") {
            let days: f64 = v.trim().parse().map_err(|_| {
                MetricsError::config("METRICS_RETENTION_DAYS", &v, "expected a number of days")
            })?;
            check_retention("METRICS_RETENTION_DAYS", &v, days)?;
            self.retention_days = days;
        }
        if let Some(v) = get("METRICS_EXPORT_ENDPOINTS") {
            self.export_endpoints = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("METRICS_STREAM_BUFFER") {
            self.stream_buffer = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                MetricsError::config(
                    "METRICS_STREAM_BUFFER",
                    &v,
                    "expected a whole number, at least 1",
                )
            })?;
        }
        if let Some(v) = get("METRICS_HEALTH_CHECK_TIMEOUT") {
            let d = parse_duration(&v).map_err(|reason| {
                MetricsError::config("METRICS_HEALTH_CHECK_TIMEOUT", &v, reason)
            })?;
            if d.is_zero() {
                return Err(MetricsError::config(
                    "METRICS_HEALTH_CHECK_TIMEOUT",
                    &v,
                    "must be longer than zero",
                ));
            }
            self.health.check_timeout_ms = d.as_millis().max(1) as u64;
        }
        Ok(())
    }

    /// Checks every field; the error names the field (as spelled in a
    /// config file) and its value.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let ci = self.collection_interval;
        check_interval("collection_interval", &ci.to_string(), ci)?;
        let rd = self.retention_days;
        check_retention("retention_days", &rd.to_string(), rd)?;
        self.metrics_config().validate()?;
        let h = &self.health;
        for (field, n) in [
            ("stream_buffer", self.stream_buffer as u64),
            ("health.check_timeout_ms", h.check_timeout_ms),
            ("health.error_rate_window_secs", h.error_rate_window_secs),
        ] {
            if n == 0 {
                return Err(MetricsError::config(field, "0", "must be at least 1"));
            }
        }
        for (field, v) in [
            ("health.error_rate_degraded", h.error_rate_degraded),
            ("health.error_rate_unhealthy", h.error_rate_unhealthy),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(MetricsError::config(
                    field,
                    v.to_string(),
                    "must be between 0 and 1",
                ));
            }
        }
        if self.backend.statsd() {
            self.statsd.validate().map_err(|e| prefixed("statsd", e))?;
        }
        if self.backend.memory() {
            self.memory_config()?;
        }
        for (i, a) in self.aggregations.iter().enumerate() {
            a.spec(&format!("aggregations[{i}]"))?;
        }
        Ok(())
    }

    /// The protocol's part of this configuration.
    pub fn metrics_config(&self) -> MetricsConfig {
        MetricsConfig {
            collection_interval: self.collection_interval,
            retention_days: self.retention_days,
            export_endpoints: self.export_endpoints.clone(),
        }
    }

    /// The collection interval as a duration.
    pub fn collection_interval_duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.collection_interval).unwrap_or(Duration::from_secs(10))
    }

    /// The in-memory backend's configuration, with the coarsest window
    /// stretched (or shrunk) to `retention_days`.
    pub fn memory_config(&self) -> Result<MemoryConfig, MetricsError> {
        let mut m = self.memory.clone();
        m.windows = windows_for_retention(&m.windows, self.retention_days)?;
        if m.cardinality_limit == 0 {
            return Err(MetricsError::config(
                "memory.cardinality_limit",
                "0",
                "must be at least 1",
            ));
        }
        Ok(m)
    }
}

/// Deserialises a parsed document, naming the field path and the value on error.
fn from_document(doc: serde_json::Value) -> Result<AgentConfig, MetricsError> {
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
            return MetricsError::config(full, value, inner);
        }
        let value = lookup(&doc, &path).map_or_else(String::new, render);
        MetricsError::config(path, value, inner)
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

/// `e` with its field path under `section` (`statsd.addr`), when it names a field.
pub(crate) fn prefixed(section: &str, e: MetricsError) -> MetricsError {
    match e {
        MetricsError::Config {
            field,
            value,
            reason,
        } => MetricsError::Config {
            field: format!("{section}.{field}"),
            value,
            reason,
        },
        other => other,
    }
}

fn check_interval(field: &str, raw: &str, secs: f64) -> Result<(), MetricsError> {
    if secs.is_finite() && secs >= MIN_COLLECTION_INTERVAL {
        Ok(())
    } else {
        Err(MetricsError::config(
            field,
            raw,
            format!("must be at least {MIN_COLLECTION_INTERVAL} seconds"),
        ))
    }
}

/// Retention must reach past the one-hour window (and stay within what the
/// memory backend's bins can hold).
fn check_retention(field: &str, raw: &str, days: f64) -> Result<(), MetricsError> {
    if days.is_finite() && days * 24.0 > 1.0 && days <= 3660.0 {
        Ok(())
    } else {
        Err(MetricsError::config(
            field,
            raw,
            "must be a number of days longer than one hour (0.05) and at most 3660",
        ))
    }
}

/// The memory windows with the last (coarsest) one spanning `days`: its
/// bin is kept when it fits 10000 bins, else widened in whole multiples.
fn windows_for_retention(
    windows: &[WindowSpec],
    days: f64,
) -> Result<Vec<WindowSpec>, MetricsError> {
    let bad = |reason: String| MetricsError::config("retention_days", days.to_string(), reason);
    let mut out = windows.to_vec();
    let Some(last) = out.pop() else {
        return Err(MetricsError::config(
            "memory.windows",
            "[]",
            "at least one window is needed",
        ));
    };
    let span_ms = (days * 86_400_000.0).round();
    if !(span_ms.is_finite() && span_ms >= 1.0) {
        return Err(bad("must be a positive number of days".into()));
    }
    let span_ms = span_ms as u128;
    let bin_ms = last.bin.as_millis().max(1);
    let factor = span_ms.div_ceil(bin_ms * 10_000).max(1);
    let bin = bin_ms * factor;
    let span = span_ms.div_ceil(bin) * bin;
    if let Some(prev) = out.last() {
        if span <= prev.span.as_millis() {
            return Err(bad(format!(
                "must reach past the {:?} window before it",
                prev.span
            )));
        }
    }
    out.push(WindowSpec::new(
        Duration::from_millis(span as u64),
        Duration::from_millis(bin as u64),
    ));
    Ok(out)
}

/// Parses `k=v,k2=v2`; `field` names the source in errors.
pub fn parse_tags(field: &str, s: &str) -> Result<BTreeMap<String, String>, MetricsError> {
    let mut tags = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| MetricsError::config(field, s, format!("`{pair}` is not k=v")))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(MetricsError::config(
                field,
                s,
                format!("`{pair}` has an empty key"),
            ));
        }
        tags.insert(k.to_owned(), v.to_owned());
    }
    Ok(tags)
}

/// Parses `10`, `10s`, `1.5s`, `500ms`, `2m` or `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{t}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn field_and_value(e: MetricsError) -> (String, String) {
        match e {
            MetricsError::Config { field, value, .. } => (field, value),
            other => panic!("expected a config error, got {other}"),
        }
    }

    fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("metrics-agent-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn nothing_configured_is_memory_with_sampling() {
        let c = AgentConfig::load(None, no_env).unwrap();
        assert_eq!(c.backend, BackendChoice::Memory);
        assert!(c.system_sampling);
        assert!(c.backend.memory() && !c.backend.statsd());
        assert_eq!(c, AgentConfig::default());
    }

    #[test]
    fn json_file() {
        let p = temp_file(
            "a.json",
            r#"{"backend": "statsd", "collection_interval": 2.5, "retention_days": 7,
                "export_endpoints": ["out.prom"],
                "statsd": {"addr": "127.0.0.1:9125", "prefix": "svc", "flavor": "etsy"}}"#,
        );
        let c = AgentConfig::load(Some(&p), no_env).unwrap();
        assert_eq!(c.backend, BackendChoice::Statsd);
        assert_eq!(c.collection_interval, 2.5);
        assert_eq!(c.statsd.addr, "127.0.0.1:9125");
        assert_eq!(c.statsd.flavor, TagFlavor::Etsy);
        assert_eq!(c.metrics_config().export_endpoints, vec!["out.prom"]);
        assert_eq!(c.metrics_config().retention_days, 7.0);
    }

    #[test]
    fn toml_file() {
        let p = temp_file(
            "a.toml",
            "backend = \"both\"\nsystem_sampling = false\n[statsd]\nprefix = \"api\"\n[statsd.common_tags]\nenv = \"prod\"\n[memory]\ncardinality_limit = 50\n",
        );
        let c = AgentConfig::load(Some(&p), no_env).unwrap();
        assert_eq!(c.backend, BackendChoice::Both);
        assert!(!c.system_sampling);
        assert_eq!(c.statsd.common_tags["env"], "prod");
        assert_eq!(c.memory.cardinality_limit, 50);
    }

    #[test]
    fn every_backend_choice_from_env() {
        for (v, want) in [
            ("memory", BackendChoice::Memory),
            ("statsd", BackendChoice::Statsd),
            ("BOTH", BackendChoice::Both),
        ] {
            let c = AgentConfig::load(None, env(&[("METRICS_BACKEND", v)])).unwrap();
            assert_eq!(c.backend, want);
        }
    }

    #[test]
    fn env_sets_every_field() {
        let c = AgentConfig::load(
            None,
            env(&[
                ("METRICS_BACKEND", "both"),
                ("METRICS_STATSD_ADDR", "127.0.0.1:9999"),
                ("METRICS_STATSD_FLAVOR", "none"),
                ("METRICS_PREFIX", "web"),
                ("METRICS_COMMON_TAGS", "env=prod, region=eu"),
                ("METRICS_SYSTEM_SAMPLING", "off"),
                ("METRICS_SAMPLE_INTERVAL", "500ms"),
                ("METRICS_RETENTION_DAYS", "3"),
                ("METRICS_EXPORT_ENDPOINTS", "a.json, http://127.0.0.1:1/x"),
                ("METRICS_STREAM_BUFFER", "16"),
                ("METRICS_HEALTH_CHECK_TIMEOUT", "250ms"),
            ]),
        )
        .unwrap();
        assert_eq!(c.backend, BackendChoice::Both);
        assert_eq!(c.statsd.addr, "127.0.0.1:9999");
        assert_eq!(c.statsd.flavor, TagFlavor::None);
        assert_eq!(c.statsd.prefix, "web");
        assert_eq!(c.statsd.common_tags.len(), 2);
        assert_eq!(c.statsd.common_tags["region"], "eu");
        assert!(!c.system_sampling);
        assert_eq!(c.collection_interval, 0.5);
        assert_eq!(c.retention_days, 3.0);
        assert_eq!(c.export_endpoints, vec!["a.json", "http://127.0.0.1:1/x"]);
        assert_eq!(c.stream_buffer, 16);
        assert_eq!(c.health.check_timeout_ms, 250);
        let m = c.memory_config().unwrap();
        assert_eq!(
            m.windows.last().unwrap().span,
            Duration::from_secs(3 * 86_400)
        );
    }

    #[test]
    fn env_overrides_file_which_overrides_defaults() {
        let p = temp_file(
            "b.json",
            r#"{"backend": "statsd", "statsd": {"prefix": "file", "addr": "127.0.0.1:7000"}}"#,
        );
        let c = AgentConfig::load(
            Some(&p),
            env(&[
                ("METRICS_BACKEND", "both"),
                ("METRICS_PREFIX", "env"),
                ("METRICS_STATSD_ADDR", " "),
            ]),
        )
        .unwrap();
        assert_eq!(c.backend, BackendChoice::Both, "env wins over the file");
        assert_eq!(c.statsd.prefix, "env");
        assert_eq!(
            c.statsd.addr, "127.0.0.1:7000",
            "an empty variable is unset"
        );
        assert_eq!(c.collection_interval, 10.0, "the default stays");
    }

    #[test]
    fn bad_env_values_name_variable_and_value() {
        for (k, v) in [
            ("METRICS_BACKEND", "memcache"),
            ("METRICS_STATSD_FLAVOR", "influx"),
            ("METRICS_COMMON_TAGS", "env"),
            ("METRICS_SYSTEM_SAMPLING", "sometimes"),
            ("METRICS_SAMPLE_INTERVAL", "10 parsecs"),
            ("METRICS_SAMPLE_INTERVAL", "50ms"),
            ("METRICS_RETENTION_DAYS", "-2"),
            ("METRICS_STREAM_BUFFER", "0"),
            ("METRICS_HEALTH_CHECK_TIMEOUT", "0s"),
        ] {
            let e = AgentConfig::load(None, env(&[(k, v)])).unwrap_err();
            let msg = e.to_string();
            let (field, value) = field_and_value(e);
            assert_eq!((field.as_str(), value.as_str()), (k, v), "{msg}");
            assert!(msg.contains(k) && msg.contains(v), "{msg}");
        }
    }

    #[test]
    fn aggregations_from_a_file_and_their_errors() {
        let c = AgentConfig::from_toml_str(
            "[[aggregations]]\nmetric = \"lat\"\nwindow = \"500ms\"\nfunctions = [\"p99\", \"max\"]\n\
             [[aggregations]]\nmetric = \"size\"\ncount = 10\nfunctions = [\"sum\"]\ntarget = \"stream\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.aggregations[1].target, AggregationTarget::Stream);
        let spec = c.aggregations[0].spec("aggregations[0]").unwrap();
        assert_eq!(spec.window, crate::Window::Time(Duration::from_millis(500)));
        let cases = [
            (
                r#"{"aggregations": [{"metric": "m", "functions": ["sum"]}]}"#,
                "aggregations[0].window",
                "",
            ),
            (
                r#"{"aggregations": [{"metric": "m", "window": "1s", "count": 5, "functions": ["sum"]}]}"#,
                "aggregations[0].window",
                "1s (and count = 5)",
            ),
            (
                r#"{"aggregations": [{"metric": "m", "window": "soon", "functions": ["sum"]}]}"#,
                "aggregations[0].window",
                "soon",
            ),
            (
                r#"{"aggregations": [{"metric": "m", "count": 3, "functions": ["median-ish"]}]}"#,
                "aggregations[0].functions",
                "median-ish",
            ),
            (
                r#"{"aggregations": [{"metric": "m", "count": 0, "functions": ["sum"]}]}"#,
                "aggregations[0].window",
                "0",
            ),
            (
                r#"{"aggregations": [{"metric": "", "count": 3, "functions": ["sum"]}]}"#,
                "aggregations[0].metric",
                "",
            ),
            (
                r#"{"aggregations": [{"metric": "m", "count": 3, "functions": []}]}"#,
                "aggregations[0].functions",
                "[]",
            ),
            (
                r#"{"aggregations": [{"metric": "m", "count": 3, "functions": ["sum"], "target": "disk"}]}"#,
                "aggregations[0].target",
                "disk",
            ),
        ];
        for (json, field, value) in cases {
            let e = AgentConfig::from_json_str(json)
                .and_then(|c| c.validate())
                .unwrap_err();
            assert_eq!(
                field_and_value(e),
                (field.to_owned(), value.to_owned()),
                "{json}"
            );
        }
    }

    #[test]
    fn bad_file_values_name_field_path_and_value() {
        let cases = [
            (r#"{"backend": "memcache"}"#, "backend", "memcache"),
            (
                r#"{"statsd": {"flavor": "influx"}}"#,
                "statsd.flavor",
                "influx",
            ),
            (
                r#"{"collection_interval": "often"}"#,
                "collection_interval",
                "often",
            ),
            (r#"{"statsd": {"adr": "x"}}"#, "statsd.adr", "x"),
            (r#"{"colection_interval": 5}"#, "colection_interval", "5"),
            (
                r#"{"collection_interval": 0.01}"#,
                "collection_interval",
                "0.01",
            ),
            (r#"{"retention_days": 0}"#, "retention_days", "0"),
            (
                r#"{"backend": "statsd", "statsd": {"max_datagram_bytes": 10}}"#,
                "statsd.max_datagram_bytes",
                "10",
            ),
            (
                r#"{"memory": {"cardinality_limit": 0}}"#,
                "memory.cardinality_limit",
                "0",
            ),
            (
                r#"{"health": {"error_rate_degraded": 2}}"#,
                "health.error_rate_degraded",
                "2",
            ),
            (r#"{"export_endpoints": [""]}"#, "export_endpoints", ""),
        ];
        for (json, field, value) in cases {
            let e = AgentConfig::from_json_str(json)
                .and_then(|c| c.validate().map(|()| c))
                .unwrap_err();
            let msg = e.to_string();
            assert_eq!(
                field_and_value(e),
                (field.to_owned(), value.to_owned()),
                "{json}: {msg}"
            );
        }
        let e = AgentConfig::from_toml_str("backend = 3").unwrap_err();
        assert_eq!(field_and_value(e), ("backend".into(), "3".into()));
    }

    #[test]
    fn unreadable_or_malformed_files_say_so() {
        let p = temp_file("c.yaml", "backend: memory");
        let (field, value) = field_and_value(AgentConfig::load(Some(&p), no_env).unwrap_err());
        assert_eq!(field, "config file");
        assert!(value.ends_with("c.yaml"));
        let p = temp_file("d.json", "{not json");
        assert!(matches!(
            AgentConfig::load(Some(&p), no_env),
            Err(MetricsError::Parse(_))
        ));
        let missing = std::env::temp_dir().join("metrics-agent-no-such-file.toml");
        assert!(matches!(
            AgentConfig::load(Some(&missing), no_env),
            Err(MetricsError::Io { .. })
        ));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
