//! Exposition formats: what a scrape, an export file or a report reads —
//! Prometheus text 0.0.4, OpenMetrics 1.0, JSON and CSV — encoded from the
//! [`Snapshot`] any backend lends ([`metrics_query::snapshot`]), into the
//! caller's buffer. No backend is a dependency: an [`Exporter`] is built
//! over whatever implements [`Snapshots`] (the memory backend does).
//!
//! ```
//! use std::sync::Arc;
//! use metrics_exposition::{ExportFormat, Exporter};
//! use metrics_memory::MemoryMetrics;
//! use metrics_protocol::Metrics;
//!
//! let memory = Arc::new(MemoryMetrics::new());
//! let metrics = Metrics::new(memory.clone());
//! metrics.record_counter("http.requests", 1.0, &[("code", "200")]);
//!
//! let exporter = Exporter::new(memory);
//! let mut scrape = String::new();
//! exporter.encode_into(ExportFormat::Prometheus, &mut scrape).unwrap();
//! assert!(scrape.contains("http_requests_total{code=\"200\"} 1\n"));
//!
//! // The same series as OpenMetrics, or any format named by a string.
//! let format: ExportFormat = "openmetrics".parse().unwrap();
//! assert!(exporter.export(format).unwrap().ends_with("# EOF\n"));
//! ```
//!
//! # Prometheus and OpenMetrics mapping
//!
//! - names: every character outside `[a-zA-Z0-9_]` becomes `_`, a leading
//!   digit gets a `_` in front; the original name is the HELP text;
//! - counters end in `_total`; timers are in seconds ending in `_seconds`;
//!   a metric described with a unit (`describe`) is exported in its base
//!   unit with its suffix (time in `_seconds`, sizes in `_bytes`, percent as
//!   a 0..1 `_ratio`), with OpenMetrics `# UNIT`; a unit already in the name
//!   is replaced (`payload.kb` in kilobytes: `payload_bytes`);
//! - histograms and timers are Prometheus histograms (see
//!   [`ExpositionConfig`]): cumulative `_bucket{le="..."}` counts read from
//!   the backend's all-time distribution
//!   ([`Distribution::cumulative_counts`](metrics_query::snapshot::Distribution::cumulative_counts);
//!   the memory backend's are exact but for values within 0.5 % of a
//!   bound, which may be counted in the neighbouring bucket), exact `_sum`
//!   and `_count`, and the `+Inf` bucket is the exact count. As an option
//!   they are summaries (quantiles 0.5, 0.9, 0.95, 0.99);
//! - success/failure counts (which the backend lends as counters
//!   `<op>.success` and `<op>.failure{error_type=...}`) become
//!   `<op>_success_total` and `<op>_failure_total`;
//! - two metrics whose names map to the same family (`a.b` and `a-b`), or
//!   whose samples would collide, get distinct names (`_2`, `_3`, ...), so
//!   no family is ever declared twice;
//! - names are made lint-clean for `promtool check metrics`: camelCase is
//!   split and lowercased, abbreviated units are spelled out (`ms` →
//!   `msecs`, `b` → `byte`, `m` → `minute`, ...), non-base units lose their
//!   plural (`milliseconds` → `millisecond`), metric type words get one
//!   (`counter` → `counters`), a non-counter ending in `_total`, `_sum`,
//!   `_count` or `_bucket` gets `_value`, and a timer's trailing time unit
//!   is replaced by `_seconds` (`render.ms` → `render_seconds`);
//! - in OpenMetrics, a histogram with a negative observation or bound has no `_sum`
//!   (the format's counters cannot go down) and so no `_count`: its `+Inf`
//!   bucket is the count; as a summary, which OpenMetrics forbids negative
//!   quantiles and sums in, it is a gauge family with a `statistic` label
//!   (p50, p90, p95, p99, sum, count);
//! - label names are sanitised the same way (a tag `__x` becomes `tag__x`;
//!   tags `quantile`, `le` and `statistic` become `tag_quantile`, ..., two tags that map
//!   to one label get `_2`); label values are escaped (`\\`, `\"`, `\n`).
//!
//! # More formats
//!
//! [`ExportFormat`] is non-exhaustive: a binary format (protobuf, OTLP)
//! is one more variant, encoded by [`Exporter::encode_bytes_into`] (and
//! [`encode_bytes_into`]), which every format supports; the text formats
//! also write into a `String` ([`Exporter::encode_into`]).
//!
//! # Remote write
//!
//! With the `remote-write` feature, [`remote_write`] builds the Prometheus
//! remote write 1.0 request (protobuf, snappy-compressed) of a snapshot:
//! the same series, names, labels and values as the Prometheus text.

#![deny(missing_docs)]

mod config;
mod format;
mod names;
#[cfg(feature = "remote-write")]
pub mod remote_write;
mod rows;
#[cfg(test)]
mod tests;
mod text;

use std::sync::Arc;

use metrics_protocol::MetricsError;
use metrics_query::snapshot::{Snapshot, Snapshots};

