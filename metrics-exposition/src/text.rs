//! The text formats (Prometheus 0.0.4, OpenMetrics 1.0): families, label
//! sets, histogram buckets, summaries.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use metrics_protocol::{MetricType, MetricUnit};
use metrics_query::snapshot::Snapshot;

use crate::config::{DistributionFormat, ExpositionConfig};
use crate::names::*;
use crate::rows::{QUANTILES, Row};

/// Calls `f` with each label of `tags` (sorted by key): its name,
/// sanitised and made distinct, and its value as recorded (unescaped).
/// What every encoder of Prometheus labels reads, text or protobuf.
pub(crate) fn each_label<'t>(
    tags: impl Iterator<Item = (&'t str, &'t str)> + Clone,
    mut f: impl FnMut(&str, &'t str),
) {
    // Keys that are their own label names cannot collide (a series' keys
    // are distinct): no set of seen names needed.
    if tags.clone().all(|(k, _)| clean_label(k)) {
        for (k, v) in tags {
            f(k, v);
        }
        return;
    }
    let mut seen = HashSet::new();
    for (k, v) in tags {
        let mut key = sanitize_label(k);
        let mut n = 2;
        while !seen.insert(key.clone()) {
            key = format!("{}_{n}", sanitize_label(k));
            n += 1;
        }
        f(&key, v);
    }
}

/// The labels of `tags` (sorted by key), sanitised and escaped, without
/// braces: `k="v",k2="v2"` (empty without tags), appended to `out`.
/// Rendered once per series and reused for each of its lines.
pub(crate) fn label_body<'t>(
    tags: impl Iterator<Item = (&'t str, &'t str)> + Clone,
    out: &mut String,
) {
    let mut first = true;
    each_label(tags, |k, v| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(v, out);
        out.push('"');
    });
}

/// Appends `{body,extra}` (nothing when both are empty).
pub(crate) fn write_labels(out: &mut String, body: &str, extra: Option<(&str, &str)>) {
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

/// A sample's value.
#[derive(Clone, Copy)]
pub(crate) enum Value {
    /// A count.
    Int(u64),
    /// Any number, written as [`fmt_value`] would.
    Float(f64),
}

/// One sample line: `name{labels} value`.
pub(crate) fn write_line(
    out: &mut String,
    name: &str,
    suffix: &str,
    body: &str,
    extra: Option<(&str, &str)>,
    value: Value,
) {
    out.push_str(name);
    out.push_str(suffix);
    write_labels(out, body, extra);
    out.push(' ');
    match value {
        Value::Int(n) => out.push_str(itoa::Buffer::new().format(n)),
        Value::Float(v) => write_value(out, v),
    }
    out.push('\n');
}

/// The labels of `tags` with braces (see [`label_body`]).
pub(crate) fn labels<'t>(
    tags: impl Iterator<Item = (&'t str, &'t str)> + Clone,
    extra: Option<(&str, &str)>,
) -> String {
    let mut body = String::new();
    label_body(tags, &mut body);
    let mut out = String::new();
    write_labels(&mut out, &body, extra);
    out
}

/// One family of the text formats: the series of one metric under one
/// exported name.
pub(crate) struct Family<'r> {
    /// The exported name, without a sample suffix (`_total`, `_bucket`).
    pub(crate) base: String,
    /// The metric's name as recorded.
    pub(crate) name: &'r str,
    pub(crate) kind: MetricType,
    help: String,
    /// The base unit's name (`seconds`, `bytes`, `ratio`) and the factor
    /// from the recorded unit.
    pub(crate) unit: Option<(&'static str, f64)>,
    pub(crate) described: Option<MetricUnit>,
    pub(crate) rows: Vec<&'r Row<'r>>,
}

