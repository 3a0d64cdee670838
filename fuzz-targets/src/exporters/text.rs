//! The strict checker of the text formats (Prometheus text 0.0.4,
//! OpenMetrics 1.0): parses an exposition (panicking on anything
//! malformed), checks histogram families and compares each family's rows
//! with the series the backend reports.

use std::collections::{HashMap, HashSet};

use metrics_memory::SeriesSnapshot;
use metrics_protocol::MetricType;

use super::parse_f64;

/// One sample line of the text formats.
#[derive(Debug)]
struct Line {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A family: its HELP text, TYPE and samples.
#[derive(Debug, Default)]
struct Family {
    help: String,
    kind: String,
    unit: Option<String>,
    lines: Vec<Line>,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unescape_help(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `name{k="v",...} value`: strict, panics on anything malformed.
fn parse_sample(line: &str) -> Line {
    let end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value on {line:?}"));
    let name = &line[..end];
    assert!(valid_name(name), "bad metric name in {line:?}");
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest
                .find('=')
                .unwrap_or_else(|| panic!("label without = in {line:?}"));
            let key = &rest[..eq];
            assert!(valid_label(key), "bad label name {key:?} in {line:?}");
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("unquoted label value in {line:?}"));
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let close = loop {
                match chars.next() {
                    None => panic!("unterminated label value in {line:?}"),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    Some((_, c)) => {
                        assert!(c != '\n', "raw newline in a label value");
                        value.push(c);
                    }
                }
            };
            labels.push((key.to_owned(), value));
            rest = &rest[close + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else {
                assert!(rest.starts_with('}'), "expected , or }} in {line:?}");
            }
        }
    }
    let keys: HashSet<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), labels.len(), "a label twice in {line:?}");
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value in {line:?}"));
    assert!(!value.contains(' '), "extra field in {line:?}");
    let value = parse_f64(value).unwrap_or_else(|| panic!("bad value in {line:?}"));
    Line {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// Parses the exposition: HELP and TYPE once per family and before its
/// samples, every sample of the family's names, `# EOF` last in
/// OpenMetrics. Returns the families by their TYPE name.
fn parse_text(text: &str, openmetrics: bool) -> Vec<Family> {
    assert!(text.is_empty() || text.ends_with('\n'), "final newline");
    let mut families: Vec<(String, Family)> = Vec::new();
    let mut declared: HashSet<String> = HashSet::new();
    let mut eof = false;
    for line in text.lines() {
        assert!(!eof, "text after # EOF");
        if line == "# EOF" {
            assert!(openmetrics, "# EOF in Prometheus text");
            eof = true;
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(valid_name(name), "bad HELP name {name:?}");
            assert!(declared.insert(name.to_owned()), "family {name} twice");
            families.push((
                name.to_owned(),
                Family {
                    help: unescape_help(help),
                    ..Family::default()
                },
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a type");
            let (fam, f) = families.last_mut().expect("TYPE after its HELP");
            assert_eq!(fam, name, "TYPE of another family than its HELP");
            assert!(
                f.kind.is_empty() && f.lines.is_empty(),
                "TYPE twice or late"
            );
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "type {kind}"
            );
            f.kind = kind.to_owned();
        } else if let Some(rest) = line.strip_prefix("# UNIT ") {
            assert!(openmetrics, "# UNIT in Prometheus text");
            let (name, unit) = rest.split_once(' ').expect("UNIT has a unit");
            let (fam, f) = families.last_mut().expect("UNIT after its HELP");
            assert_eq!(fam, name, "UNIT of another family than its HELP");
            assert!(
                !f.kind.is_empty() && f.unit.is_none() && f.lines.is_empty(),
                "UNIT before TYPE, twice or late"
            );
            assert!(
                ["seconds", "bytes", "ratio"].contains(&unit),
                "unexpected unit {unit:?}"
            );
            assert!(
                fam.ends_with(&format!("_{unit}")),
                "family {fam} does not end in its unit {unit}"
            );
            f.unit = Some(unit.to_owned());
        } else {
            assert!(!line.starts_with('#'), "unknown comment {line:?}");
            let s = parse_sample(line);
            let (fam, f) = families.last_mut().expect("a sample before any family");
            let base = if f.kind == "counter" && !openmetrics {
                fam.strip_suffix("_total")
                    .expect("counter family ends _total")
            } else {
                fam.as_str()
            };
            let ok = match f.kind.as_str() {
                "counter" => s.name == format!("{base}_total"),
                "gauge" => s.name == base,
                "summary" => {
                    s.name == base
                        || s.name == format!("{base}_sum")
                        || s.name == format!("{base}_count")
                }
                "histogram" => {
                    s.name == format!("{base}_bucket")
                        || s.name == format!("{base}_sum")
                        || s.name == format!("{base}_count")
                }
                _ => false,
            };
            assert!(ok, "sample {} outside family {fam} ({})", s.name, f.kind);
            f.lines.push(s);
        }
    }
    assert_eq!(eof, openmetrics, "# EOF ends OpenMetrics, only it");
    for (fam, f) in &families {
        if f.kind == "histogram" {
            check_histogram(fam, f, openmetrics);
        }
    }
    families.into_iter().map(|(_, f)| f).collect()
}

/// A histogram family, per series (its labels without `le`): buckets in
/// ascending `le` order ending in `+Inf`, whole cumulative counts that
/// never decrease, `_count` equal to the `+Inf` bucket, `_sum` and `_count`
/// together after the buckets; in OpenMetrics no `_sum` beside a negative
/// bound or a negative sum, and in Prometheus text both always.
fn check_histogram(fam: &str, f: &Family, openmetrics: bool) {
    struct Series {
        les: Vec<f64>,
        counts: Vec<f64>,
        sum: Option<f64>,
        count: Option<f64>,
    }
    let mut by: Vec<(Vec<(String, String)>, Series)> = Vec::new();
    for l in &f.lines {
        let key: Vec<(String, String)> = l
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        let i = match by.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                by.push((
                    key,
                    Series {
                        les: Vec::new(),
                        counts: Vec::new(),
                        sum: None,
                        count: None,
                    },
                ));
                by.len() - 1
            }
        };
        let s = &mut by[i].1;
        if l.name.ends_with("_bucket") {
            let le = l
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .unwrap_or_else(|| panic!("{fam}: a bucket without le"));
            let le = parse_f64(&le.1).unwrap_or_else(|| panic!("{fam}: le {:?}", le.1));
            assert!(!le.is_nan(), "{fam}: le NaN");
            assert!(
                s.sum.is_none() && s.count.is_none(),
                "{fam}: a bucket after _sum or _count (a series twice?)"
            );
            assert!(
                s.les.last().is_none_or(|p| *p < le),
                "{fam}: le {le} not ascending after {:?}",
                s.les
            );
            assert!(
                l.value >= 0.0 && l.value.fract() == 0.0,
                "{fam}: bucket count {}",
                l.value
            );
            assert!(
                s.counts.last().is_none_or(|p| *p <= l.value),
                "{fam}: cumulative count falls: {:?} then {}",
                s.counts,
                l.value
            );
            s.les.push(le);
            s.counts.push(l.value);
        } else {
            assert!(
                l.labels.iter().all(|(k, _)| k != "le"),
                "{fam}: le on {}",
                l.name
            );
            let slot = if l.name.ends_with("_sum") {
                &mut s.sum
            } else {
                &mut s.count
            };
            assert!(slot.is_none(), "{fam}: {} twice", l.name);
            *slot = Some(l.value);
        }
    }
    for (key, s) in &by {
        assert_eq!(
            s.les.last(),
            Some(&f64::INFINITY),
            "{fam}{key:?}: no +Inf bucket"
        );
        let total = s.counts[s.counts.len() - 1];
        assert_eq!(
            s.sum.is_some(),
            s.count.is_some(),
            "{fam}{key:?}: _sum and _count come together"
        );
        if let Some(c) = s.count {
            assert_eq!(c, total, "{fam}{key:?}: _count is not the +Inf bucket");
        }
        if openmetrics {
            if let Some(sum) = s.sum {
                assert!(
                    s.les[0] >= 0.0 && (sum >= 0.0 || sum.is_nan()),
                    "{fam}{key:?}: OpenMetrics _sum {sum} beside negative observations"
                );
            }
        } else {
            assert!(s.sum.is_some(), "{fam}{key:?}: no _sum in Prometheus text");
        }
    }
}

