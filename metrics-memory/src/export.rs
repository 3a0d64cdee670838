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

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use chrono::Utc;
use metrics_protocol::system::ExportFormat;
use metrics_protocol::{MetricType, MetricUnit, MetricsError};
use serde::Deserialize;
use serde::Serialize;

use crate::MemoryMetrics;
use crate::sketch::Sketch;

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
    pub(crate) fn check(&self) -> Result<(), MetricsError> {
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
            let bad = |reason: &str| MetricsError::config(field.clone(), format!("{b:?}"), reason);
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

/// One exported series, whatever the format.
#[derive(Debug, Clone, Serialize)]
struct Row {
    name: String,
    #[serde(rename = "type")]
    kind: MetricType,
    unit: &'static str,
    tags: BTreeMap<String, String>,
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
    /// The all-time sketch of a distribution (the text formats' buckets).
    #[serde(skip)]
    sketch: Option<Box<Sketch>>,
}

#[derive(Serialize)]
struct JsonExport {
    generated_at: chrono::DateTime<Utc>,
    series: Vec<Row>,
    dropped: BTreeMap<metrics_protocol::DropReason, u64>,
    overflowed_metrics: Vec<String>,
}

/// Every series (and outcome count) as a row; quantiles only when
/// `quantiles` (the text formats' histograms read buckets instead).
fn rows(m: &MemoryMetrics, quantiles: bool) -> Vec<Row> {
    let mut out = Vec::new();
    for s in m.registry.all() {
        let (current, mut t) = s.read();
        let dist = s.is_distribution();
        let [p50, p90, p95, p99] = [0.5, 0.9, 0.95, 0.99].map(|x| {
            if dist && quantiles {
                t.quantile(x)
            } else {
                None
            }
        });
        let sketch = t.sketch.take();
        out.push(Row {
            name: s.name.to_string(),
            kind: s.kind,
            unit: if s.kind == MetricType::Timer {
                "milliseconds"
            } else {
                "count"
            },
            tags: s
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
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
            sketch,
        });
    }
    for op in m.tracker.names() {
        let counter = |name: String, tags: BTreeMap<String, String>, n: u64| Row {
            name,
            kind: MetricType::Counter,
            unit: "count",
            tags,
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
            sketch: None,
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

pub(crate) fn export(m: &MemoryMetrics, format: ExportFormat) -> Result<String, MetricsError> {
    // Text histograms read buckets, not quantiles.
    let text_histograms = matches!(format, ExportFormat::Prometheus | ExportFormat::OpenMetrics)
        && m.config.exposition.distributions == DistributionFormat::Histogram;
    let rows = rows(m, !text_histograms);
    match format {
        ExportFormat::Json => serde_json::to_string_pretty(&JsonExport {
            generated_at: Utc::now(),
            series: rows,
            dropped: m.shared.drops.snapshot(),
            overflowed_metrics: m.registry.overflowed(),
        })
        .map_err(|e| MetricsError::Export(e.to_string())),
        ExportFormat::Csv => csv_export(&rows),
        ExportFormat::Prometheus => Ok(text_export(
            &rows,
            false,
            &m.descriptions(),
            &m.config.exposition,
        )),
        ExportFormat::OpenMetrics => Ok(text_export(
            &rows,
            true,
            &m.descriptions(),
            &m.config.exposition,
        )),
    }
}

fn csv_export(rows: &[Row]) -> Result<String, MetricsError> {
    let err = |e: csv::Error| MetricsError::Export(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "name", "type", "unit", "tags", "value", "count", "sum", "min", "max", "avg", "p50", "p90",
        "p95", "p99",
    ])
    .map_err(err)?;
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let tags =
            serde_json::to_string(&r.tags).map_err(|e| MetricsError::Export(e.to_string()))?;
        w.write_record([
            r.name.clone(),
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
        .map_err(|e| MetricsError::Export(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| MetricsError::Export(e.to_string()))
}

/// `[a-zA-Z0-9_]`, not starting with a digit.
pub(crate) fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Splits camelCase with `_` and lowercases.
fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for c in s.chars() {
        if prev_lower && c.is_ascii_uppercase() {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

const BASE_UNITS: [&str; 10] = [
    "amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds",
    "volts",
];
const OTHER_UNITS: [&str; 14] = [
    "minutes",
    "hours",
    "days",
    "weeks",
    "kelvins",
    "fahrenheit",
    "rankine",
    "inches",
    "yards",
    "miles",
    "bits",
    "calories",
    "pounds",
    "ounces",
];
const UNIT_PREFIXES: [&str; 18] = [
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// Whether promtool's linter would call this token a non-base unit.
fn non_base_unit(t: &str) -> bool {
    let is_unit = |x: &str| BASE_UNITS.contains(&x) || OTHER_UNITS.contains(&x);
    OTHER_UNITS.contains(&t)
        || UNIT_PREFIXES
            .iter()
            .any(|p| t.strip_prefix(p).is_some_and(is_unit))
}

/// One `_`-separated token made acceptable to promtool's linter.
fn lint_token(t: &str) -> String {
    let fixed = match t {
        "s" | "sec" => "secs",
        "ms" => "msecs",
        "us" => "usecs",
        "ns" => "nsecs",
        "b" => "byte",
        "kb" => "kbyte",
        "mb" => "mbyte",
        "gb" => "gbyte",
        "tb" => "tbyte",
        "pb" => "pbyte",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "counter" => "counters",
        "gauge" => "gauges",
        "histogram" => "histograms",
        "summary" => "summaries",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_owned();
    }
    let mut t = t.to_owned();
    while non_base_unit(&t) {
        match t.strip_suffix('s') {
            Some(single) => t = single.to_owned(),
            None => t.push_str("deg"),
        }
    }
    t
}

const TIME_TOKENS: [&str; 12] = [
    "s",
    "sec",
    "secs",
    "seconds",
    "ms",
    "msec",
    "millis",
    "milliseconds",
    "us",
    "microseconds",
    "ns",
    "nanoseconds",
];
const BYTE_TOKENS: [&str; 8] = [
    "b",
    "byte",
    "bytes",
    "kb",
    "kilobytes",
    "mb",
    "megabytes",
    "kib",
];
const RATIO_TOKENS: [&str; 4] = ["percent", "pct", "percentage", "ratio"];

/// The base unit a metric is exported in: the name suffix (and OpenMetrics
/// `UNIT`) and the factor from the recorded unit. Timers record
/// milliseconds and export seconds; other metrics take the unit given to
/// `describe`: time in seconds, sizes in bytes, percent as a 0..1 ratio.
/// Counts and rates have no unit.
fn base_unit(kind: MetricType, unit: Option<MetricUnit>) -> Option<(&'static str, f64)> {
    if kind == MetricType::Timer {
        return Some(("seconds", 1e-3));
    }
    Some(match unit? {
        MetricUnit::Seconds => ("seconds", 1.0),
        MetricUnit::Milliseconds => ("seconds", 1e-3),
        MetricUnit::Microseconds => ("seconds", 1e-6),
        MetricUnit::Bytes => ("bytes", 1.0),
        MetricUnit::Kilobytes => ("bytes", 1024.0),
        MetricUnit::Megabytes => ("bytes", 1024.0 * 1024.0),
        MetricUnit::Percent => ("ratio", 0.01),
        _ => return None,
    })
}

/// A base unit spelled out as the last word of a name (`http.response.bytes`,
/// `gc.pause.seconds`), for a metric described without one.
fn unit_in_name(name: &str) -> Option<MetricUnit> {
    let last = name.rsplit(|c: char| !c.is_ascii_alphanumeric()).next()?;
    match last.to_ascii_lowercase().as_str() {
        "bytes" => Some(MetricUnit::Bytes),
        "seconds" => Some(MetricUnit::Seconds),
        _ => None,
    }
}

/// The family name of a metric: sanitised, lint-clean, with the suffixes
/// its type and unit call for (see the module docs).
fn family_stem(name: &str, kind: MetricType, suffix: Option<&str>) -> String {
    let snaked = snake(&sanitize_name(name));
    let mut tokens: Vec<&str> = snaked.split('_').collect();
    if matches!(kind, MetricType::Counter | MetricType::Rate) {
        while tokens.len() > 1 && tokens.last() == Some(&"total") {
            tokens.pop();
        }
    }
    // A unit already in the name is replaced by the base unit's suffix.
    let unit_tokens: &[&str] = match suffix {
        Some("seconds") => &TIME_TOKENS,
        Some("bytes") => &BYTE_TOKENS,
        Some("ratio") => &RATIO_TOKENS,
        _ => &[],
    };
    if tokens.len() > 1 && tokens.last().is_some_and(|t| unit_tokens.contains(t)) {
        tokens.pop();
    }
    let mut stem = tokens
        .iter()
        .map(|t| lint_token(t))
        .collect::<Vec<_>>()
        .join("_");
    if matches!(kind, MetricType::Counter | MetricType::Rate) {
        while let Some(s) = stem.strip_suffix("_total") {
            stem = s.to_owned();
        }
    }
    if let Some(suffix) = suffix {
        stem.push('_');
        stem.push_str(suffix);
    } else if matches!(kind, MetricType::Gauge | MetricType::Histogram)
        && ["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|x| stem.ends_with(x))
    {
        stem.push_str("_value");
    }
    stem
}

/// A label name: sanitised, snake_case, never reserved (`__*`, `le`, `quantile`).
fn sanitize_label(key: &str) -> String {
    let mut k = snake(&sanitize_name(key));
    if k.starts_with("__") {
        k.insert_str(0, "tag");
    }
    if k == "quantile" || k == "le" || k == "statistic" {
        k.insert_str(0, "tag_");
    }
    k
}

fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v == 0.0 || (1e-6..1e15).contains(&v.abs()) {
        v.to_string()
    } else {
        // Exponent form for huge and tiny values instead of hundreds of digits.
        format!("{v:e}")
    }
}

/// The labels of `tags`, sanitised and escaped, without braces:
/// `k="v",k2="v2"` (empty without tags). Rendered once per series and
/// reused for each of its lines.
fn label_body(tags: &BTreeMap<String, String>) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for (k, v) in tags {
        let mut key = sanitize_label(k);
        let mut n = 2;
        while !seen.insert(key.clone()) {
            key = format!("{}_{n}", sanitize_label(k));
            n += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&key);
        out.push_str("=\"");
        escape_label_value(v, &mut out);
        out.push('"');
    }
    out
}

/// Appends `{body,extra}` (nothing when both are empty).
fn write_labels(out: &mut String, body: &str, extra: Option<(&str, &str)>) {
    if body.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    out.push_str(body);
    if let Some((k, v)) = extra {
        if !body.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(v, out);
        out.push('"');
    }
    out.push('}');
}

/// One sample line: `name{labels} value`.
fn write_line(
    out: &mut String,
    name: &str,
    suffix: &str,
    body: &str,
    extra: Option<(&str, &str)>,
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    out.push_str(suffix);
    write_labels(out, body, extra);
    let _ = writeln!(out, " {value}");
}

fn labels(tags: &BTreeMap<String, String>, extra: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    write_labels(&mut out, &label_body(tags), extra);
    out
}

struct Family<'r> {
    base: String,
    name: &'r str,
    kind: MetricType,
    help: String,
    /// The base unit's name (`seconds`, `bytes`, `ratio`) and the factor
    /// from the recorded unit.
    unit: Option<(&'static str, f64)>,
    described: Option<MetricUnit>,
    rows: Vec<&'r Row>,
}

fn families<'r>(rows: &'r [Row], descriptions: &BTreeMap<String, Description>) -> Vec<Family<'r>> {
    let mut by_key: BTreeMap<(&str, MetricType), Vec<&Row>> = BTreeMap::new();
    // Rows come grouped by name: one map lookup per run of a name, not per
    // row.
    let mut run: Vec<&Row> = Vec::new();
    for r in rows {
        if run
            .first()
            .is_some_and(|f| f.kind != r.kind || f.name != r.name)
        {
            let f = run[0];
            by_key
                .entry((f.name.as_str(), f.kind))
                .or_default()
                .append(&mut run);
        }
        run.push(r);
    }
    if let Some(f) = run.first().copied() {
        by_key
            .entry((f.name.as_str(), f.kind))
            .or_default()
            .append(&mut run);
    }
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for ((name, kind), rows) in by_key {
        let d = descriptions.get(name);
        let described = d.and_then(|d| d.unit).or_else(|| unit_in_name(name));
        let unit = base_unit(kind, described);
        let stem = family_stem(name, kind, unit.map(|u| u.0));
        let names_of = |base: &str| -> Vec<String> {
            match kind {
                MetricType::Counter | MetricType::Rate => {
                    vec![base.to_owned(), format!("{base}_total")]
                }
                MetricType::Gauge => vec![base.to_owned()],
                MetricType::Histogram | MetricType::Timer => {
                    vec![
                        base.to_owned(),
                        format!("{base}_sum"),
                        format!("{base}_count"),
                        format!("{base}_bucket"),
                    ]
                }
            }
        };
        for rows in split_colliding(rows) {
            let mut base = stem.clone();
            let mut n = 2;
            // A unit suffix stays last: `x_bytes` becomes `x_2_bytes`.
            let (head, tail) = match unit {
                Some((u, _)) => (
                    stem.strip_suffix(u)
                        .and_then(|h| h.strip_suffix('_'))
                        .unwrap_or(&stem),
                    format!("_{u}"),
                ),
                None => (stem.as_str(), String::new()),
            };
            while names_of(&base).iter().any(|x| used.contains(x)) {
                base = format!("{head}_{n}{tail}");
                n += 1;
            }
            used.extend(names_of(&base));
            out.push(Family {
                base,
                name,
                kind,
                // The metric's description (`describe`), else its own name.
                help: d
                    .and_then(|d| d.help.clone())
                    .unwrap_or_else(|| name.to_owned()),
                unit,
                described,
                rows,
            });
        }
    }
    out
}

/// Whether a tag key is its own label name (no sanitising can make it
/// collide with another key).
fn clean_label(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && !k.starts_with("__")
        && !matches!(k, "quantile" | "le" | "statistic")
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The rows of one metric as groups without two equal label sets: two
/// series whose tag keys sanitise to the same labels (`a.b` and `a_b`)
/// go to separate families (`_2`, ...) rather than repeat a series.
fn split_colliding(rows: Vec<&Row>) -> Vec<Vec<&Row>> {
    if rows.len() < 2 || rows.iter().all(|r| r.tags.keys().all(|k| clean_label(k))) {
        return vec![rows];
    }
    let mut groups: Vec<(HashSet<String>, Vec<&Row>)> = Vec::new();
    for r in rows {
        let key = labels(&r.tags, None);
        match groups.iter_mut().find(|(seen, _)| !seen.contains(&key)) {
            Some((seen, g)) => {
                seen.insert(key);
                g.push(r);
            }
            None => groups.push((HashSet::from([key]), vec![r])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Whether a distribution family saw a negative value.
fn negative(f: &Family<'_>) -> bool {
    f.rows
        .iter()
        .any(|r| r.min.is_some_and(|m| m < 0.0) || r.sum < 0.0)
}

fn text_export(
    rows: &[Row],
    openmetrics: bool,
    descriptions: &BTreeMap<String, Description>,
    cfg: &ExpositionConfig,
) -> String {
    let mut out = String::new();
    let histograms = cfg.distributions == DistributionFormat::Histogram;
    for f in families(rows, descriptions) {
        let (type_name, type_str) = match f.kind {
            MetricType::Counter | MetricType::Rate if openmetrics => (f.base.clone(), "counter"),
            MetricType::Counter | MetricType::Rate => (format!("{}_total", f.base), "counter"),
            MetricType::Gauge => (f.base.clone(), "gauge"),
            MetricType::Histogram | MetricType::Timer if histograms => {
                (f.base.clone(), "histogram")
            }
            // OpenMetrics forbids negative quantiles and sums in summaries.
            MetricType::Histogram | MetricType::Timer if openmetrics && negative(&f) => {
                (f.base.clone(), "gauge")
            }
            MetricType::Histogram | MetricType::Timer => (f.base.clone(), "summary"),
        };
        let as_gauges = type_str == "gauge" && f.kind != MetricType::Gauge;
        let unit = if f.kind == MetricType::Timer {
            " (seconds)"
        } else {
            ""
        };
        let scale = f.unit.map_or(1.0, |u| u.1);
        let _ = writeln!(out, "# HELP {type_name} {}{unit}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {type_name} {type_str}");
        if openmetrics && !as_gauges {
            if let Some((u, _)) = f.unit {
                let _ = writeln!(out, "# UNIT {type_name} {u}");
            }
        }
        let bounds = if type_str == "histogram" {
            cfg.bounds_for(f.name, f.kind, f.described)
        } else {
            &[]
        };
        // OpenMetrics: a histogram with negative observations or bounds has
        // no sum (nor a count, which comes only with a sum); the +Inf bucket
        // is the count.
        let with_sum = !(openmetrics && (negative(&f) || bounds.first().is_some_and(|b| *b < 0.0)));
        let les: Vec<String> = bounds.iter().map(|b| fmt_value(*b)).collect();
        let base = f.base.as_str();
        for r in f.rows {
            let body = label_body(&r.tags);
            let body = body.as_str();
            match f.kind {
                MetricType::Counter | MetricType::Rate => {
                    let v = fmt_value(r.value * scale);
                    write_line(&mut out, base, "_total", body, None, v);
                }
                MetricType::Gauge => {
                    let v = fmt_value(r.value * scale);
                    write_line(&mut out, base, "", body, None, v);
                }
                MetricType::Histogram | MetricType::Timer if histograms => {
                    let counts = match (&r.sketch, r.min, r.max) {
                        (Some(s), Some(min), Some(max)) => {
                            s.cumulative_counts(min, max, scale, bounds)
                        }
                        _ => vec![0; bounds.len()],
                    };
                    for (le, c) in les.iter().zip(counts) {
                        let le = Some(("le", le.as_str()));
                        write_line(&mut out, base, "_bucket", body, le, c.min(r.count));
                    }
                    let inf = Some(("le", "+Inf"));
                    write_line(&mut out, base, "_bucket", body, inf, r.count);
                    if with_sum {
                        let sum = fmt_value(r.sum * scale);
                        write_line(&mut out, base, "_sum", body, None, sum);
                        write_line(&mut out, base, "_count", body, None, r.count);
                    }
                }
                MetricType::Histogram | MetricType::Timer if as_gauges => {
                    let stats = [
                        ("p50", r.p50),
                        ("p90", r.p90),
                        ("p95", r.p95),
                        ("p99", r.p99),
                        ("sum", Some(r.sum)),
                    ];
                    for (stat, v) in stats {
                        let v = fmt_value(v.map_or(f64::NAN, |v| v * scale));
                        write_line(&mut out, base, "", body, Some(("statistic", stat)), v);
                    }
                    let count = Some(("statistic", "count"));
                    write_line(&mut out, base, "", body, count, r.count);
                }
                MetricType::Histogram | MetricType::Timer => {
                    for (q, qs) in QUANTILES {
                        let v = match q {
                            0.5 => r.p50,
                            0.9 => r.p90,
                            0.95 => r.p95,
                            _ => r.p99,
                        };
                        let v = fmt_value(v.map_or(f64::NAN, |v| v * scale));
                        write_line(&mut out, base, "", body, Some(("quantile", qs)), v);
                    }
                    let sum = fmt_value(r.sum * scale);
                    write_line(&mut out, base, "_sum", body, None, sum);
                    write_line(&mut out, base, "_count", body, None, r.count);
                }
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_sanitised_and_escaped() {
        assert_eq!(sanitize_name("http.requests-total"), "http_requests_total");
        assert_eq!(sanitize_name("9lives"), "_9lives");
        assert_eq!(sanitize_name("größe"), "gr__e");
        assert_eq!(
            family_stem(
                "render-ms",
                MetricType::Timer,
                base_unit(MetricType::Timer, None).map(|u| u.0)
            ),
            "render_seconds"
        );
        assert_eq!(
            family_stem(
                "db.query",
                MetricType::Timer,
                base_unit(MetricType::Timer, None).map(|u| u.0)
            ),
            "db_query_seconds"
        );
        assert_eq!(
            family_stem(
                "reqCount.total",
                MetricType::Counter,
                base_unit(MetricType::Counter, None).map(|u| u.0)
            ),
            "req_count"
        );
        assert_eq!(
            family_stem(
                "disk.kb.used_milliseconds",
                MetricType::Gauge,
                base_unit(MetricType::Gauge, None).map(|u| u.0)
            ),
            "disk_kbyte_used_millisecond"
        );
        assert_eq!(
            family_stem(
                "error.counter",
                MetricType::Gauge,
                base_unit(MetricType::Gauge, None).map(|u| u.0)
            ),
            "error_counters"
        );
        assert_eq!(
            family_stem(
                "queue_total",
                MetricType::Gauge,
                base_unit(MetricType::Gauge, None).map(|u| u.0)
            ),
            "queue_total_value"
        );
        assert_eq!(
            family_stem(
                "temp.fahrenheit",
                MetricType::Gauge,
                base_unit(MetricType::Gauge, None).map(|u| u.0)
            ),
            "temp_fahrenheitdeg"
        );
        let tags = BTreeMap::from([
            ("a.b".to_owned(), "x\"y\\z\nw".to_owned()),
            ("a_b".to_owned(), "2".to_owned()),
            ("__name__".to_owned(), "n".to_owned()),
        ]);
        let l = labels(&tags, None);
        assert_eq!(l, r#"{tag__name__="n",a_b="x\"y\\z\nw",a_b_2="2"}"#);
    }

    use crate::{MemoryConfig, MemoryMetrics, RELATIVE_ACCURACY};
    use metrics_protocol::MetricCollector;
    use metrics_protocol::system::MetricsAggregator;
    use std::time::Duration;

    fn with(exposition: ExpositionConfig) -> MemoryMetrics {
        MemoryMetrics::with_config(MemoryConfig {
            exposition,
            ..MemoryConfig::default()
        })
        .unwrap()
    }

    /// The `(le, count)` lines of one series of a histogram family.
    fn buckets(text: &str, family: &str) -> Vec<(f64, u64)> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{family}_bucket{{")))
            .map(|l| {
                let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, l.rsplit(' ').next().unwrap().parse().unwrap())
            })
            .collect()
    }

    /// What Prometheus' `histogram_quantile` computes from cumulative
    /// buckets: linear interpolation inside the bucket holding the rank.
    fn histogram_quantile(q: f64, b: &[(f64, u64)]) -> f64 {
        let total = b.last().unwrap().1 as f64;
        let rank = q * total;
        let i = b.iter().position(|(_, c)| *c as f64 >= rank).unwrap();
        if i == b.len() - 1 {
            return b[b.len() - 2].0;
        }
        let (lo, below) = if i == 0 {
            (0.0, 0.0)
        } else {
            (b[i - 1].0, b[i - 1].1 as f64)
        };
        let (hi, c) = (b[i].0, b[i].1 as f64);
        lo + (hi - lo) * (rank - below) / (c - below)
    }

    #[test]
    fn timers_are_histograms_in_seconds_that_agree_with_our_quantiles() {
        let m = MemoryMetrics::new();
        // 1 ms to about 2.4 s, denser at the low end, exactly on some bounds.
        for i in 1..=2000u64 {
            let ms = (i * i) as f64 * 6e-4 + 1.0;
            m.record_timer(
                "db.query",
                Duration::from_secs_f64(ms / 1e3),
                &[("db", "a")],
            );
        }
        m.record_timer("db.query", Duration::from_millis(5), &[("db", "a")]);
        m.record_timer("db.query", Duration::from_millis(100), &[("db", "a")]);
        let prom = m.export_metrics(ExportFormat::Prometheus).unwrap();
        assert!(
            prom.contains("# TYPE db_query_seconds histogram\n"),
            "{prom}"
        );
        assert!(
            prom.contains("db_query_seconds_bucket{db=\"a\",le=\"0.005\"} "),
            "{prom}"
        );
        assert!(
            prom.contains("db_query_seconds_count{db=\"a\"} 2002\n"),
            "{prom}"
        );
        let b = buckets(&prom, "db_query_seconds");
        let bounds = ExpositionConfig::default().timer_buckets;
        assert_eq!(b.len(), bounds.len() + 1);
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{b:?}"
        );
        assert_eq!(b.last().unwrap(), &(f64::INFINITY, 2002));
        // Each count within the stated error: values within α of the bound may move.
        let values: Vec<f64> = (1..=2000u64)
            .map(|i| ((i * i) as f64 * 6e-4 + 1.0) / 1e3)
            .chain([0.005, 0.1])
            .collect();
        let a = RELATIVE_ACCURACY * (1.0 + 1e-9);
        for (le, c) in &b[..b.len() - 1] {
            let surely = values.iter().filter(|x| *x * (1.0 + a) <= *le).count() as u64;
            let maybe = values.iter().filter(|x| *x * (1.0 - a) <= *le).count() as u64;
            assert!(
                (surely..=maybe).contains(c),
                "le={le}: {c} not in {surely}..={maybe}"
            );
        }
        // histogram_quantile over our buckets lands in the bucket of our own
        // quantile: they agree within that bucket's width.
        let s = m.get_metric_summary("db.query", None).unwrap();
        for (q, ours) in [(0.5, s.p50), (0.95, s.p95), (0.99, s.p99)] {
            let ours = ours.unwrap() / 1e3;
            let hq = histogram_quantile(q, &b);
            let i = b.iter().position(|(le, _)| *le >= ours).unwrap();
            let lo = if i == 0 { 0.0 } else { b[i - 1].0 };
            assert!(
                (lo..=b[i].0).contains(&hq),
                "q={q}: histogram_quantile {hq}, ours {ours}, bucket ({lo}, {}]",
                b[i].0
            );
        }
        let om = m.export_metrics(ExportFormat::OpenMetrics).unwrap();
        assert!(
            om.contains("# TYPE db_query_seconds histogram\n# UNIT db_query_seconds seconds\n"),
            "{om}"
        );
        assert!(om.contains("db_query_seconds_sum{db=\"a\"} "), "{om}");
    }

    #[test]
    fn buckets_by_name_then_prefix_then_unit_and_summaries_on_request() {
        let c = ExpositionConfig {
            buckets: BTreeMap::from([
                ("db.query".to_owned(), vec![0.1, 1.0]),
                ("db.*".to_owned(), vec![0.5]),
                ("d*".to_owned(), vec![7.0, 8.0, 9.0]),
            ]),
            ..ExpositionConfig::default()
        };
        let m = with(c.clone());
        m.record_timer("db.query", Duration::from_millis(300), &[]);
        m.record_timer("db.insert", Duration::from_millis(300), &[]);
        m.record_histogram("dist", 8.0, &[]);
        m.record_histogram("payload", 3000.0, &[]);
        m.describe(
            "payload",
            MetricType::Histogram,
            Some(MetricUnit::Kilobytes),
            "Payloads",
        );
        let prom = m.export_metrics(ExportFormat::Prometheus).unwrap();
        assert_eq!(
            buckets(&prom, "db_query_seconds"),
            [(0.1, 0), (1.0, 1), (f64::INFINITY, 1)]
        );
        assert_eq!(
            buckets(&prom, "db_insert_seconds"),
            [(0.5, 1), (f64::INFINITY, 1)]
        );
        assert_eq!(
            buckets(&prom, "dist"),
            [(7.0, 0), (8.0, 1), (9.0, 1), (f64::INFINITY, 1)]
        );
        // 3000 KiB in bytes, against the byte defaults.
        let b = buckets(&prom, "payload_bytes");
        assert_eq!(b.len(), c.byte_buckets.len() + 1);
        assert_eq!(
            b.iter().find(|(le, _)| *le == 4_194_304.0),
            Some(&(4_194_304.0, 1))
        );
        assert_eq!(
            b.iter().find(|(le, _)| *le == 1_048_576.0),
            Some(&(1_048_576.0, 0))
        );
        assert!(prom.contains("payload_bytes_sum 3072000\n"), "{prom}");

        let m = with(ExpositionConfig {
            distributions: DistributionFormat::Summary,
            ..c
        });
        m.record_timer("db.query", Duration::from_millis(300), &[]);
        let prom = m.export_metrics(ExportFormat::Prometheus).unwrap();
        assert!(prom.contains("# TYPE db_query_seconds summary\n"), "{prom}");
        assert!(
            prom.contains("db_query_seconds{quantile=\"0.95\"} 0.3"),
            "{prom}"
        );
        assert!(!prom.contains("_bucket"), "{prom}");
    }

    /// Found by fuzzing: two series whose tag keys sanitise alike.
    #[test]
    fn series_whose_labels_collide_go_to_separate_families() {
        let m = MemoryMetrics::new();
        m.record_histogram("h", 1.0, &[("a.b", "x")]);
        m.record_histogram("h", 2.0, &[("a_b", "x")]);
        let prom = m.export_metrics(ExportFormat::Prometheus).unwrap();
        assert_eq!(prom.matches("_count{a_b=\"x\"} 1\n").count(), 2, "{prom}");
        assert_eq!(prom.matches(" histogram\n").count(), 2, "{prom}");
    }

    #[test]
    fn bad_bucket_lists_are_refused_naming_the_field() {
        for (b, why) in [
            (vec![], "1 to 100"),
            (vec![1.0, 1.0], "ascending"),
            (vec![2.0, 1.0], "ascending"),
            (vec![1.0, f64::INFINITY], "finite"),
            (vec![f64::NAN], "finite"),
        ] {
            let c = ExpositionConfig {
                buckets: BTreeMap::from([("x.*".to_owned(), b)]),
                ..ExpositionConfig::default()
            };
            let e = MemoryMetrics::with_config(MemoryConfig {
                exposition: c,
                ..MemoryConfig::default()
            })
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("exposition.buckets.x.*") && e.contains(why),
                "{e}"
            );
        }
        assert!(ExpositionConfig::default().check().is_ok());
    }

    #[test]
    fn negative_observations_drop_the_sum_in_openmetrics_only() {
        let c = ExpositionConfig {
            buckets: BTreeMap::from([("offset".to_owned(), vec![-1.0, 0.0, 1.0])]),
            ..ExpositionConfig::default()
        };
        let m = with(c);
        for v in [-2.0, -0.5, 0.0, 0.5, 3.0] {
            m.record_histogram("offset", v, &[]);
        }
        let om = m.export_metrics(ExportFormat::OpenMetrics).unwrap();
        assert!(om.contains("# TYPE offset histogram\n"), "{om}");
        assert_eq!(
            buckets(&om, "offset"),
            [(-1.0, 1), (0.0, 3), (1.0, 4), (f64::INFINITY, 5)]
        );
        assert!(
            !om.contains("offset_sum") && !om.contains("offset_count"),
            "{om}"
        );
        let prom = m.export_metrics(ExportFormat::Prometheus).unwrap();
        assert!(prom.contains("offset_sum 1\noffset_count 5\n"), "{prom}");
        // As summaries, OpenMetrics gets gauges with a statistic label.
        let m = with(ExpositionConfig {
            distributions: DistributionFormat::Summary,
            ..ExpositionConfig::default()
        });
        m.record_histogram("offset", -2.0, &[]);
        let om = m.export_metrics(ExportFormat::OpenMetrics).unwrap();
        assert!(om.contains("# TYPE offset gauge\n"), "{om}");
        assert!(om.contains("offset{statistic=\"sum\"} -2\n"), "{om}");
    }

    #[test]
    fn described_units_become_base_units_and_suffixes() {
        let m = MemoryMetrics::new();
        m.record_gauge("process.memory.usage", 2048.0, &[]);
        m.describe(
            "process.memory.usage",
            MetricType::Gauge,
            Some(MetricUnit::Bytes),
            "Resident set",
        );
        m.record_counter("net.io", 5.0, &[]);
        m.describe(
            "net.io",
            MetricType::Counter,
            Some(MetricUnit::Kilobytes),
            "",
        );
        m.record_gauge("cpu.busy.percent", 50.0, &[]);
        m.describe(
            "cpu.busy.percent",
            MetricType::Gauge,
            Some(MetricUnit::Percent),
            "Busy",
        );
        m.record_gauge("uptime.ms", 1500.0, &[]);
        m.describe(
            "uptime.ms",
            MetricType::Gauge,
            Some(MetricUnit::Milliseconds),
            "Up",
        );
        m.record_gauge("jobs.count", 3.0, &[]);
        m.describe(
            "jobs.count",
            MetricType::Gauge,
            Some(MetricUnit::Count),
            "Jobs",
        );
        let prom = m.export_metrics(ExportFormat::Prometheus).unwrap();
        for line in [
            "# HELP process_memory_usage_bytes Resident set\n",
            "process_memory_usage_bytes 2048\n",
            "# HELP net_io_bytes_total net.io\n",
            "net_io_bytes_total 5120\n",
            "cpu_busy_ratio 0.5\n",
            "uptime_seconds 1.5\n",
        ] {
            assert!(prom.contains(line), "{line:?} in\n{prom}");
        }
        let om = m.export_metrics(ExportFormat::OpenMetrics).unwrap();
        for line in [
            "# TYPE process_memory_usage_bytes gauge\n# UNIT process_memory_usage_bytes bytes\n",
            "# TYPE net_io_bytes counter\n# UNIT net_io_bytes bytes\nnet_io_bytes_total 5120\n",
            "# UNIT cpu_busy_ratio ratio\n",
        ] {
            assert!(om.contains(line), "{line:?} in\n{om}");
        }
        assert!(!om.contains("# UNIT jobs"), "{om}");
        // A base unit as the last word of the name counts as described.
        let m = MemoryMetrics::new();
        m.record_histogram("http.response.bytes", 3000.0, &[]);
        let om = m.export_metrics(ExportFormat::OpenMetrics).unwrap();
        assert!(om.contains("# UNIT http_response_bytes bytes\n"), "{om}");
        assert!(
            om.contains("http_response_bytes_bucket{le=\"4096\"} 1\n"),
            "{om}"
        );
    }
}
