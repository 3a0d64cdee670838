//! Prometheus remote write 1.0: the `WriteRequest` protobuf message
//! (`prometheus/prompb`'s `remote.proto` and `types.proto`, the fields
//! version 1.0 uses), built from a [`Snapshot`] with the same series the
//! Prometheus text exposition gives for it, protobuf-encoded and snappy
//! block-compressed (the raw format, not the framed one), as a receiver
//! (Prometheus, Mimir, Thanos, VictoriaMetrics) reads the body of a push.
//!
//! Names and labels are those of the text exposition (see the crate docs):
//! counters `<name>_total`, gauges `<name>`, histograms and timers
//! `<name>_bucket{le="..."}` (the same bounds, and `+Inf`), `<name>_sum`
//! and `<name>_count`, or, as summaries, `<name>{quantile="..."}`, `_sum`
//! and `_count`. Every series carries all its labels, `__name__` included,
//! sorted by name as the protocol requires (label names are sanitised to
//! lowercase letters, digits and `_`, so `__name__` comes first unless a
//! tag's name sanitises to `_` and a digit, `_9lives`), and one sample
//! stamped with the time the caller gives.
//!
//! ```
//! use metrics_exposition::ExpositionConfig;
//! use metrics_exposition::remote_write::{decode, encode, write_request};
//! use metrics_memory::MemoryMetrics;
//! use metrics_protocol::Metrics;
//! use metrics_query::snapshot::Snapshots;
//! use std::sync::Arc;
//!
//! let memory = Arc::new(MemoryMetrics::new());
//! Metrics::new(memory.clone()).record_counter("jobs.done", 3.0, &[("queue", "mail")]);
//! let request = write_request(&*memory.snapshot(), &ExpositionConfig::default(), 1_700_000_000_000);
//! let series = &request.timeseries[0];
//! assert_eq!(series.labels[0].name, "__name__");
//! assert_eq!(series.labels[0].value, "jobs_done_total");
//! assert_eq!(series.samples[0].value, 3.0);
//!
//! let mut body = Vec::new();
//! encode(&request, &mut body)?;
//! assert_eq!(decode(&body)?, request);
//! # Ok::<(), metrics_exposition::remote_write::RemoteWriteError>(())
//! ```

use metrics_protocol::MetricType;
use metrics_query::snapshot::Snapshot;
use prost::Message as _;

use crate::config::{DistributionFormat, ExpositionConfig};
use crate::names::fmt_value;
use crate::rows::{self, QUANTILES, Row};
use crate::text::{each_label, families};