/// The label values of a line without the one label the exporter adds.
fn values_without(labels: &[(String, String)], extra: &str) -> Vec<String> {
    let mut v: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k != extra)
        .map(|(_, v)| v.clone())
        .collect();
    v.sort();
    v
}

/// What a family or a series is, as far as the text shows it: a counter,
/// a gauge, or a distribution (a histogram or a timer, shown as
/// [`MetricType::Histogram`]: the text does not tell them apart).
type Class = MetricType;

fn class_of_family(f: &Family) -> Class {
    match f.kind.as_str() {
        "counter" => MetricType::Counter,
        "summary" | "histogram" => MetricType::Histogram,
        // Tags named `statistic` are renamed by the exporter, so the label
        // marks a distribution exported as gauges.
        _ if f
            .lines
            .iter()
            .any(|l| l.labels.iter().any(|(k, _)| k == "statistic")) =>
        {
            MetricType::Histogram
        }
        _ => MetricType::Gauge,
    }
}

fn class_of_series(s: &SeriesSnapshot) -> Class {
    match s.metric_type {
        MetricType::Counter | MetricType::Rate => MetricType::Counter,
        MetricType::Gauge => MetricType::Gauge,
        MetricType::Histogram | MetricType::Timer => MetricType::Histogram,
    }
}

