//! The exposition formats over the memory backend, through public APIs
//! only: record whatever the input says, export, parse the text back with a strict
//! checker (Prometheus text, OpenMetrics), the `csv` crate or serde_json,
//! and compare with the backend's own read-back (`series`).
//!
//! This file holds the targets, the recording and the CSV and JSON checks;
//! `text.rs` the strict checker of the Prometheus and OpenMetrics text.

mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use metrics_exposition::{ExportFormat, Exporter};
use metrics_memory::{MemoryMetrics, SeriesSnapshot};
use metrics_protocol::Metrics;

use crate::shape;
use text::check_text;

/// What to record: names and tags from small pools the ops index into, so
/// that series repeat and families hold several series.
#[derive(Debug, Arbitrary)]
pub(crate) struct Recording {
    pub names: Vec<String>,
    pub keys: Vec<String>,
    pub values: Vec<String>,
    pub ops: Vec<RecordOp>,
}

/// One recording call.
#[derive(Debug, Arbitrary)]
pub(crate) struct RecordOp {
    /// 0 counter, 1 gauge, 2 histogram, 3 timer (modulo 4).
    pub kind: u8,
    pub name: u8,
    pub tags: Vec<(u8, u8)>,
    pub value: f64,
}

pub(crate) const MAX_OPS: usize = 64;

impl Recording {
    pub(crate) fn name(&self, i: u8) -> &str {
        pick(&self.names, i).unwrap_or("fuzz.metric")
    }

    pub(crate) fn tags(&self, op: &RecordOp) -> Vec<(&str, &str)> {
        op.tags
            .iter()
            .take(6)
            .filter_map(|(k, v)| {
                Some((pick(&self.keys, *k)?, pick(&self.values, *v).unwrap_or("")))
            })
            .collect()
    }

    /// Records every op into `c`.
    pub(crate) fn record_into(&self, c: &Metrics) {
        for op in self.ops.iter().take(MAX_OPS) {
            let name = self.name(op.name);
            let tags = self.tags(op);
            match op.kind % 4 {
                0 => c.record_counter(name, op.value, &tags),
                1 => c.record_gauge(name, op.value, &tags),
                2 => c.record_histogram(name, op.value, &tags),
                _ => {
                    if let Ok(d) = Duration::try_from_secs_f64(op.value / 1e3) {
                        c.record_timer(name, d, &tags);
                    }
                }
            }
        }
    }
}

fn pick(pool: &[String], i: u8) -> Option<&str> {
    if pool.is_empty() {
        None
    } else {
        Some(pool[usize::from(i) % pool.len()].as_str())
    }
}

fn recorded(data: &[u8]) -> Option<(std::sync::Arc<MemoryMetrics>, Vec<SeriesSnapshot>)> {
    let rec = shape::<Recording>(data)?;
    let m = std::sync::Arc::new(MemoryMetrics::new());
    rec.record_into(&Metrics::new(m.clone()));
    let series = m.series("");
    Some((m, series))
}

/// Prometheus text format 0.0.4.
pub fn export_prometheus(data: &[u8]) {
    export_text(data, ExportFormat::Prometheus);
}

/// OpenMetrics 1.0.
pub fn export_openmetrics(data: &[u8]) {
    export_text(data, ExportFormat::OpenMetrics);
}

/// Records, exports in a text `format` and checks the text strictly.
fn export_text(data: &[u8], format: ExportFormat) {
    let Some((m, series)) = recorded(data) else {
        return;
    };
    let text = Exporter::new(m)
        .export(format)
        .unwrap_or_else(|e| panic!("{format:?} export: {e}"));
    check_text(&text, &series, format == ExportFormat::OpenMetrics);
}

/// CSV: one header, one row per series with its name, type, tags (JSON),
/// value and count.
pub fn export_csv(data: &[u8]) {
    let Some((m, series)) = recorded(data) else {
        return;
    };
    let text = Exporter::new(m)
        .export(ExportFormat::Csv)
        .expect("CSV export");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("CSV header").clone();
    let col = |n: &str| {
        headers
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("no column {n}"))
    };
    let (name, kind, tags, value, count) = (
        col("name"),
        col("type"),
        col("tags"),
        col("value"),
        col("count"),
    );
    let mut got = Vec::new();
    for rec in reader.records() {
        let rec = rec.expect("a CSV record");
        assert_eq!(rec.len(), headers.len(), "row width");
        let t: BTreeMap<String, String> =
            serde_json::from_str(&rec[tags]).expect("tags column is a JSON object");
        got.push(Key {
            name: rec[name].to_owned(),
            kind: rec[kind].to_owned(),
            tags: t.into_iter().collect(),
            value: parse_f64(&rec[value]).unwrap_or_else(|| panic!("value {:?}", &rec[value])),
            count: rec[count].parse().expect("count"),
        });
    }
    compare(got, &series, "CSV");
}

/// JSON: a `series` array of objects with name, type, tags, value and count.
pub fn export_json(data: &[u8]) {
    let Some((m, series)) = recorded(data) else {
        return;
    };
    let text = Exporter::new(m)
        .export(ExportFormat::Json)
        .expect("JSON export");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let rows = doc["series"].as_array().expect("a series array");
    let mut got = Vec::new();
    for r in rows {
        let tags: BTreeMap<String, String> =
            serde_json::from_value(r["tags"].clone()).expect("tags object");
        let value = match &r["value"] {
            serde_json::Value::Null => f64::NAN,
            v => v.as_f64().expect("a number value"),
        };
        got.push(Key {
            name: r["name"].as_str().expect("name").to_owned(),
            kind: r["type"].as_str().expect("type").to_owned(),
            tags: tags.into_iter().collect(),
            value,
            count: r["count"].as_u64().expect("count"),
        });
    }
    compare(got, &series, "JSON");
}

#[derive(Debug, Clone, PartialEq)]
struct Key {
    name: String,
    kind: String,
    tags: Vec<(String, String)>,
    value: f64,
    count: u64,
}

fn key_of(s: &SeriesSnapshot) -> Key {
    Key {
        name: s.name.clone(),
        kind: s.metric_type.to_string(),
        tags: s.tags.clone(),
        value: s.value,
        count: s.count,
    }
}

fn same_value(a: f64, b: f64) -> bool {
    // JSON has no infinity: a sum that overflowed may come back as null.
    a == b || (a.is_nan() && !b.is_finite())
}

fn compare(mut got: Vec<Key>, series: &[SeriesSnapshot], what: &str) {
    let mut want: Vec<Key> = series.iter().map(key_of).collect();
    let order = |a: &Key, b: &Key| (&a.name, &a.kind, &a.tags).cmp(&(&b.name, &b.kind, &b.tags));
    got.sort_by(order);
    want.sort_by(order);
    assert_eq!(got.len(), want.len(), "{what}: one row per series");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (&g.name, &g.kind, &g.tags, g.count),
            (&w.name, &w.kind, &w.tags, w.count),
            "{what} row"
        );
        assert!(same_value(g.value, w.value), "{what} value {g:?} vs {w:?}");
    }
}

pub(super) fn parse_f64(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => {
            let t = s.strip_prefix('+').unwrap_or(s);
            if t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
                t.parse().ok()
            } else {
                None
            }
        }
    }
}
