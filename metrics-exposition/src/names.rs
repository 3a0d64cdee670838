//! Prometheus and OpenMetrics names: sanitising, lint-clean words, base
//! units and suffixes, escaping and number formatting.

use metrics_protocol::{MetricType, MetricUnit};

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
pub(crate) fn snake(s: &str) -> String {
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

pub(crate) const BASE_UNITS: [&str; 10] = [
    "amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds",
    "volts",
];
pub(crate) const OTHER_UNITS: [&str; 14] = [
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
pub(crate) const UNIT_PREFIXES: [&str; 18] = [
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// Whether promtool's linter would call this token a non-base unit.
pub(crate) fn non_base_unit(t: &str) -> bool {
    let is_unit = |x: &str| BASE_UNITS.contains(&x) || OTHER_UNITS.contains(&x);
    OTHER_UNITS.contains(&t)
        || UNIT_PREFIXES
            .iter()
            .any(|p| t.strip_prefix(p).is_some_and(is_unit))
}

/// One `_`-separated token made acceptable to promtool's linter.
pub(crate) fn lint_token(t: &str) -> String {
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

pub(crate) const TIME_TOKENS: [&str; 12] = [
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
pub(crate) const BYTE_TOKENS: [&str; 8] = [
    "b",
    "byte",
    "bytes",
    "kb",
    "kilobytes",
    "mb",
    "megabytes",
    "kib",
];
pub(crate) const RATIO_TOKENS: [&str; 4] = ["percent", "pct", "percentage", "ratio"];

/// The base unit a metric is exported in: the name suffix (and OpenMetrics
/// `UNIT`) and the factor from the recorded unit. Timers record
/// milliseconds and export seconds; other metrics take the unit given to
/// `describe`: time in seconds, sizes in bytes, percent as a 0..1 ratio.
/// Counts and rates have no unit.
pub(crate) fn base_unit(kind: MetricType, unit: Option<MetricUnit>) -> Option<(&'static str, f64)> {
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

pub(crate) use metrics_query::unit_in_name;

/// The family name of a metric: sanitised, lint-clean, with the suffixes
/// its type and unit call for (see the module docs).
pub(crate) fn family_stem(name: &str, kind: MetricType, suffix: Option<&str>) -> String {
    let snaked = snake(&sanitize_name(name));
    let mut tokens: Vec<&str> = snaked.split('_').collect();
    if matches!(kind, MetricType::Counter | MetricType::Rate) {
        // Never down to nothing: `_total` alone stays the family name.
        while tokens.last() == Some(&"total")
            && tokens[..tokens.len() - 1].iter().any(|t| !t.is_empty())
        {
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
        // Never down to nothing: a counter named `_total` keeps it as its
        // family name (its sample is then `_total_total`).
        while let Some(s) = stem.strip_suffix("_total").filter(|s| !s.is_empty()) {
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
pub(crate) fn sanitize_label(key: &str) -> String {
    let mut k = snake(&sanitize_name(key));
    if k.starts_with("__") {
        k.insert_str(0, "tag");
    }
    if k == "quantile" || k == "le" || k == "statistic" {
        k.insert_str(0, "tag_");
    }
    k
}

pub(crate) fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub(crate) fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

pub(crate) fn fmt_value(v: f64) -> String {
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

/// Appends `v` as [`fmt_value`] writes it, without a temporary string:
/// whole numbers (the usual counter and gauge values) through `itoa`.
pub(crate) fn write_value(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    // Whole numbers below 1e15 (exactly representable as i64) are written
    // by `Display` as their digits alone, as `itoa` writes them; -0.0 is
    // `-0`.
    if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else if v.is_finite() && (v == 0.0 || (1e-6..1e15).contains(&v.abs())) {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(&fmt_value(v));
    }
}