/// The (label values, value) rows a family shows for its series: the value
/// of counters and gauges, the count of distributions.
fn family_rows(f: &Family, class: Class) -> Vec<(Vec<String>, f64)> {
    let mut got = Vec::new();
    for l in &f.lines {
        match class {
            MetricType::Counter | MetricType::Gauge | MetricType::Rate => {
                got.push((values_without(&l.labels, ""), l.value))
            }
            MetricType::Histogram if f.kind == "histogram" => {
                let inf = l.labels.iter().any(|(k, v)| k == "le" && v == "+Inf");
                if l.name.ends_with("_bucket") && inf {
                    got.push((values_without(&l.labels, "le"), l.value));
                }
            }
            MetricType::Histogram if f.kind == "summary" => {
                if l.name.ends_with("_count") {
                    got.push((values_without(&l.labels, ""), l.value));
                } else if !l.name.ends_with("_sum") {
                    assert!(
                        l.labels.iter().any(|(k, _)| k == "quantile"),
                        "quantile line"
                    );
                }
            }
            MetricType::Histogram | MetricType::Timer => {
                let stat = l
                    .labels
                    .iter()
                    .find(|(k, _)| k == "statistic")
                    .expect("a statistic label");
                if stat.1 == "count" {
                    got.push((values_without(&l.labels, "statistic"), l.value));
                }
            }
        }
    }
    got
}

pub(super) fn check_text(text: &str, series: &[SeriesSnapshot], openmetrics: bool) {
    let families = parse_text(text, openmetrics);
    // HELP is the original name (" (seconds)" added for timers), so it does
    // not name one family: a timer `x` and a histogram `x (seconds)` share
    // it. Compare by (HELP, class): the rows of every family with that key
    // together against the series with that key.
    type Rows = Vec<(Vec<String>, f64)>;
    let mut want: HashMap<(String, Class), Rows> = HashMap::new();
    for s in series {
        let help = if s.metric_type == MetricType::Timer {
            format!("{} (seconds)", s.name)
        } else {
            s.name.clone()
        };
        let mut tv: Vec<String> = s.tags.iter().map(|(_, v)| v.clone()).collect();
        tv.sort();
        let class = class_of_series(s);
        let v = match class {
            MetricType::Histogram => s.count as f64,
            _ => s.value,
        };
        want.entry((help, class)).or_default().push((tv, v));
    }
    let mut got: HashMap<(String, Class), Rows> = HashMap::new();
    for f in &families {
        let class = class_of_family(f);
        let rows = family_rows(f, class);
        assert!(!rows.is_empty(), "family {:?} without series", f.help);
        got.entry((f.help.clone(), class)).or_default().extend(rows);
    }
    let by =
        |a: &(Vec<String>, f64), b: &(Vec<String>, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    for rows in want.values_mut().chain(got.values_mut()) {
        rows.sort_by(by);
    }
    let mut keys: Vec<&(String, Class)> = want.keys().chain(got.keys()).collect();
    keys.sort_by(|a, b| (&a.0, a.1 as u8).cmp(&(&b.0, b.1 as u8)));
    keys.dedup();
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        assert!(
            w.is_some(),
            "family {:?} ({:?}) with samples but no series in\n{text}",
            k.0,
            k.1
        );
        assert!(
            g.is_some(),
            "no family for {:?} ({:?}) in\n{text}",
            k.0,
            k.1
        );
        assert_eq!(g, w, "family {:?} ({:?})", k.0, k.1);
    }
}
