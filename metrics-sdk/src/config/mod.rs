//! The agent's configuration: defaults, then a JSON or TOML file, then
//! environment variables, each overriding the one before.
//!
//! - this module: the schema ([`AgentConfig`] and its sections), defaults,
//!   loading in order, and validation;
//! - `file`: JSON and TOML documents, with errors naming the field path;
//! - `env`: the `METRICS_*` variables, with errors naming the variable.
//!
//! Defaults and limits shared with the protocol's
//! [`MetricsConfig`] are defined there once. Every error is an
//! [`AgentError::Config`] naming the field (as spelled in a file, or the
//! variable), the value and why.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exposition::ExpositionConfig;
use metrics_memory::{Clock, ConfigError, MemoryConfig, MemoryMetrics};
use metrics_protocol::app::MetricsConfig;
use metrics_statsd::{StartError, StatsdConfig, StatsdMetrics};

use serde::{Deserialize, Serialize};

use crate::aggregate::AggregationSpec;
use crate::error::AgentError;

mod env;
mod file;

pub use env::{ENV_VARS, parse_duration, parse_tags};

/// Which backends record what the application's libraries report.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum BackendChoice {
    /// The in-memory backend only: local queries, dashboards, exports.
    #[default]
    Memory,
    /// A StatsD daemon only: queries answer `Unsupported`.
    Statsd,
    /// Both: local queries and fleet export (the agent's fan-out layer
    /// hands every measurement to each).
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
        self.into()
    }
}

impl FromStr for BackendChoice {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(BackendChoice::Memory),
            "statsd" => Ok(BackendChoice::Statsd),
            "both" => Ok(BackendChoice::Both),
            _ => Err(AgentError::config(
                "backend",
                s,
                "expected memory, statsd or both",
            )),
        }
    }
}

/// Settings of `system_health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Milliseconds one registered health check may take before it counts
    /// as unhealthy (default 2000; or a duration, `"2s"`).
    #[serde(deserialize_with = "metrics_kit::duration::millis")]
    pub check_timeout_ms: u64,
    /// Seconds of history the error rate covers (default 300; or a
    /// duration, `"5m"`).
    #[serde(deserialize_with = "metrics_kit::duration::secs")]
    pub error_rate_window_secs: u64,
    /// Error rate (0 to 1) above which the agent is degraded (default 0.1).
    pub error_rate_degraded: f64,
    /// Error rate (0 to 1) above which the agent is unhealthy (default 0.5).
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
    /// Recorded back into the metrics system (the agent itself) as gauges:
    /// every backend and stream.
    #[default]
    System,
    /// Published to `metrics_stream` subscribers only.
    Stream,
}

/// One stream aggregation started with the agent, as the reference
/// metric stream configures it: a metric, tumbling batches by time
/// (`batch`) or by count (`count`), named functions, default tags.
///
/// ```
/// use metrics_sdk::AgentConfig;
/// let c = AgentConfig::from_toml_str(r#"
///     [[aggregations]]
///     metric = "http.request"
///     batch = "10s"
///     functions = ["mean", "p95", "count"]
///     default_tags = { service = "api" }
/// "#)?;
/// let spec = c.aggregations[0].spec("aggregations[0]")?;
/// assert_eq!(spec.functions.len(), 3);
/// # Ok::<(), metrics_sdk::AgentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregationConfig {
    /// The metric whose samples are aggregated (exact name).
    pub metric: String,
    /// Tumbling batches by time: `10s`, `500ms`, `1m`. Exactly one of
    /// `batch` and `count`. Also read as `window`, its former name.
    #[serde(alias = "window")]
    pub batch: Option<String>,
    /// Tumbling batches of this many samples.
    pub count: Option<usize>,
    /// `sum`, `count`, `min`, `max`, `mean`, `last`, or a percentile `p95`.
    pub functions: Vec<String>,
    /// Tags every sample gets; a sample's own tag of the same key wins.
    pub default_tags: BTreeMap<String, String>,
    /// Where results go (default: back into the agent).
    pub target: AggregationTarget,
}

