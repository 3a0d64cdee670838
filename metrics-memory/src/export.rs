//! Exports: JSON, CSV, Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! Prometheus and OpenMetrics mapping:
//! - names: every character outside `[a-zA-Z0-9_]` becomes `_`, a leading
//!   digit gets a `_` in front; the original name is the HELP text;
//! - counters end in `_total`; timers are summaries in seconds ending in
//!   `_seconds`; histograms are summaries in their own unit (quantiles 0.5,
//!   0.9, 0.95, 0.99 from the sketch, exact `_sum` and `_count`);
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
//! - in OpenMetrics, which forbids negative quantiles and sums in
//!   summaries, a histogram that saw a negative value is a gauge family with
//!   a `statistic` label (p50, p90, p95, p99, sum, count);
//! - label names are sanitised the same way (a tag `__x` becomes `tag__x`;
//!   tags `quantile`, `le` and `statistic` become `tag_quantile`, ..., two tags that map
//!   to one label get `_2`); label values are escaped (`\\`, `\"`, `\n`).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use chrono::Utc;
use metrics_protocol::system::ExportFormat;
use metrics_protocol::{MetricType, MetricsError};
use serde::Serialize;

use crate::MemoryMetrics;

const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")];

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
}

#[derive(Serialize)]
struct JsonExport {
    generated_at: chrono::DateTime<Utc>,
    series: Vec<Row>,
    dropped: BTreeMap<metrics_protocol::DropReason, u64>,
    overflowed_metrics: Vec<String>,
}

fn rows(m: &MemoryMetrics) -> Vec<Row> {
    let mut out = Vec::new();
    for s in m.registry.all() {
        let (current, total) = s.read();
        let t = &total;
        let dist = s.is_distribution();
        let q = |x: f64| if dist { t.quantile(x) } else { None };
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
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
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
    let rows = rows(m);
    match format {
        ExportFormat::Json => serde_json::to_string_pretty(&JsonExport {
            generated_at: Utc::now(),
            series: rows,
            dropped: m.shared.drops.snapshot(),
            overflowed_metrics: m.registry.overflowed(),
        })
        .map_err(|e| MetricsError::Export(e.to_string())),
        ExportFormat::Csv => csv_export(&rows),
        ExportFormat::Prometheus => Ok(text_export(&rows, false, &m.descriptions())),
        ExportFormat::OpenMetrics => Ok(text_export(&rows, true, &m.descriptions())),
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

/// The family name of a metric: sanitised, lint-clean, with the suffixes
/// its type calls for handled (see the module docs).
fn family_stem(name: &str, kind: MetricType) -> String {
    let snaked = snake(&sanitize_name(name));
    let mut tokens: Vec<&str> = snaked.split('_').collect();
    if kind == MetricType::Timer
        && tokens.len() > 1
        && tokens.last().is_some_and(|t| TIME_TOKENS.contains(t))
    {
        tokens.pop();
    }
    let mut stem = tokens
        .iter()
        .map(|t| lint_token(t))
        .collect::<Vec<_>>()
        .join("_");
    match kind {
        MetricType::Counter | MetricType::Rate => {
            while let Some(s) = stem.strip_suffix("_total") {
                stem = s.to_owned();
            }
        }
        MetricType::Timer => stem.push_str("_seconds"),
        MetricType::Gauge | MetricType::Histogram => {
            if ["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|x| stem.ends_with(x))
            {
                stem.push_str("_value");
            }
        }
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

fn labels(tags: &BTreeMap<String, String>, extra: Option<(&str, &str)>) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    let mut pairs: Vec<(String, &str)> = Vec::new();
    for (k, v) in tags {
        let mut key = sanitize_label(k);
        let mut n = 2;
        while !seen.insert(key.clone()) {
            key = format!("{}_{n}", sanitize_label(k));
            n += 1;
        }
        pairs.push((key, v));
    }
    if let Some((k, v)) = extra {
        pairs.push((k.to_owned(), v));
    }
    if pairs.is_empty() {
        return out;
    }
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(v, &mut out);
        out.push('"');
    }
    out.push('}');
    out
}

struct Family<'r> {
    base: String,
    kind: MetricType,
    help: String,
    rows: Vec<&'r Row>,
}

fn families<'r>(rows: &'r [Row], helps: &BTreeMap<String, String>) -> Vec<Family<'r>> {
    let mut by_key: BTreeMap<(&str, MetricType), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_key.entry((r.name.as_str(), r.kind)).or_default().push(r);
    }
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for ((name, kind), rows) in by_key {
        let stem = family_stem(name, kind);
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
                    ]
                }
            }
        };
        let mut base = stem.clone();
        let mut n = 2;
        while names_of(&base).iter().any(|x| used.contains(x)) {
            base = format!("{stem}_{n}");
            n += 1;
        }
        used.extend(names_of(&base));
        out.push(Family {
            base,
            kind,
            // The metric's description (`describe`), else its own name.
            help: helps.get(name).cloned().unwrap_or_else(|| name.to_owned()),
            rows,
        });
    }
    out
}

