//! Sanitising and rendering StatsD lines.
//!
//! Every character a StatsD parser treats specially (`:`, `|`, `@`, `#`,
//! `,`, and in name-embedded tags `;` and `=`), every whitespace and every
//! control character becomes `_`, in names, tag keys and tag values alike,
//! so no input can end a line early, start a second metric, or add a field.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::TagFlavor;

/// Replaces reserved characters with `_`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, ':' | '|' | '@' | '#' | ',' | ';' | '=')
                || c.is_whitespace()
                || c.is_control()
            {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The constant parts of every line of one series: the head before the
/// value's `:`, the tail after the type, in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    text: Box<str>,
    split: usize,
}

impl Rendered {
    /// Prefix, name and (Etsy or folded) tags.
    pub fn head(&self) -> &str {
        &self.text[..self.split]
    }
    /// DogStatsD tags (`|#k:v,...`), or empty.
    pub fn tail(&self) -> &str {
        &self.text[self.split..]
    }
}

/// Renders a series: `tags` (sorted by key) override `common` tags of the
/// same key; the result is in one canonical order (by key).
pub fn render(
    prefix: &str,
    name: &str,
    tags: &[(&str, &str)],
    common: &BTreeMap<String, String>,
    flavor: TagFlavor,
    fold: bool,
) -> Rendered {
    let mut merged: BTreeMap<&str, &str> = common
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in tags {
        merged.insert(k, v);
    }
    let mut head = String::new();
    if !prefix.is_empty() {
        head.push_str(&sanitize(prefix));
        head.push('.');
    }
    head.push_str(&sanitize(name));
    let mut tail = String::new();
    match flavor {
        TagFlavor::DogStatsd if !merged.is_empty() => {
            tail.push_str("|#");
            for (i, (k, v)) in merged.iter().enumerate() {
                if i > 0 {
                    tail.push(',');
                }
                let _ = write!(tail, "{}:{}", sanitize(k), sanitize(v));
            }
        }
        TagFlavor::Etsy => {
            for (k, v) in &merged {
                let _ = write!(head, ";{}={}", sanitize(k), sanitize(v));
            }
        }
        TagFlavor::None if fold => {
            for (k, v) in &merged {
                let _ = write!(head, ".{}.{}", sanitize(k), sanitize(v));
            }
        }
        _ => {}
    }
    let split = head.len();
    head.push_str(&tail);
    Rendered {
        text: head.into_boxed_str(),
        split,
    }
}

/// A value as the wire carries it: plain decimals from 1e-6 to 1e15, the
/// exponent form (`1.5e300`, which every StatsD daemon reads) outside, so
/// that an extreme value is a few bytes, not hundreds of digits.
pub fn number(v: f64) -> String {
    if v == 0.0 || (1e-6..1e15).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

/// Appends one line (without a newline) to `out`.
pub fn line(out: &mut String, r: &Rendered, value: &str, kind: &str, rate: f64) {
    out.push_str(r.head());
    out.push(':');
    out.push_str(value);
    out.push('|');
    out.push_str(kind);
    if rate < 1.0 {
        let _ = write!(out, "|@{rate}");
    }
    out.push_str(r.tail());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extreme_values_are_short_and_exact() {
        for v in [
            1.5e300,
            -1.5868539665109157e213,
            3e-200,
            1e15,
            12.5,
            -0.25,
            0.0,
        ] {
            let s = number(v);
            assert!(s.len() < 32, "{s}");
            assert_eq!(s.parse::<f64>().unwrap(), v);
        }
        assert_eq!(number(12.5), "12.5");
    }

    #[test]
    fn dogstatsd_tags_are_canonical_and_override_common_ones() {
        let common = BTreeMap::from([
            ("env".to_owned(), "prod".to_owned()),
            ("b".to_owned(), "common".to_owned()),
        ]);
        let r = render(
            "app",
            "http.requests",
            &[("b", "2"), ("a", "1")],
            &common,
            TagFlavor::DogStatsd,
            false,
        );
        let mut s = String::new();
        line(&mut s, &r, "3", "c", 1.0);
        assert_eq!(s, "app.http.requests:3|c|#a:1,b:2,env:prod");
        // `t` tagged `k=v`, without prefix or common tags.
        let plain = |flavor, fold| render("", "t", &[("k", "v")], &BTreeMap::new(), flavor, fold);
        let r = plain(TagFlavor::Etsy, false);
        let mut s = String::new();
        line(&mut s, &r, "12.5", "ms", 0.5);
        assert_eq!(s, "t;k=v:12.5|ms|@0.5");
        assert_eq!(plain(TagFlavor::None, true).head(), "t.k.v");
        let r = plain(TagFlavor::None, false);
        assert_eq!((r.head(), r.tail()), ("t", ""));
    }

    proptest! {
        #[test]
        fn any_input_renders_one_well_formed_line(
            name in "\\PC{1,30}", k in "\\PC{1,12}", v in "\\PC{0,12}", flavor in 0u8..3
        ) {
            let flavor = [TagFlavor::None, TagFlavor::DogStatsd, TagFlavor::Etsy][flavor as usize];
            let r = render("p", &name, &[(&k, &v)], &BTreeMap::new(), flavor, true);
            let mut s = String::new();
            line(&mut s, &r, "1", "c", 1.0);
            prop_assert!(!s.contains('\n') && !s.contains('\r'));
            // Exactly one ':' before the value and one '|' before the type.
            let (head, rest) = s.split_once(':').unwrap();
            prop_assert!(!head.contains('|') && !head.contains('@') && !head.contains('#'));
            prop_assert!(rest.starts_with("1|c"));
            let fields: Vec<&str> = rest.split('|').collect();
            prop_assert!(fields.len() <= 3);
            if let Some(t) = fields.get(2) {
                prop_assert!(t.starts_with('#'));
                prop_assert_eq!(t.matches(':').count(), 1);
                prop_assert!(!t.contains(',') && !t.contains('@'));
            }
        }
    }
}