impl AggregationConfig {
    /// The aggregation spec; errors name the field under `path`
    /// (`aggregations[0].batch`) and the value.
    pub fn spec(&self, path: &str) -> Result<AggregationSpec, AgentError> {
        let field = |f: &str| format!("{path}.{f}");
        let mut spec = match (&self.batch, self.count) {
            (Some(b), None) => {
                let d = parse_duration(b)
                    .map_err(|reason| AgentError::config(field("batch"), b, reason))?;
                AggregationSpec::time(self.metric.clone(), d)
            }
            (None, Some(n)) => AggregationSpec::count(self.metric.clone(), n),
            (Some(b), Some(n)) => {
                return Err(AgentError::config(
                    field("batch"),
                    format!("{b} (and count = {n})"),
                    "give either batch or count, not both",
                ));
            }
            (None, None) => {
                return Err(AgentError::config(
                    field("batch"),
                    "",
                    "give a time batch (batch = \"10s\") or a count (count = 100)",
                ));
            }
        };
        spec = spec
            .functions(&self.functions)
            .map_err(|e| e.prefixed(path))?;
        spec.default_tags = self.default_tags.clone();
        spec.validate().map_err(|e| e.prefixed(path))?;
        Ok(spec)
    }
}

/// The `[remote_write]` table: pushes to a Prometheus remote write
/// receiver (Prometheus with `--web.enable-remote-write-receiver`, Mimir,
/// Thanos Receive, VictoriaMetrics), read from the memory backend. Off
/// while `url` is unset (or `off`); needs the `remote-write` feature of
/// metrics-sdk.
///
/// ```
/// use metrics_sdk::AgentConfig;
/// let c = AgentConfig::from_toml_str(r#"
///     [remote_write]
///     url = "http://prometheus.internal:9090/api/v1/write"
///     interval = "30s"
///     headers = { Authorization = "Bearer s3cr3t" }
/// "#)?;
/// assert_eq!(c.remote_write.interval, 30.0);
/// assert_eq!(c.remote_write.queue, 120); // the default
/// # Ok::<(), metrics_sdk::AgentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteSettings {
    /// The receiver's write endpoint, `http://HOST:PORT/api/v1/write`
    /// (`/api/v1/push` for Mimir); unset or `off`: no pushes.
    /// `METRICS_REMOTE_WRITE_URL` overrides it.
    pub url: Option<String>,
    /// Seconds between two pushes (default 15; or a duration, `"30s"`).
    #[serde(deserialize_with = "metrics_kit::duration::secs_f64")]
    pub interval: f64,
    /// Seconds one request may take before it is retried (default 10; or
    /// a duration, `"5s"`).
    #[serde(deserialize_with = "metrics_kit::duration::secs_f64")]
    pub timeout: f64,
    /// Requests waiting for the receiver at most, the oldest dropped (and
    /// counted) beyond it (default 120).
    pub queue: usize,
    /// Headers every push carries: `Authorization` for a receiver behind
    /// authentication, `X-Scope-OrgID` for a Mimir tenant.
    pub headers: BTreeMap<String, String>,
}

impl Default for RemoteWriteSettings {
    fn default() -> Self {
        RemoteWriteSettings {
            url: None,
            interval: 15.0,
            timeout: 10.0,
            queue: 120,
            headers: BTreeMap::new(),
        }
    }
}

impl RemoteWriteSettings {
    /// The receiver's URL, when pushes are asked for.
    pub fn enabled_url(&self) -> Option<&str> {
        self.url.as_deref().filter(|u| !is_off(u))
    }

