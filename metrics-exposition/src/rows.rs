//! One row per series, whatever the format, read from a [`Snapshot`]; the
//! JSON and CSV encoders.

use std::collections::BTreeMap;

use chrono::Utc;
use metrics_protocol::{MetricType, MetricsError};
use metrics_query::snapshot::Snapshot;
use serde::Serialize;

use crate::config::ExpositionConfig;
use crate::names::{base_unit, unit_in_name};

/// The quantiles of summaries, JSON and CSV, with their label values.
pub(crate) const QUANTILES: [(f64, &str); 4] =
    [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")];

/// One exported series, whatever the format. The snapshot lends its name
/// and tags (no copy per series).
#[derive(Debug, Serialize)]
pub(crate) struct Row<'a> {
    pub(crate) name: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: MetricType,
    pub(crate) unit: &'static str,
    pub(crate) tags: RowTags<'a>,
    pub(crate) value: f64,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) avg: Option<f64>,
    pub(crate) p50: Option<f64>,
    pub(crate) p90: Option<f64>,
    pub(crate) p95: Option<f64>,
    pub(crate) p99: Option<f64>,
    /// The text formats' cumulative bucket counts of a distribution, at
    /// its family's bounds, read from the all-time sketch in place.
    #[serde(skip)]
    pub(crate) buckets: Option<Vec<u64>>,
}

/// A row's tags, sorted by key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowTags<'a>(&'a [(Box<str>, Box<str>)]);

impl<'a> RowTags<'a> {
    /// The `(key, value)` pairs in key order.
    pub(crate) fn pairs(&self) -> Pairs<'a> {
        Pairs(self.0.iter())
    }
}

/// The iterator of [`RowTags::pairs`].
#[derive(Clone)]
pub(crate) struct Pairs<'t>(std::slice::Iter<'t, (Box<str>, Box<str>)>);

impl<'t> Iterator for Pairs<'t> {
    type Item = (&'t str, &'t str);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&**k, &**v))
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
    series: &'a [Row<'a>],
    dropped: BTreeMap<metrics_protocol::backend::DropReason, u64>,
    overflowed_metrics: Vec<String>,
}

/// How [`rows`] reads distributions.
pub(crate) enum Read<'c> {
    /// Quantiles from the sketch (JSON, CSV, text summaries).
    Quantiles,
    /// Cumulative bucket counts for the text histograms.
    Buckets(&'c ExpositionConfig),
}

/// Every series of the snapshot as a row, in its order. Distributions get
/// quantiles or bucket counts, both read from the sketch the backend lends
/// while it reads the series, without copying it.
pub(crate) fn rows<'a>(snap: &'a dyn Snapshot, read: &Read<'_>) -> Vec<Row<'a>> {
    let mut out = Vec::with_capacity(snap.len());
    // The bounds and unit factor of the current name (series come grouped
    // by name).
    let mut bounds_of: Option<(&str, &[f64], f64)> = None;
    for i in 0..snap.len() {
        let Some(s) = snap.series(i) else {
            continue;
        };
        let dist = matches!(s.kind, MetricType::Histogram | MetricType::Timer);
        let mut quantiles = [None; 4];
        let mut buckets = None;
        let bounds = match read {
            Read::Buckets(cfg) if dist => {
                if bounds_of.is_none_or(|(n, _, _)| n != s.name) {
                    let (b, scale) = distribution_bounds(cfg, snap, s.name, s.kind);
                    bounds_of = Some((s.name, b, scale));
                }
                bounds_of.map(|(_, b, scale)| (b, scale))
            }
            _ => None,
        };
        let mut values = (0.0, 0, 0.0, None, None, None);
        snap.read(i, &mut |r| {
            match (bounds, r.distribution) {
                (Some((bounds, scale)), Some(d)) => {
                    buckets = Some(d.cumulative_counts(scale, bounds));
                }
                (None, Some(d)) if dist && matches!(read, Read::Quantiles) => {
                    for (slot, (q, _)) in quantiles.iter_mut().zip(QUANTILES) {
                        *slot = d.quantile(q);
                    }
                }
                _ => {}
            }
            values = (r.value, r.count, r.sum, r.min, r.max, r.avg());
        });
        let (value, count, sum, min, max, avg) = values;
        let [p50, p90, p95, p99] = quantiles;
        out.push(Row {
            name: s.name,
            kind: s.kind,
            unit: if s.kind == MetricType::Timer {
                "milliseconds"
            } else {
                "count"
            },
            tags: RowTags(s.tags),
            value,
            count,
            sum,
            min,
            max,
            avg,
            p50,
            p90,
            p95,
            p99,
            buckets,
        });
    }
    out
}

/// The bucket bounds of a distribution and the factor from its recorded
/// unit to the exported one (what its text family uses).
fn distribution_bounds<'c>(
    cfg: &'c ExpositionConfig,
    snap: &dyn Snapshot,
    name: &str,
    kind: MetricType,
) -> (&'c [f64], f64) {
    let described = snap
        .description(name)
        .and_then(|d| d.unit)
        .or_else(|| unit_in_name(name));
    let scale = base_unit(kind, described).map_or(1.0, |u| u.1);
    (cfg.bounds_for(name, kind, described), scale)
}

/// The JSON document (pretty-printed), appended to `out`.
pub(crate) fn json_into(
    snap: &dyn Snapshot,
    rows: &[Row<'_>],
    out: &mut String,
) -> Result<(), MetricsError> {
    let doc = serde_json::to_string_pretty(&JsonExport {
        generated_at: Utc::now(),
        series: rows,
        dropped: snap.dropped(),
        overflowed_metrics: snap.overflowed(),
    })
    .map_err(|e| MetricsError::io("the JSON export", e.into()))?;
    out.push_str(&doc);
    Ok(())
}

/// The CSV table (a header, one record per row), appended to `out`.
pub(crate) fn csv_into(rows: &[Row<'_>], out: &mut String) -> Result<(), MetricsError> {
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
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        MetricsError::io(
            "the CSV export",
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    out.push_str(text);
    Ok(())
}