/// Whether a distribution family saw a negative value.
fn negative(f: &Family<'_>) -> bool {
    f.rows
        .iter()
        .any(|r| r.min.is_some_and(|m| m < 0.0) || r.sum < 0.0)
}

fn text_export(rows: &[Row], openmetrics: bool, helps: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for f in families(rows, helps) {
        let (type_name, type_str) = match f.kind {
            MetricType::Counter | MetricType::Rate if openmetrics => (f.base.clone(), "counter"),
            MetricType::Counter | MetricType::Rate => (format!("{}_total", f.base), "counter"),
            MetricType::Gauge => (f.base.clone(), "gauge"),
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
        let _ = writeln!(out, "# HELP {type_name} {}{unit}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {type_name} {type_str}");
        for r in f.rows {
            match f.kind {
                MetricType::Counter | MetricType::Rate => {
                    let _ = writeln!(
                        out,
                        "{}_total{} {}",
                        f.base,
                        labels(&r.tags, None),
                        fmt_value(r.value)
                    );
                }
                MetricType::Gauge => {
                    let _ = writeln!(
                        out,
                        "{}{} {}",
                        f.base,
                        labels(&r.tags, None),
                        fmt_value(r.value)
                    );
                }
                MetricType::Histogram | MetricType::Timer if as_gauges => {
                    let stats = [
                        ("p50", r.p50),
                        ("p90", r.p90),
                        ("p95", r.p95),
                        ("p99", r.p99),
                        ("sum", Some(r.sum)),
                        ("count", Some(r.count as f64)),
                    ];
                    for (stat, v) in stats {
                        let _ = writeln!(
                            out,
                            "{}{} {}",
                            f.base,
                            labels(&r.tags, Some(("statistic", stat))),
                            fmt_value(v.unwrap_or(f64::NAN))
                        );
                    }
                }
                MetricType::Histogram | MetricType::Timer => {
                    let scale = if f.kind == MetricType::Timer {
                        1e-3
                    } else {
                        1.0
                    };
                    for (q, qs) in QUANTILES {
                        let v = match q {
                            0.5 => r.p50,
                            0.9 => r.p90,
                            0.95 => r.p95,
                            _ => r.p99,
                        };
                        let v = v.map_or(f64::NAN, |v| v * scale);
                        let _ = writeln!(
                            out,
                            "{}{} {}",
                            f.base,
                            labels(&r.tags, Some(("quantile", qs))),
                            fmt_value(v)
                        );
                    }
                    let l = labels(&r.tags, None);
                    let _ = writeln!(out, "{}_sum{l} {}", f.base, fmt_value(r.sum * scale));
                    let _ = writeln!(out, "{}_count{l} {}", f.base, r.count);
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
            family_stem("render-ms", MetricType::Timer),
            "render_seconds"
        );
        assert_eq!(
            family_stem("db.query", MetricType::Timer),
            "db_query_seconds"
        );
        assert_eq!(
            family_stem("reqCount.total", MetricType::Counter),
            "req_count"
        );
        assert_eq!(
            family_stem("disk.kb.used_milliseconds", MetricType::Gauge),
            "disk_kbyte_used_millisecond"
        );
        assert_eq!(
            family_stem("error.counter", MetricType::Gauge),
            "error_counters"
        );
        assert_eq!(
            family_stem("queue_total", MetricType::Gauge),
            "queue_total_value"
        );
        assert_eq!(
            family_stem("temp.fahrenheit", MetricType::Gauge),
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
}