    /// Checks the settings (a URL without the `remote-write` feature is
    /// refused); errors name the field under `remote_write.`.
    fn check(&self) -> Result<(), AgentError> {
        for (field, secs) in [("interval", self.interval), ("timeout", self.timeout)] {
            if !(secs.is_finite() && (0.001..=86_400.0).contains(&secs)) {
                return Err(AgentError::config(
                    format!("remote_write.{field}"),
                    secs.to_string(),
                    "must be a duration from 1 ms to a day",
                ));
            }
        }
        if self.queue == 0 {
            return Err(AgentError::config(
                "remote_write.queue",
                "0",
                "must be at least 1",
            ));
        }
        let Some(url) = self.enabled_url() else {
            return Ok(());
        };
        #[cfg(feature = "remote-write")]
        return self.push_config(url).check().map_err(|e| {
            AgentError::config(format!("remote_write.{}", e.field), e.value, e.reason)
        });
        #[cfg(not(feature = "remote-write"))]
        Err(AgentError::config(
            "remote_write.url",
            url,
            "this build cannot push (the `remote-write` feature of metrics-sdk)",
        ))
    }

    /// The pusher's settings, pushing to `url`.
    #[cfg(feature = "remote-write")]
    pub fn push_config(&self, url: &str) -> metrics_push::RemoteWriteConfig {
        let mut c = metrics_push::RemoteWriteConfig::new(url);
        c.interval = Duration::try_from_secs_f64(self.interval).unwrap_or(c.interval);
        c.timeout = Duration::try_from_secs_f64(self.timeout).unwrap_or(c.timeout);
        c.queue = self.queue;
        c.headers = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        c
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
/// use metrics_sdk::{AgentConfig, BackendChoice};
/// let c = AgentConfig::from_toml_str(r#"
///     backend = "both"
///     collection_interval = 5
///     [statsd]
///     addr = "127.0.0.1:8125"
///     prefix = "api"
/// "#)?;
/// assert_eq!(c.backend, BackendChoice::Both);
/// assert_eq!(c.statsd.prefix, "api");
/// assert!(c.system_polling); // the default
/// # Ok::<(), metrics_sdk::AgentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Which backends to use (default: memory).
    pub backend: BackendChoice,
    /// Poll host resources (`metrics-system`) into the backends every
    /// `collection_interval` (default: on). Also read as `system_sampling`,
    /// its former name.
    #[serde(alias = "system_sampling")]
    pub system_polling: bool,
    /// Seconds between two resource polls, and between two asynchronous
    /// collections (default 10, at least 0.2; or a duration, `"500ms"`).
    #[serde(deserialize_with = "metrics_kit::duration::secs_f64")]
    pub collection_interval: f64,
    /// Days of history the in-memory backend keeps: the span of its
    /// coarsest window (default 1; or a duration, `"36h"`, `"7d"`).
    #[serde(deserialize_with = "metrics_kit::duration::days_f64")]
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
    /// Buckets and format of distributions in the Prometheus and
    /// OpenMetrics text of `/metrics` and the exports (the `[exposition]`
    /// table).
    pub exposition: ExpositionConfig,
    /// Stream aggregations started with the agent.
    pub aggregations: Vec<AggregationConfig>,
    /// Where the main program serves HTTP (`127.0.0.1:9464` when unset;
    /// `off` for nowhere). `METRICS_LISTEN` and `--listen` override it.
    pub listen: Option<String>,
    /// Where the in-memory backend's history is kept across restarts:
    /// `sqlite://PATH`, a plain path, `postgres://...`, or `off`
    /// (`metrics-data/` under the working directory when unset).
    /// `METRICS_STORE` and `--store` override it.
    pub store: Option<String>,
    /// Retention of the store's rings, finest first, each `BIN:KEEP`
    /// (`["10s:6h", "5m:7d", "1h:90d"]`, the default when empty): bins
    /// older than a ring's `KEEP` merge into the next ring's, and the last
    /// ring's are deleted.
    pub store_retention: Vec<String>,
    /// How long a query of the HTTP API waits for the store before it
    /// answers from memory alone, saying so (default 1000 ms; or a
    /// duration, `"1s"`).
    #[serde(deserialize_with = "metrics_kit::duration::millis")]
    pub store_query_timeout_ms: u64,
    /// What the application logs on stderr, as `RUST_LOG` directives
    /// (`info`, `warn,metrics_store=debug`); `RUST_LOG` overrides it. By
    /// default `info` for this project's crates and `warn` for the others
    /// (`logging::DEFAULT_LOG`). Checked here, applied by the application
    /// through `logging::filter` (the `logging` feature; without it the
    /// setting is refused).
    pub log: Option<String>,
    /// Pushes to a Prometheus remote write receiver (the `[remote_write]`
    /// table; off by default).
    pub remote_write: RemoteWriteSettings,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            backend: BackendChoice::Memory,
            system_polling: true,
            collection_interval: MetricsConfig::DEFAULT_COLLECTION_INTERVAL,
            retention_days: MetricsConfig::DEFAULT_RETENTION_DAYS,
            export_endpoints: Vec::new(),
            stream_buffer: 1024,
            health: HealthConfig::default(),
            statsd: StatsdConfig::default(),
            memory: MemoryConfig::default(),
            exposition: ExpositionConfig::default(),
            aggregations: Vec::new(),
            listen: None,
            store: None,
            store_retention: Vec::new(),
            store_query_timeout_ms: 1000,
            log: None,
            remote_write: RemoteWriteSettings::default(),
        }
    }
}

