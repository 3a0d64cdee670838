//! Exports: JSON, CSV, Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! Prometheus and OpenMetrics mapping:
//! - names: every character outside `[a-zA-Z0-9_]` becomes `_`, a leading
//!   digit gets a `_` in front; the original name is the HELP text;
//! - counters end in `_total`; timers are in seconds ending in `_seconds`;
//!   a metric described with a unit (`describe`) is exported in its base
//!   unit with its suffix (time in `_seconds`, sizes in `_bytes`, percent as
//!   a 0..1 `_ratio`), with OpenMetrics `# UNIT`; a unit already in the name
//!   is replaced (`payload.kb` in kilobytes: `payload_bytes`);
//! - histograms and timers are Prometheus histograms (see
//!   [`ExpositionConfig`]): cumulative `_bucket{le="..."}` counts derived
//!   from the all-time quantile sketch, exact `_sum` and `_count`; a bucket
//!   count is exact but for values within 0.5 % of its bound, which may be
//!   counted in the neighbouring bucket
//!   ([`QuantileSketch::cumulative_counts`](crate::QuantileSketch::cumulative_counts)),
//!   and the `+Inf` bucket is the exact count. As an option they are
//!   summaries (quantiles 0.5, 0.9, 0.95, 0.99 from the sketch);
//! - success/failure counts become counters `<op>_success_total` and
//!   `<op>_failure_total{error_type=...}`;
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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use metrics_protocol::app::ExportFormat;
use metrics_protocol::{MetricType, MetricUnit, MetricsError};
use serde::Deserialize;
use serde::Serialize;

use crate::MemoryMetrics;
use crate::series::Series;
use crate::sketch::Sketch;
use crate::stats::Stats;

const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")];

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
/// let c: metrics_memory::ExpositionConfig = serde_json::from_str(
///     r#"{"buckets": {"db.query": [0.01, 0.1, 1], "http.*": [0.05, 0.5]}}"#,
/// ).unwrap();
/// assert_eq!(c.distributions, metrics_memory::DistributionFormat::Histogram);
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
    pub(crate) fn check(&self) -> Result<(), crate::config::ConfigError> {
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
            let bad = |reason: &str| crate::config::invalid(&field, format!("{b:?}"), reason);
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
    pub(crate) fn bounds_for(
        &self,
        name: &str,
        kind: MetricType,
        unit: Option<MetricUnit>,
    ) -> &[f64] {
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

/// What `describe` said about a metric.
#[derive(Debug, Clone, Default)]
pub(crate) struct Description {
    /// The help text.
    pub(crate) help: Option<String>,
    /// The unit the metric is recorded in.
    pub(crate) unit: Option<MetricUnit>,
}

/// One exported series, whatever the format. A registry series lends its
/// name and tags (no copy per series); outcome counts own theirs.
#[derive(Debug, Serialize)]
struct Row<'a> {
    name: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: MetricType,
    unit: &'static str,
    tags: RowTags<'a>,
    value: f64,
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    avg: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    /// The text formats' cumulative bucket counts of a distribution, at
    /// its family's bounds, read from the all-time sketch in place.
    #[serde(skip)]
    buckets: Option<Vec<u64>>,
}

/// A row's tags, sorted by key: a series' own or owned ones.
#[derive(Debug)]
enum RowTags<'a> {
    Series(&'a [(Box<str>, Box<str>)]),
    Owned(BTreeMap<String, String>),
}

impl RowTags<'_> {
    /// The `(key, value)` pairs in key order.
    fn pairs(&self) -> Pairs<'_> {
        match self {
            RowTags::Series(t) => Pairs::Series(t.iter()),
            RowTags::Owned(t) => Pairs::Owned(t.iter()),
        }
    }
}

