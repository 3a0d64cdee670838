//! The text formats (Prometheus 0.0.4, OpenMetrics 1.0): families, label
//! sets, histogram buckets, summaries.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use metrics_protocol::{MetricType, MetricUnit};

use super::*;

/// The labels of `tags`, sanitised and escaped, without braces:
/// `k="v",k2="v2"` (empty without tags). Rendered once per series and
/// reused for each of its lines.
pub(super) fn label_body(tags: &BTreeMap<String, String>) -> String {
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
pub(super) fn write_labels(out: &mut String, body: &str, extra: Option<(&str, &str)>) {
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
pub(super) fn write_line(
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

pub(super) fn labels(tags: &BTreeMap<String, String>, extra: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    write_labels(&mut out, &label_body(tags), extra);
    out
}

pub(super) struct Family<'r> {
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

pub(super) fn families<'r>(
    rows: &'r [Row],
    descriptions: &BTreeMap<String, Description>,
) -> Vec<Family<'r>> {
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
pub(super) fn clean_label(k: &str) -> bool {
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
pub(super) fn split_colliding(rows: Vec<&Row>) -> Vec<Vec<&Row>> {
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
pub(super) fn negative(f: &Family<'_>) -> bool {
    f.rows
        .iter()
        .any(|r| r.min.is_some_and(|m| m < 0.0) || r.sum < 0.0)
}

pub(super) fn text_export(
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