impl AgentConfig {
    /// Defaults, then the file at `path` (if any), then the environment
    /// read through `env` (see [`apply_env`](Self::apply_env)); validated.
    ///
    /// Pass `|k| std::env::var(k).ok()` for the process environment, or a
    /// map lookup in tests.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AgentConfig, AgentError> {
        let mut c = match path {
            Some(p) => AgentConfig::from_file(p)?,
            None => AgentConfig::default(),
        };
        c.apply_env(env)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every field; the error names the field (as spelled in a
    /// config file) and its value.
    pub fn validate(&self) -> Result<(), AgentError> {
        check_collection_interval(
            "collection_interval",
            &self.collection_interval.to_string(),
            self.collection_interval,
        )?;
        check_retention_days(
            "retention_days",
            &self.retention_days.to_string(),
            self.retention_days,
        )?;
        self.exposition
            .check()
            .map_err(|e| AgentError::config(e.field, e.value, e.reason))?;
        for e in &self.export_endpoints {
            if e.trim().is_empty() {
                return Err(AgentError::config(
                    "export_endpoints",
                    e,
                    "an endpoint must not be empty",
                ));
            }
            if !cfg!(feature = "push")
                && matches!(
                    crate::export::parse_endpoint(e),
                    Ok((crate::export::Target::Http(_), _))
                )
            {
                return Err(AgentError::config(
                    "export_endpoints",
                    e,
                    "this build cannot POST exports (the `push` feature of metrics-sdk); use a file endpoint",
                ));
            }
        }
        let h = &self.health;
        for (field, n) in [
            ("stream_buffer", self.stream_buffer as u64),
            ("health.check_timeout_ms", h.check_timeout_ms),
            ("health.error_rate_window_secs", h.error_rate_window_secs),
            ("store_query_timeout_ms", self.store_query_timeout_ms),
        ] {
            if n == 0 {
                return Err(AgentError::config(field, "0", "must be at least 1"));
            }
        }
        for (field, v) in [
            ("health.error_rate_degraded", h.error_rate_degraded),
            ("health.error_rate_unhealthy", h.error_rate_unhealthy),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(AgentError::config(
                    field,
                    v.to_string(),
                    "must be between 0 and 1",
                ));
            }
        }
        if self.backend.statsd() {
            env::check_addr("statsd.addr", &self.statsd.addr)?;
            self.statsd.validate().map_err(statsd_setting)?;
        }
        if self.backend.memory() {
            self.memory_config()?;
        }
        for (i, a) in self.aggregations.iter().enumerate() {
            a.spec(&format!("aggregations[{i}]"))?;
        }
        self.check_store()?;
        self.remote_write.check()?;
        if let Some(url) = self.remote_write.enabled_url()
            && !self.backend.memory()
        {
            return Err(AgentError::config(
                "remote_write.url",
                url,
                "pushes read the memory backend: choose backend memory or both",
            ));
        }
        if let Some(log) = &self.log {
            #[cfg(feature = "logging")]
            crate::logging::parse("log", log)?;
            #[cfg(not(feature = "logging"))]
            return Err(AgentError::config(
                "log",
                log,
                "this build sets up no log filter (the `logging` feature of metrics-sdk); configure tracing in the application",
            ));
        }
        Ok(())
    }