/// The HTTP headers a remote write 1.0 push carries besides its body:
/// `Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
/// `X-Prometheus-Remote-Write-Version: 0.1.0`.
pub const HEADERS: [(&str, &str); 3] = [
    ("content-encoding", "snappy"),
    ("content-type", "application/x-protobuf"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// The body of one push: series, each with its labels and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: its full label set (`__name__` included) and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// The labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// A label: name and value.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    /// The label name (`__name__` for the metric name).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its value, unescaped.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample: a value at a time.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

impl WriteRequest {
    /// How many samples the request holds (what a dropped request loses).
    pub fn sample_count(&self) -> usize {
        self.timeseries.iter().map(|t| t.samples.len()).sum()
    }
}

impl TimeSeries {
    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }
}

/// A request that cannot be encoded or a body that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteWriteError {
    /// Snappy refused the bytes (compressing: too large; decompressing:
    /// not a snappy block).
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// The decompressed bytes are not a `WriteRequest`.
    #[error("not a remote write request: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The request of every series of `snapshot`, each with one sample at
/// `timestamp_ms`, named and shaped as the Prometheus text exposition
/// with `config` names and shapes them (see the module docs).
pub fn write_request(
    snapshot: &dyn Snapshot,
    config: &ExpositionConfig,
    timestamp_ms: i64,
) -> WriteRequest {
    let histograms = config.distributions == DistributionFormat::Histogram;
    let read = if histograms {
        rows::Read::Buckets(config)
    } else {
        rows::Read::Quantiles
    };
    let rows = rows::rows(snapshot, &read);
    let mut out = WriteRequest {
        timeseries: Vec::with_capacity(rows.len()),
    };
    let mut push = |name: String, tags: &[Label], extra: Option<(&str, &str)>, value: f64| {
        let mut labels = Vec::with_capacity(tags.len() + 2);
        labels.push(Label {
            name: "__name__".to_owned(),
            value: name,
        });
        labels.extend_from_slice(tags);
        if let Some((k, v)) = extra {
            labels.push(Label {
                name: k.to_owned(),
                value: v.to_owned(),
            });
        }
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        out.timeseries.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        });
    };
    for f in families(&rows, snapshot) {
        let scale = f.unit.map_or(1.0, |u| u.1);
        let bounds = if histograms {
            config.bounds_for(f.name, f.kind, f.described)
        } else {
            &[]
        };
        let les: Vec<String> = bounds.iter().map(|b| fmt_value(*b)).collect();
        let base = f.base.as_str();
        let mut tags = Vec::new();
        for r in &f.rows {
            tags.clear();
            each_label(r.tags.pairs(), |k, v| {
                tags.push(Label {
                    name: k.to_owned(),
                    value: v.to_owned(),
                });
            });
            series_of(&f.kind, r, base, &les, scale, histograms, &tags, &mut push);
        }
    }
    out
}

/// The series of one row, as the Prometheus text has its lines.
#[allow(clippy::too_many_arguments)]
fn series_of(
    kind: &MetricType,
    r: &Row<'_>,
    base: &str,
    les: &[String],
    scale: f64,
    histograms: bool,
    tags: &[Label],
    push: &mut impl FnMut(String, &[Label], Option<(&str, &str)>, f64),
) {
    match kind {
        MetricType::Counter | MetricType::Rate => {
            push(format!("{base}_total"), tags, None, r.value * scale);
        }
        MetricType::Gauge => push(base.to_owned(), tags, None, r.value * scale),
        MetricType::Histogram | MetricType::Timer if histograms => {
            let counts = r.buckets.as_deref().unwrap_or(&[]);
            let bucket = format!("{base}_bucket");
            for (i, le) in les.iter().enumerate() {
                let c = counts.get(i).copied().unwrap_or(0).min(r.count);
                push(bucket.clone(), tags, Some(("le", le)), c as f64);
            }
            push(bucket, tags, Some(("le", "+Inf")), r.count as f64);
            push(format!("{base}_sum"), tags, None, r.sum * scale);
            push(format!("{base}_count"), tags, None, r.count as f64);
        }
        MetricType::Histogram | MetricType::Timer => {
            for (q, qs) in QUANTILES {
                let v = match q {
                    0.5 => r.p50,
                    0.9 => r.p90,
                    0.95 => r.p95,
                    _ => r.p99,
                };
                let v = v.map_or(f64::NAN, |v| v * scale);
                push(base.to_owned(), tags, Some(("quantile", qs)), v);
            }
            push(format!("{base}_sum"), tags, None, r.sum * scale);
            push(format!("{base}_count"), tags, None, r.count as f64);
        }
    }
}

/// Appends `request` to `out`, protobuf-encoded and snappy
/// block-compressed: the body of a push.
pub fn encode(request: &WriteRequest, out: &mut Vec<u8>) -> Result<(), RemoteWriteError> {
    let raw = request.encode_to_vec();
    let start = out.len();
    out.resize(start + snap::raw::max_compress_len(raw.len()), 0);
    let n = snap::raw::Encoder::new().compress(&raw, &mut out[start..])?;
    out.truncate(start + n);
    Ok(())
}

/// The request in a push body (snappy block, then protobuf), as a receiver
/// reads it.
pub fn decode(body: &[u8]) -> Result<WriteRequest, RemoteWriteError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}