pub use config::{ConfigError, DistributionFormat, ExpositionConfig};
pub use format::ExportFormat;

/// Encodes `snapshot` in `format` (a text format) and appends it to `out`,
/// with the buckets and distribution format of `config`.
///
/// ```
/// use metrics_exposition::{ExportFormat, ExpositionConfig, encode_into};
/// use metrics_memory::MemoryMetrics;
/// use metrics_query::snapshot::Snapshots;
///
/// let memory = MemoryMetrics::new();
/// let mut out = String::from("# scraped\n");
/// encode_into(&*memory.snapshot(), ExportFormat::OpenMetrics, &ExpositionConfig::default(), &mut out).unwrap();
/// assert_eq!(out, "# scraped\n# EOF\n");
/// ```
pub fn encode_into(
    snapshot: &dyn Snapshot,
    format: ExportFormat,
    config: &ExpositionConfig,
    out: &mut String,
) -> Result<(), MetricsError> {
    let text = matches!(format, ExportFormat::Prometheus | ExportFormat::OpenMetrics);
    // Text histograms read buckets, not quantiles.
    let read = if text && config.distributions == DistributionFormat::Histogram {
        rows::Read::Buckets(config)
    } else {
        rows::Read::Quantiles
    };
    let rows = rows::rows(snapshot, &read);
    match format {
        ExportFormat::Json => rows::json_into(snapshot, &rows, out),
        ExportFormat::Csv => rows::csv_into(&rows, out),
        ExportFormat::Prometheus => {
            text::text_into(out, &rows, false, snapshot, config);
            Ok(())
        }
        ExportFormat::OpenMetrics => {
            text::text_into(out, &rows, true, snapshot, config);
            Ok(())
        }
    }
}

/// Encodes `snapshot` in `format` and appends the bytes to `out` (any
/// format, binary ones included).
pub fn encode_bytes_into(
    snapshot: &dyn Snapshot,
    format: ExportFormat,
    config: &ExpositionConfig,
    out: &mut Vec<u8>,
) -> Result<(), MetricsError> {
    // The text formats write into a `String`: the caller's buffer when it
    // holds text (no copy), else a new one appended.
    match String::from_utf8(std::mem::take(out)) {
        Ok(mut text) => {
            let r = encode_into(snapshot, format, config, &mut text);
            *out = text.into_bytes();
            r
        }
        Err(e) => {
            *out = e.into_bytes();
            let mut text = String::new();
            encode_into(snapshot, format, config, &mut text)?;
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
    }
}

/// What a scrape or an export needs: the source of snapshots and the
/// exposition settings (bucket bounds, histograms or summaries). Cheap to
/// clone (both are shared); each call takes one snapshot and encodes it.
///
/// ```
/// use std::sync::Arc;
/// use metrics_exposition::{DistributionFormat, ExportFormat, Exporter, ExpositionConfig};
/// use metrics_memory::MemoryMetrics;
/// use metrics_protocol::Metrics;
/// use std::time::Duration;
///
/// let memory = Arc::new(MemoryMetrics::new());
/// Metrics::new(memory.clone()).record_timer("db.query", Duration::from_millis(30), &[]);
/// let config = ExpositionConfig { distributions: DistributionFormat::Summary, ..Default::default() };
/// let exporter = Exporter::with_config(memory, config).unwrap();
/// let text = exporter.export(ExportFormat::Prometheus).unwrap();
/// assert!(text.contains("# TYPE db_query_seconds summary\n"));
/// ```
#[derive(Clone)]
pub struct Exporter {
    source: Arc<dyn Snapshots>,
    config: Arc<ExpositionConfig>,
}

impl Exporter {
    /// Exports `source` with the default settings.
    pub fn new(source: Arc<dyn Snapshots>) -> Self {
        Exporter {
            source,
            config: Arc::new(ExpositionConfig::default()),
        }
    }

    /// Exports `source` with `config`, refused when a bucket list is not
    /// 1 to 100 finite, strictly ascending bounds.
    pub fn with_config(
        source: Arc<dyn Snapshots>,
        config: ExpositionConfig,
    ) -> Result<Self, ConfigError> {
        config.check()?;
        Ok(Exporter {
            source,
            config: Arc::new(config),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ExpositionConfig {
        &self.config
    }

    /// Takes a snapshot and appends it to `out` in `format` (a text
    /// format).
    pub fn encode_into(&self, format: ExportFormat, out: &mut String) -> Result<(), MetricsError> {
        encode_into(&*self.source.snapshot(), format, &self.config, out)
    }

    /// Takes a snapshot and appends it to `out` in `format` (any format).
    pub fn encode_bytes_into(
        &self,
        format: ExportFormat,
        out: &mut Vec<u8>,
    ) -> Result<(), MetricsError> {
        encode_bytes_into(&*self.source.snapshot(), format, &self.config, out)
    }

    /// Takes a snapshot and encodes it in `format`, in a new string.
    pub fn export(&self, format: ExportFormat) -> Result<String, MetricsError> {
        let mut out = String::new();
        self.encode_into(format, &mut out)?;
        Ok(out)
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