    /// [`store_query_timeout_ms`](Self::store_query_timeout_ms) as a
    /// duration.
    pub fn store_query_timeout(&self) -> Duration {
        Duration::from_millis(self.store_query_timeout_ms)
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
    pub fn memory_config(&self) -> Result<MemoryConfig, AgentError> {
        let mut m = self.memory.clone();
        m = m
            .with_retention_days(self.retention_days)
            .map_err(memory_setting)?;
        if m.cardinality_limit == 0 {
            return Err(AgentError::config(
                "memory.cardinality_limit",
                "0",
                "must be at least 1",
            ));
        }
        Ok(m)
    }
}

impl AgentConfig {
    /// Checks `store` and `store_retention`.
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    fn check_store(&self) -> Result<(), AgentError> {
        if let Some(s) = &self.store {
            store_url("store", s)?;
        }
        self.store_rings().map(drop)
    }

    /// Without the `store` feature, a store other than `off` and any
    /// retention are refused, naming the field.
    #[cfg(not(any(feature = "store-sqlite", feature = "store-postgres")))]
    fn check_store(&self) -> Result<(), AgentError> {
        const WHY: &str = "this build keeps no history (the `store` feature of metrics-sdk)";
        if let Some(s) = self.store.as_deref().filter(|s| !is_off(s)) {
            return Err(AgentError::config("store", s, WHY));
        }
        if let Some(r) = self.store_retention.first() {
            return Err(AgentError::config("store_retention[0]", r, WHY));
        }
        Ok(())
    }

