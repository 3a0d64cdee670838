//! The `METRICS_*` environment variables: errors name the variable and the
//! value it holds.

use std::collections::BTreeMap;

use metrics_kit::duration::{Unit, parse_in};

use metrics_statsd::TagFlavor;

pub use metrics_kit::duration::parse as parse_duration;

use super::{AgentConfig, check_collection_interval, check_retention_days};
use crate::error::AgentError;

/// The environment variables [`AgentConfig::apply_env`] reads, the former
/// names of two of them last.
pub const ENV_VARS: [&str; 18] = [
    "METRICS_BACKEND",
    "METRICS_STATSD_ADDR",
    "METRICS_STATSD_FLAVOR",
    "METRICS_PREFIX",
    "METRICS_COMMON_TAGS",
    "METRICS_SYSTEM_POLLING",
    "METRICS_COLLECTION_INTERVAL",
    "METRICS_RETENTION_DAYS",
    "METRICS_EXPORT_ENDPOINTS",
    "METRICS_STREAM_BUFFER",
    "METRICS_HEALTH_CHECK_TIMEOUT",
    "METRICS_REMOTE_WRITE_URL",
    "METRICS_REMOTE_WRITE_INTERVAL",
    "METRICS_REMOTE_WRITE_TIMEOUT",
    "METRICS_REMOTE_WRITE_QUEUE",
    "METRICS_REMOTE_WRITE_HEADERS",
    "METRICS_SYSTEM_SAMPLING",
    "METRICS_SAMPLE_INTERVAL",
];