pub(crate) fn families<'r>(rows: &'r [Row<'r>], snap: &dyn Snapshot) -> Vec<Family<'r>> {
    let mut by_key: BTreeMap<(&str, MetricType), Vec<&Row<'r>>> = BTreeMap::new();
    // Rows come grouped by name: one map lookup per run of a name, not per
    // row.
    let mut run: Vec<&Row<'r>> = Vec::new();
    for r in rows {
        if run
            .first()
            .is_some_and(|f| f.kind != r.kind || f.name != r.name)
        {
            let f = run[0];
            by_key.entry((f.name, f.kind)).or_default().append(&mut run);
        }
        run.push(r);
    }
    if let Some(f) = run.first().copied() {
        by_key.entry((f.name, f.kind)).or_default().append(&mut run);
    }
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for ((name, kind), rows) in by_key {
        let d = snap.description(name);
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
                help: d.and_then(|d| d.help).unwrap_or(name).to_owned(),
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
pub(crate) fn clean_label(k: &str) -> bool {
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
pub(crate) fn split_colliding<'r>(rows: Vec<&'r Row<'r>>) -> Vec<Vec<&'r Row<'r>>> {
    if rows.len() < 2
        || rows
            .iter()
            .all(|r| r.tags.pairs().all(|(k, _)| clean_label(k)))
    {
        return vec![rows];
    }
    let mut groups: Vec<(HashSet<String>, Vec<&Row<'r>>)> = Vec::new();
    for r in rows {
        let key = labels(r.tags.pairs(), None);
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
pub(crate) fn negative(f: &Family<'_>) -> bool {
    f.rows
        .iter()
        .any(|r| r.min.is_some_and(|m| m < 0.0) || r.sum < 0.0)
}

/// The Prometheus (or, with `openmetrics`, OpenMetrics) text of `rows`,
/// appended to `out`.
pub(crate) fn text_into(
    out: &mut String,
    rows: &[Row<'_>],
    openmetrics: bool,
    snap: &dyn Snapshot,
    cfg: &ExpositionConfig,
) {
    let histograms = cfg.distributions == DistributionFormat::Histogram;
    out.reserve(text_size_hint(rows, cfg, histograms));
    for f in families(rows, snap) {
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
        if openmetrics
            && !as_gauges
            && let Some((u, _)) = f.unit
        {
            let _ = writeln!(out, "# UNIT {type_name} {u}");
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
        let mut body = String::new();
        for r in f.rows {
            body.clear();
            label_body(r.tags.pairs(), &mut body);
            let body = body.as_str();
            match f.kind {
                MetricType::Counter | MetricType::Rate => {
                    let v = Value::Float(r.value * scale);
                    write_line(out, base, "_total", body, None, v);
                }
                MetricType::Gauge => {
                    let v = Value::Float(r.value * scale);
                    write_line(out, base, "", body, None, v);
                }
                MetricType::Histogram | MetricType::Timer if histograms => {
                    let counts = r.buckets.as_deref().unwrap_or(&[]);
                    for (i, le) in les.iter().enumerate() {
                        let c = counts.get(i).copied().unwrap_or(0).min(r.count);
                        let le = Some(("le", le.as_str()));
                        write_line(out, base, "_bucket", body, le, Value::Int(c));
                    }
                    let inf = Some(("le", "+Inf"));
                    write_line(out, base, "_bucket", body, inf, Value::Int(r.count));
                    if with_sum {
                        let sum = Value::Float(r.sum * scale);
                        write_line(out, base, "_sum", body, None, sum);
                        write_line(out, base, "_count", body, None, Value::Int(r.count));
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
                        let v = Value::Float(v.map_or(f64::NAN, |v| v * scale));
                        write_line(out, base, "", body, Some(("statistic", stat)), v);
                    }
                    let count = Some(("statistic", "count"));
                    write_line(out, base, "", body, count, Value::Int(r.count));
                }
                MetricType::Histogram | MetricType::Timer => {
                    for (q, qs) in QUANTILES {
                        let v = match q {
                            0.5 => r.p50,
                            0.9 => r.p90,
                            0.95 => r.p95,
                            _ => r.p99,
                        };
                        let v = Value::Float(v.map_or(f64::NAN, |v| v * scale));
                        write_line(out, base, "", body, Some(("quantile", qs)), v);
                    }
                    let sum = Value::Float(r.sum * scale);
                    write_line(out, base, "_sum", body, None, sum);
                    write_line(out, base, "_count", body, None, Value::Int(r.count));
                }
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
}

/// About the size of a text export, so its buffer is allocated once: a
/// line per counter or gauge, a line per bucket and three more per
/// histogram, six per summary, at the length of the longest label set
/// plus a name and a value.
fn text_size_hint(rows: &[Row<'_>], cfg: &ExpositionConfig, histograms: bool) -> usize {
    let lines: usize = rows
        .iter()
        .map(|r| match r.kind {
            MetricType::Histogram | MetricType::Timer if histograms => {
                r.buckets
                    .as_ref()
                    .map_or(cfg.histogram_buckets.len(), Vec::len)
                    + 4
            }
            MetricType::Histogram | MetricType::Timer => 6,
            _ => 1,
        })
        .sum();
    let per_line = rows.first().map_or(0, |r| {
        r.name.len()
            + r.tags
                .pairs()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>()
    }) + 40;
    lines.saturating_mul(per_line)
}