    /// The store's rings from `store_retention` (the store's defaults when
    /// empty); an error names the entry and says why.
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    pub fn store_rings(&self) -> Result<Vec<metrics_store::StoreRing>, AgentError> {
        if self.store_retention.is_empty() {
            return Ok(metrics_store::StoreRing::defaults());
        }
        let mut rings: Vec<metrics_store::StoreRing> = Vec::new();
        for (i, entry) in self.store_retention.iter().enumerate() {
            let field = format!("store_retention[{i}]");
            let bad = |reason: &str| AgentError::config(&field, entry, reason);
            let (bin, keep) = entry
                .split_once(':')
                .ok_or_else(|| bad("expected BIN:KEEP, such as 10s:6h"))?;
            let bin = parse_duration(bin).map_err(|r| bad(&r))?;
            let keep = parse_duration(keep).map_err(|r| bad(&r))?;
            if bin.as_millis() == 0 || keep < bin {
                return Err(bad(
                    "the bin must be positive and kept at least its own width",
                ));
            }
            if let Some(prev) = rings.last()
                && (bin <= prev.bin
                    || bin.as_millis() % prev.bin.as_millis() != 0
                    || keep <= prev.keep)
            {
                return Err(bad(
                    "each ring needs a wider bin, a multiple of the previous one, kept longer",
                ));
            }
            rings.push(metrics_store::StoreRing { bin, keep });
        }
        Ok(rings)
    }
}

/// Whether a `listen` or `store` value asks for nothing (`off`).
pub(crate) fn is_off(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("off")
}

/// The listen address `value` (from `source`: `listen`, `METRICS_LISTEN`,
/// `--listen`): `None` for `off`; a configuration error naming both when it
/// is no address.
pub fn listen_addr(source: &str, value: &str) -> Result<Option<SocketAddr>, AgentError> {
    if is_off(value) {
        return Ok(None);
    }
    value
        .trim()
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(Some)
        .ok_or_else(|| {
            AgentError::config(
                source,
                value,
                "expected an address such as 127.0.0.1:9464, or off",
            )
        })
}

/// The store URL `value` (from `source`: `store`, `METRICS_STORE`,
/// `--store`); a configuration error naming both when it does not parse.
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
pub fn store_url(source: &str, value: &str) -> Result<metrics_store::StoreUrl, AgentError> {
    value
        .parse()
        .map_err(|e: metrics_store::StoreError| match e {
            // The URL as the store shows it: without its password.
            metrics_store::StoreError::Url { url, reason } => {
                AgentError::config(source, url, reason)
            }
            e => AgentError::config(source, value, e.to_string()),
        })
}

/// Checks `collection_interval` (seconds) against the protocol's limit;
/// `field` and `raw` name what the user wrote.
pub(crate) fn check_collection_interval(
    field: &str,
    raw: &str,
    secs: f64,
) -> Result<(), AgentError> {
    if secs.is_finite() && secs >= MetricsConfig::MIN_COLLECTION_INTERVAL {
        Ok(())
    } else {
        Err(AgentError::config(
            field,
            raw,
            format!(
                "must be a number of seconds, at least {}",
                MetricsConfig::MIN_COLLECTION_INTERVAL
            ),
        ))
    }
}

/// Checks `retention_days` against the protocol's limits; `field` and
/// `raw` name what the user wrote.
pub(crate) fn check_retention_days(field: &str, raw: &str, days: f64) -> Result<(), AgentError> {
    if days.is_finite()
        && days > MetricsConfig::MIN_RETENTION_DAYS
        && days <= MetricsConfig::MAX_RETENTION_DAYS
    {
        Ok(())
    } else {
        Err(AgentError::config(
            field,
            raw,
            format!(
                "must be a number of days longer than one hour (1/24) and at most {}",
                MetricsConfig::MAX_RETENTION_DAYS
            ),
        ))
    }
}

/// A StatsD setting that cannot be used, named under `statsd.`.
fn statsd_setting(e: metrics_statsd::ConfigError) -> AgentError {
    AgentError::config(format!("statsd.{}", e.field), e.value, e.reason)
}

/// The StatsD backend of `config`, started.
pub(crate) fn statsd_backend(config: StatsdConfig) -> Result<StatsdMetrics, AgentError> {
    StatsdMetrics::new(config).map_err(|e| match e {
        StartError::Config(c) => statsd_setting(c),
        StartError::Io { context, source } => AgentError::io(format!("StatsD: {context}"), source),
        other => AgentError::config("statsd", "", other.to_string()),
    })
}

/// A memory setting that cannot be used, named under `memory.` (but
/// `retention_days`, which is the agent's own).
fn memory_setting(e: ConfigError) -> AgentError {
    let field = match e.field.as_str() {
        "retention_days" => e.field,
        f if f.starts_with("memory.") => e.field,
        f => format!("memory.{f}"),
    };
    AgentError::config(field, e.value, e.reason)
}

/// The memory backend of `config`, on `clock`.
pub(crate) fn memory_backend(
    config: MemoryConfig,
    clock: Arc<dyn Clock>,
) -> Result<MemoryMetrics, AgentError> {
    MemoryMetrics::with_clock(config, clock).map_err(memory_setting)
}

#[cfg(test)]
mod tests;
