//! Configuration of the StatsD backend.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// How tags go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TagFlavor {
    /// No tags: dropped, or folded into the name (`name.k.v`) when
    /// [`StatsdConfig::fold_tags_into_name`] is set.
    None,
    /// DogStatsD: `name:1|c|#k:v,k2:v2` (Datadog, Telegraf, and the Etsy
    /// daemon 0.9, which keys the series `name;k=v;k2=v2`).
    DogStatsd,
    /// Tags embedded in the name, Graphite style: `name;k=v;k2=v2:1|c`. The
    /// Etsy daemon keys it exactly as it keys the DogStatsD form.
    Etsy,
}

impl FromStr for TagFlavor {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(TagFlavor::None),
            "dogstatsd" | "datadog" => Ok(TagFlavor::DogStatsd),
            "etsy" | "graphite" => Ok(TagFlavor::Etsy),
            _ => Err(ConfigError::new(
                "flavor",
                s,
                "expected none, dogstatsd or etsy",
            )),
        }
    }
}

/// Settings of a [`StatsdMetrics`](crate::StatsdMetrics). Every field has a
/// default; unknown fields are an error.
///
/// ```
/// let c: metrics_statsd::StatsdConfig =
///     serde_json::from_str(r#"{"addr": "127.0.0.1:8125", "prefix": "api", "flavor": "etsy"}"#).unwrap();
/// assert_eq!(c.max_datagram_bytes, 1432);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsdConfig {
    /// The daemon, `host:port`.
    pub addr: String,
    /// Prepended to every name with a dot (empty: none).
    pub prefix: String,
    /// How tags are written.
    pub flavor: TagFlavor,
    /// With [`TagFlavor::None`]: fold tags into the name instead of dropping them.
    pub fold_tags_into_name: bool,
    /// Tags added to every sample; a call's tag with the same key wins.
    pub common_tags: BTreeMap<String, String>,
    /// Largest datagram (default 1432, which fits an Ethernet MTU). One
    /// line longer than this (long names and tags), or a negative gauge's
    /// `0` and `-N` pair, which never straddles two datagrams, goes out
    /// alone in a larger datagram rather than being lost.
    pub max_datagram_bytes: usize,
    /// Milliseconds between flushes (default 1000). Like every `_ms`
    /// setting, also read as a duration: `"1s"`, `"250ms"`.
    #[serde(deserialize_with = "metrics_kit::duration::millis")]
    pub flush_interval_ms: u64,
    /// Timer and histogram samples waiting for the sender (default 65536);
    /// past that they are dropped and counted.
    pub queue_capacity: usize,
    /// Add counter increments (and keep the last gauge value) in process
    /// between flushes, one line per series per flush (default true).
    #[serde(alias = "aggregate")]
    pub combine_counters: bool,
    /// Share of timer samples sent, 0 < rate ≤ 1 (default 1).
    pub timer_sample_rate: f64,
    /// Share of histogram samples sent, 0 < rate ≤ 1 (default 1).
    pub histogram_sample_rate: f64,
    /// How long `shutdown` waits for the sender, in milliseconds (default
    /// 2000). What is still queued at that point is dropped and counted.
    #[serde(deserialize_with = "metrics_kit::duration::millis")]
    pub shutdown_timeout_ms: u64,
    /// After the final flush, how long `shutdown` waits for the kernel to
    /// report that the last datagram was refused, in milliseconds (default 50).
    #[serde(deserialize_with = "metrics_kit::duration::millis")]
    pub shutdown_probe_ms: u64,
    /// Series (distinct kind, name and tags) kept at most (default 100,000);
    /// samples of new series past it are folded into one series per kind
    /// named [`OVERFLOW_NAME`](crate::OVERFLOW_NAME), and counted.
    pub max_series: usize,
    /// A series with no sample for this many flushes is removed (default 10).
    pub idle_flushes: u32,
    /// A counter or gauge total in a refused datagram goes back to its
    /// series and out again with a later flush, until it has been lost this
    /// many times (default 60) ...
    pub max_send_attempts: u32,
    /// ... or this many milliseconds have passed since it was first sent
    /// (default 60,000). Then its samples are dropped and counted as
    /// `send_failed`.
    #[serde(deserialize_with = "metrics_kit::duration::millis")]
    pub retry_max_age_ms: u64,
    /// Datagrams sent per second at most, in bursts of at most 32 (default
    /// 1,000, about 1.4 MB/s and 40,000 timer lines a second; 0: no limit),
    /// so that a burst does not overflow the daemon's receive buffer, where
    /// losses are silent. The reference Etsy daemon, on a loaded 2-core
    /// machine with default socket buffers, lost datagrams from about 2,000
    /// a second. A daemon on this host is also watched directly (see the
    /// crate docs), with or without this limit.
    pub max_datagrams_per_sec: u64,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            addr: "127.0.0.1:8125".into(),
            prefix: String::new(),
            flavor: TagFlavor::DogStatsd,
            fold_tags_into_name: false,
            common_tags: BTreeMap::new(),
            max_datagram_bytes: 1432,
            flush_interval_ms: 1000,
            queue_capacity: 65_536,
            combine_counters: true,
            timer_sample_rate: 1.0,
            histogram_sample_rate: 1.0,
            shutdown_timeout_ms: 2000,
            shutdown_probe_ms: 50,
            max_series: 100_000,
            idle_flushes: 10,
            max_send_attempts: 60,
            retry_max_age_ms: 60_000,
            max_datagrams_per_sec: 1_000,
        }
    }
}

impl StatsdConfig {
    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_datagram_bytes < 64 || self.max_datagram_bytes > 65_000 {
            return Err(ConfigError::new(
                "max_datagram_bytes",
                self.max_datagram_bytes.to_string(),
                "must be between 64 and 65000",
            ));
        }
        if self.flush_interval_ms == 0 {
            return Err(ConfigError::new(
                "flush_interval_ms",
                "0",
                "must be at least 1",
            ));
        }
        for (field, v) in [
            ("queue_capacity", self.queue_capacity as u64),
            ("max_series", self.max_series as u64),
            ("idle_flushes", u64::from(self.idle_flushes)),
            ("max_send_attempts", u64::from(self.max_send_attempts)),
        ] {
            if v == 0 {
                return Err(ConfigError::new(field, "0", "must be at least 1"));
            }
        }
        for (field, rate) in [
            ("timer_sample_rate", self.timer_sample_rate),
            ("histogram_sample_rate", self.histogram_sample_rate),
        ] {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(ConfigError::new(
                    field,
                    rate.to_string(),
                    "must be in (0, 1]",
                ));
            }
        }
        Ok(())
    }
}
