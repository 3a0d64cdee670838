//! What the text formats need to know besides the series: bucket bounds
//! and whether distributions are histograms or summaries.

use std::collections::BTreeMap;

use metrics_protocol::{MetricType, MetricUnit};
use serde::{Deserialize, Serialize};

use crate::names::base_unit;

/// A configuration value that cannot be used: the field (dotted,
/// `exposition.buckets.<name>`), the value as given, and what is wrong
/// with it.
///
/// ```
/// use metrics_exposition::ExpositionConfig;
/// let c = ExpositionConfig { timer_buckets: vec![1.0, 0.5], ..Default::default() };
/// let e = c.check().unwrap_err();
/// assert_eq!(e.field, "exposition.timer_buckets");
/// assert_eq!(e.to_string(), "exposition.timer_buckets = `[1.0, 0.5]`: bounds must be strictly ascending");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = `{value}`: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub field: String,
    /// Its value, as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl From<ConfigError> for metrics_protocol::MetricsError {
    fn from(e: ConfigError) -> Self {
        metrics_protocol::MetricsError::InvalidArgument(e.to_string())
    }
}

/// How the text formats export distributions (histograms and timers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistributionFormat {
    /// Prometheus histograms (the default): cumulative `_bucket{le="..."}`
    /// counts derived from the quantile sketch, `_sum` and `_count`. They
    /// add up across instances, so `histogram_quantile` works on a fleet.
    #[default]
    Histogram,
    /// Summaries: quantiles 0.5, 0.9, 0.95 and 0.99 read from the sketch
    /// (within its 0.5 % relative accuracy), `_sum` and `_count`. More
    /// precise per instance, but quantiles do not aggregate.
    Summary,
}

/// Bucket bounds and the distribution format of the Prometheus and
/// OpenMetrics exports. Bounds are upper bounds (`le`) in the exported
/// unit: seconds for timers and time units, bytes for sizes (see the
/// module docs); `+Inf` is always added.
///
/// ```
/// let c: metrics_exposition::ExpositionConfig = serde_json::from_str(
///     r#"{"buckets": {"db.query": [0.01, 0.1, 1], "http.*": [0.05, 0.5]}}"#,
/// ).unwrap();
/// assert_eq!(c.distributions, metrics_exposition::DistributionFormat::Histogram);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpositionConfig {
    /// `histogram` (default) or `summary`.
    pub distributions: DistributionFormat,
    /// Bounds per metric name (`"db.query"`) or name prefix ending in `*`
    /// (`"http.*"`): the exact name first, then the longest prefix.
    pub buckets: BTreeMap<String, Vec<f64>>,
    /// Timers and histograms in a time unit, in seconds (default 0.5 ms to
    /// 60 s, 1-2.5-5 steps).
    pub timer_buckets: Vec<f64>,
    /// Histograms in a size unit, in bytes (default 64 B to 1 GiB, powers
    /// of 4).
    pub byte_buckets: Vec<f64>,
    /// Other histograms (default 0.01 to 10,000, 1-2.5-5 steps).
    pub histogram_buckets: Vec<f64>,
}

impl Default for ExpositionConfig {
    fn default() -> Self {
        let timer_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0,
        ];
        let histogram_buckets = vec![
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0,
            500.0, 1000.0, 2500.0, 5000.0, 10_000.0,
        ];
        ExpositionConfig {
            distributions: DistributionFormat::Histogram,
            buckets: BTreeMap::new(),
            timer_buckets,
            byte_buckets: (0..13).map(|i| 64.0 * 4f64.powi(i)).collect(),
            histogram_buckets,
        }
    }
}

/// Most bounds in one bucket list.
const MAX_BOUNDS: usize = 100;

impl ExpositionConfig {
    /// Every bound list: 1 to 100 finite, strictly ascending numbers.
    pub fn check(&self) -> Result<(), ConfigError> {
        let lists = [
            ("exposition.timer_buckets".to_owned(), &self.timer_buckets),
            ("exposition.byte_buckets".to_owned(), &self.byte_buckets),
            (
                "exposition.histogram_buckets".to_owned(),
                &self.histogram_buckets,
            ),
        ]
        .into_iter()
        .chain(
            self.buckets
                .iter()
                .map(|(k, v)| (format!("exposition.buckets.{k}"), v)),
        );
        for (field, b) in lists {
            let bad = |reason: &str| ConfigError {
                field: field.clone(),
                value: format!("{b:?}"),
                reason: reason.to_owned(),
            };
            if b.is_empty() || b.len() > MAX_BOUNDS {
                return Err(bad("must hold 1 to 100 bounds"));
            }
            if !b.iter().all(|x| x.is_finite()) {
                return Err(bad("bounds must be finite (+Inf is always added)"));
            }
            if !b.windows(2).all(|w| w[0] < w[1]) {
                return Err(bad("bounds must be strictly ascending"));
            }
        }
        Ok(())
    }

    /// The bounds for a distribution: configured for its name or prefix,
    /// else the default for its unit.
    pub fn bounds_for(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>) -> &[f64] {
        if let Some(b) = self.buckets.get(name) {
            return b;
        }
        let prefixed = self
            .buckets
            .iter()
            .filter_map(|(k, b)| Some((k.strip_suffix('*')?, b)))
            .filter(|(p, _)| name.starts_with(p))
            .max_by_key(|(p, _)| p.len());
        if let Some((_, b)) = prefixed {
            return b;
        }
        match base_unit(kind, unit) {
            Some(("seconds", _)) => &self.timer_buckets,
            Some(("bytes", _)) => &self.byte_buckets,
            _ => &self.histogram_buckets,
        }
    }
}