/// The iterator of [`RowTags::pairs`].
#[derive(Clone)]
enum Pairs<'t> {
    Series(std::slice::Iter<'t, (Box<str>, Box<str>)>),
    Owned(std::collections::btree_map::Iter<'t, String, String>),
}

impl<'t> Iterator for Pairs<'t> {
    type Item = (&'t str, &'t str);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pairs::Series(i) => i.next().map(|(k, v)| (&**k, &**v)),
            Pairs::Owned(i) => i.next().map(|(k, v)| (k.as_str(), v.as_str())),
        }
    }
}

impl Serialize for RowTags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.pairs())
    }
}

#[derive(Serialize)]
struct JsonExport<'a> {
    generated_at: chrono::DateTime<Utc>,
    series: Vec<Row<'a>>,
    dropped: BTreeMap<metrics_protocol::backend::DropReason, u64>,
    overflowed_metrics: Vec<String>,
}

/// How [`rows`] reads distributions.
enum Read<'c> {
    /// Quantiles from the sketch (JSON, CSV, text summaries).
    Quantiles,
    /// Cumulative bucket counts for the text histograms.
    Buckets {
        cfg: &'c ExpositionConfig,
        descriptions: &'c BTreeMap<String, Description>,
    },
}

/// Every series of `series` (sorted by name and tags) and every outcome
/// count as a row. Distributions get quantiles or bucket counts, both
/// read from the all-time sketch under the series lock, without copying
/// it.
fn rows<'a>(m: &MemoryMetrics, series: &'a [Arc<Series>], read: &Read<'_>) -> Vec<Row<'a>> {
    let mut out = Vec::with_capacity(series.len());
    // The bounds and unit factor of the current name (series come grouped
    // by name).
    let mut bounds_of: Option<(&str, &[f64], f64)> = None;
    for s in series {
        let dist = s.is_distribution();
        let mut quantiles = [None; 4];
        let mut buckets = None;
        let bounds = match read {
            Read::Buckets { cfg, descriptions } if dist => {
                if bounds_of.is_none_or(|(n, _, _)| n != &*s.name) {
                    let (b, scale) = distribution_bounds(cfg, descriptions, &s.name, s.kind);
                    bounds_of = Some((&s.name, b, scale));
                }
                bounds_of.map(|(_, b, scale)| (b, scale))
            }
            _ => None,
        };
        let (current, t) = s.read_with(|value, t, sketch| {
            match (bounds, sketch) {
                (Some((bounds, scale)), Some(sk)) => {
                    buckets = Some(if t.count > 0 {
                        sk.cumulative_counts(t.min, t.max, scale, bounds)
                    } else {
                        vec![0; bounds.len()]
                    });
                }
                (None, Some(sk)) if dist && matches!(read, Read::Quantiles) => {
                    for (slot, (q, _)) in quantiles.iter_mut().zip(QUANTILES) {
                        *slot = sketch_quantile(t, sk, q);
                    }
                }
                _ => {}
            }
            (value, t.clone())
        });
        let [p50, p90, p95, p99] = quantiles;
        out.push(Row {
            name: Cow::Borrowed(&*s.name),
            kind: s.kind,
            unit: if s.kind == MetricType::Timer {
                "milliseconds"
            } else {
                "count"
            },
            tags: RowTags::Series(&s.tags),
            value: if dist { t.sum } else { current },
            count: t.count,
            sum: t.sum,
            min: (t.count > 0).then_some(t.min),
            max: (t.count > 0).then_some(t.max),
            avg: (t.count > 0).then(|| t.avg()),
            p50,
            p90,
            p95,
            p99,
            buckets,
        });
    }
    for op in m.tracker.names() {
        let counter = |name: String, tags: BTreeMap<String, String>, n: u64| Row {
            name: Cow::Owned(name),
            kind: MetricType::Counter,
            unit: "count",
            tags: RowTags::Owned(tags),
            value: n as f64,
            count: n,
            sum: n as f64,
            min: None,
            max: None,
            avg: None,
            p50: None,
            p90: None,
            p95: None,
            p99: None,
            buckets: None,
        };
        for (tags, ok, failures) in m.tracker.outcomes_by_tags(&op) {
            let tags: BTreeMap<String, String> = tags.into_iter().collect();
            out.push(counter(format!("{op}.success"), tags.clone(), ok));
            for (err, n) in failures {
                let mut tags = tags.clone();
                tags.insert("error_type".into(), err);
                out.push(counter(format!("{op}.failure"), tags, n));
            }
        }
    }
    out
}