impl AgentConfig {
    /// Overrides fields from environment variables read through `env`. An
    /// unset variable leaves its field alone; a variable set to an empty
    /// value is an error (unset it to keep the default):
    ///
    /// | variable | field |
    /// | --- | --- |
    /// | `METRICS_BACKEND` | `backend`: memory, statsd or both |
    /// | `METRICS_STATSD_ADDR` | `statsd.addr` |
    /// | `METRICS_STATSD_FLAVOR` | `statsd.flavor`: dogstatsd, etsy or none |
    /// | `METRICS_PREFIX` | `statsd.prefix` |
    /// | `METRICS_COMMON_TAGS` | `statsd.common_tags`, as `k=v,k2=v2` |
    /// | `METRICS_SYSTEM_POLLING` | `system_polling`: on/off, true/false, 1/0 |
    /// | `METRICS_COLLECTION_INTERVAL` | `collection_interval`: `10`, `10s`, `500ms`, `2m` |
    /// | `METRICS_RETENTION_DAYS` | `retention_days`: `7`, `36h`, `7d` |
    /// | `METRICS_EXPORT_ENDPOINTS` | `export_endpoints`, comma-separated |
    /// | `METRICS_STREAM_BUFFER` | `stream_buffer` |
    /// | `METRICS_HEALTH_CHECK_TIMEOUT` | `health.check_timeout_ms`, as a duration |
    /// | `METRICS_REMOTE_WRITE_URL` | `remote_write.url` (`off` for none) |
    /// | `METRICS_REMOTE_WRITE_INTERVAL` | `remote_write.interval`: `15s`, `1m` |
    /// | `METRICS_REMOTE_WRITE_TIMEOUT` | `remote_write.timeout`: `10s` |
    /// | `METRICS_REMOTE_WRITE_QUEUE` | `remote_write.queue` |
    /// | `METRICS_REMOTE_WRITE_HEADERS` | `remote_write.headers`, as `Name=value,Name2=value2` |
    ///
    /// The former names `METRICS_SYSTEM_SAMPLING` and
    /// `METRICS_SAMPLE_INTERVAL` are still read, when the new name is unset.
    ///
    /// A bad value is an [`AgentError::Config`] naming the variable and the value.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), AgentError> {
        let mut empty = None;
        let get = |k: &'static str, empty: &mut Option<&'static str>| match env(k) {
            Some(v) if v.trim().is_empty() => {
                empty.get_or_insert(k);
                None
            }
            other => other,
        };
        if let Some(v) = get("METRICS_BACKEND", &mut empty) {
            self.backend = v.parse().map_err(|_| {
                AgentError::config("METRICS_BACKEND", &v, "expected memory, statsd or both")
            })?;
        }
        if let Some(v) = get("METRICS_STATSD_ADDR", &mut empty) {
            check_addr("METRICS_STATSD_ADDR", &v)?;
            self.statsd.addr = v.trim().to_owned();
        }
        if let Some(v) = get("METRICS_STATSD_FLAVOR", &mut empty) {
            self.statsd.flavor = v.parse::<TagFlavor>().map_err(|_| {
                AgentError::config(
                    "METRICS_STATSD_FLAVOR",
                    &v,
                    "expected dogstatsd, etsy or none",
                )
            })?;
        }
        if let Some(v) = get("METRICS_PREFIX", &mut empty) {
            self.statsd.prefix = v.trim().to_owned();
        }
        if let Some(v) = get("METRICS_COMMON_TAGS", &mut empty) {
            self.statsd.common_tags = parse_tags("METRICS_COMMON_TAGS", &v)?;
        }
        // The new name, else the former one: an error names the one read.
        let either = |new: &'static str, old: &'static str, empty: &mut Option<&'static str>| {
            get(new, empty)
                .map(|v| (new, v))
                .or_else(|| get(old, empty).map(|v| (old, v)))
        };
        if let Some((k, v)) = either(
            "METRICS_SYSTEM_POLLING",
            "METRICS_SYSTEM_SAMPLING",
            &mut empty,
        ) {
            self.system_polling = match v.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => true,
                "off" | "false" | "0" | "no" => false,
                _ => return Err(AgentError::config(k, &v, "expected on or off")),
            };
        }
        if let Some((k, v)) = either(
            "METRICS_COLLECTION_INTERVAL",
            "METRICS_SAMPLE_INTERVAL",
            &mut empty,
        ) {
            let d = parse_duration(&v).map_err(|reason| AgentError::config(k, &v, reason))?;
            check_collection_interval(k, &v, d.as_secs_f64())?;
            self.collection_interval = d.as_secs_f64();
        }
        if let Some(v) = get("METRICS_RETENTION_DAYS", &mut empty) {
            let days = parse_in(&v, Unit::Days)
                .map_err(|reason| AgentError::config("METRICS_RETENTION_DAYS", &v, reason))?
                .as_secs_f64()
                / 86_400.0;
            check_retention_days("METRICS_RETENTION_DAYS", &v, days)?;
            self.retention_days = days;
        }
        if let Some(v) = get("METRICS_EXPORT_ENDPOINTS", &mut empty) {
            self.export_endpoints = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("METRICS_STREAM_BUFFER", &mut empty) {
            self.stream_buffer = v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                AgentError::config(
                    "METRICS_STREAM_BUFFER",
                    &v,
                    "expected a whole number, at least 1",
                )
            })?;
        }
        if let Some(v) = get("METRICS_HEALTH_CHECK_TIMEOUT", &mut empty) {
            let d = parse_duration(&v)
                .map_err(|reason| AgentError::config("METRICS_HEALTH_CHECK_TIMEOUT", &v, reason))?;
            if d.is_zero() {
                return Err(AgentError::config(
                    "METRICS_HEALTH_CHECK_TIMEOUT",
                    &v,
                    "must be longer than zero",
                ));
            }
            self.health.check_timeout_ms = d.as_millis().max(1) as u64;
        }
        if let Some(v) = get("METRICS_REMOTE_WRITE_URL", &mut empty) {
            self.remote_write.url = Some(v.trim().to_owned());
        }
        for (var, field) in [
            (
                "METRICS_REMOTE_WRITE_INTERVAL",
                &mut self.remote_write.interval,
            ),
            (
                "METRICS_REMOTE_WRITE_TIMEOUT",
                &mut self.remote_write.timeout,
            ),
        ] {
            if let Some(v) = get(var, &mut empty) {
                let d = parse_duration(&v).map_err(|reason| AgentError::config(var, &v, reason))?;
                if d.as_millis() == 0 {
                    return Err(AgentError::config(var, &v, "must be at least 1 ms"));
                }
                *field = d.as_secs_f64();
            }
        }
        if let Some(v) = get("METRICS_REMOTE_WRITE_QUEUE", &mut empty) {
            self.remote_write.queue =
                v.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    AgentError::config(
                        "METRICS_REMOTE_WRITE_QUEUE",
                        &v,
                        "expected a whole number, at least 1",
                    )
                })?;
        }
        if let Some(v) = get("METRICS_REMOTE_WRITE_HEADERS", &mut empty) {
            self.remote_write.headers = parse_tags("METRICS_REMOTE_WRITE_HEADERS", &v)
                // A header's value is a secret: the error does not show it.
                .map_err(|_| {
                    AgentError::config(
                        "METRICS_REMOTE_WRITE_HEADERS",
                        "(hidden)",
                        "expected Name=value pairs separated by commas",
                    )
                })?;
        }
        if let Some(var) = empty {
            return Err(AgentError::config(
                var,
                "",
                "is set but empty (unset it to use the default)",
            ));
        }
        Ok(())
    }
}

/// Parses `k=v,k2=v2`; `field` names the source in errors.
pub fn parse_tags(field: &str, s: &str) -> Result<BTreeMap<String, String>, AgentError> {
    let mut tags = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            let reason = if pair == s.trim() {
                "expected k=v pairs separated by commas".to_owned()
            } else {
                format!("`{pair}` is not k=v")
            };
            AgentError::config(field, s, reason)
        })?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(AgentError::config(
                field,
                s,
                format!("`{pair}` has an empty key"),
            ));
        }
        tags.insert(k.to_owned(), v.to_owned());
    }
    Ok(tags)
}

/// Checks a StatsD address written as `host:port` (`127.0.0.1:8125`,
/// `localhost:8125`, `[::1]:8125`) without resolving it; `field` names what
/// the user set.
pub(crate) fn check_addr(field: &str, raw: &str) -> Result<(), AgentError> {
    let t = raw.trim();
    let ok = t
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(AgentError::config(
            field,
            raw,
            "expected host:port, like 127.0.0.1:8125",
        ))
    }
}