/// The nearest-rank `q`-quantile of a lent sketch, clamped to the exact
/// min and max (what [`Stats::quantile`](crate::stats::Stats::quantile)
/// answers for a copy).
fn sketch_quantile(t: &Stats, sketch: &Sketch, q: f64) -> Option<f64> {
    let v = sketch.quantile(q)?;
    if t.count == 0 {
        return Some(v);
    }
    Some(v.clamp(t.min, t.max))
}

/// The bucket bounds of a distribution and the factor from its recorded
/// unit to the exported one (what its text family uses).
fn distribution_bounds<'c>(
    cfg: &'c ExpositionConfig,
    descriptions: &BTreeMap<String, Description>,
    name: &str,
    kind: MetricType,
) -> (&'c [f64], f64) {
    let described = descriptions
        .get(name)
        .and_then(|d| d.unit)
        .or_else(|| unit_in_name(name));
    let scale = base_unit(kind, described).map_or(1.0, |u| u.1);
    (cfg.bounds_for(name, kind, described), scale)
}

pub(crate) fn export(m: &MemoryMetrics, format: ExportFormat) -> Result<String, MetricsError> {
    let series = m.registry.all_by_name();
    let descriptions = m.descriptions();
    let cfg = &m.config.exposition;
    let text = matches!(format, ExportFormat::Prometheus | ExportFormat::OpenMetrics);
    // Text histograms read buckets, not quantiles.
    let read = if text && cfg.distributions == DistributionFormat::Histogram {
        Read::Buckets {
            cfg,
            descriptions: &descriptions,
        }
    } else {
        Read::Quantiles
    };
    let rows = rows(m, &series, &read);
    match format {
        ExportFormat::Json => serde_json::to_string_pretty(&JsonExport {
            generated_at: Utc::now(),
            series: rows,
            dropped: m.shared.drops.snapshot(),
            overflowed_metrics: m.registry.overflowed(),
        })
        .map_err(|e| MetricsError::io("the JSON export", e.into())),
        ExportFormat::Csv => csv_export(&rows),
        ExportFormat::Prometheus => Ok(text_export(&rows, false, &descriptions, cfg)),
        ExportFormat::OpenMetrics => Ok(text_export(&rows, true, &descriptions, cfg)),
    }
}

fn csv_export(rows: &[Row<'_>]) -> Result<String, MetricsError> {
    let err = |e: csv::Error| MetricsError::io("the CSV export", e.into());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "name", "type", "unit", "tags", "value", "count", "sum", "min", "max", "avg", "p50", "p90",
        "p95", "p99",
    ])
    .map_err(err)?;
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let tags = serde_json::to_string(&r.tags)
            .map_err(|e| MetricsError::io("the CSV export's tags", e.into()))?;
        w.write_record([
            r.name.to_string(),
            r.kind.to_string(),
            r.unit.to_owned(),
            tags,
            r.value.to_string(),
            r.count.to_string(),
            r.sum.to_string(),
            opt(r.min),
            opt(r.max),
            opt(r.avg),
            opt(r.p50),
            opt(r.p90),
            opt(r.p95),
            opt(r.p99),
        ])
        .map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| MetricsError::io("the CSV export", e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| {
        MetricsError::io(
            "the CSV export",
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

mod names;
pub(crate) use names::unit_in_name;
#[cfg(test)]
mod tests;
mod text;

use names::*;
use text::*;
