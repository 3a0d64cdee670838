//! The StatsD backend's lines, through its public API: record into a
//! backend pointed at a local UDP socket, shut it down (which flushes), read
//! every datagram, and parse each line back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::UdpSocket;
use std::time::Duration;

use arbitrary::Arbitrary;
use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{Key, Metrics};
use metrics_statsd::{StatsdConfig, StatsdMetrics, TagFlavor, sanitize};

use crate::exporters::{MAX_OPS, Recording};
use crate::shape;

#[derive(Debug, Arbitrary)]
struct StatsdInput {
    /// 0 DogStatsD, 1 Etsy, 2 none, 3 none with tags folded into the name.
    flavor: u8,
    prefix: String,
    common: Vec<(String, String)>,
    recording: Recording,
}

/// What one line says: the series (name part, type, sorted tags) and value.
#[derive(Debug)]
struct Parsed {
    series: (String, String, Vec<(String, String)>),
    value: String,
}

fn parse_line(line: &str, flavor: u8) -> Parsed {
    let mut fields = line.split('|');
    let head = fields.next().unwrap_or_default();
    let (name, value) = head
        .split_once(':')
        .unwrap_or_else(|| panic!("no ':' in {line:?}"));
    assert!(!value.contains(':'), "two ':' in {line:?}");
    let kind = fields
        .next()
        .unwrap_or_else(|| panic!("no type in {line:?}"));
    assert!(
        ["c", "g", "ms", "h"].contains(&kind),
        "type {kind} in {line:?}"
    );
    let mut tags = Vec::new();
    let (mut name, mut rate_seen) = (name.to_owned(), false);
    for f in fields {
        if let Some(r) = f.strip_prefix('@') {
            assert!(
                !rate_seen && tags.is_empty(),
                "rate twice or late in {line:?}"
            );
            let r: f64 = r.parse().unwrap_or_else(|_| panic!("rate in {line:?}"));
            assert!(r > 0.0 && r <= 1.0, "rate {r}");
            rate_seen = true;
        } else if let Some(t) = f.strip_prefix('#') {
            assert_eq!(flavor, 0, "DogStatsD tags in another flavor: {line:?}");
            assert!(tags.is_empty(), "tags twice in {line:?}");
            for kv in t.split(',') {
                let (k, v) = kv
                    .split_once(':')
                    .unwrap_or_else(|| panic!("tag without ':' in {line:?}"));
                assert!(!v.contains(':'), "tag with two ':' in {line:?}");
                tags.push((k.to_owned(), v.to_owned()));
            }
        } else {
            panic!("unknown field {f:?} in {line:?}");
        }
    }
    if flavor == 1 {
        let mut parts = name.split(';');
        let n = parts.next().unwrap_or_default().to_owned();
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("Etsy tag without '=' in {line:?}"));
            tags.push((k.to_owned(), v.to_owned()));
        }
        name = n;
    }
    tags.sort();
    Parsed {
        series: (name, kind.to_owned(), tags),
        value: value.to_owned(),
    }
}

/// Every line parses to exactly one series that was recorded, every series
/// recorded appears, timers and histograms once per sample, counters add up
/// and gauges end at their last value.
pub fn statsd_lines(data: &[u8]) {
    let Some(input) = shape::<StatsdInput>(data) else {
        return;
    };
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return;
    };
    let Ok(addr) = socket.local_addr() else {
        return;
    };
    let flavor = input.flavor % 4;
    let common: BTreeMap<String, String> = input.common.iter().take(4).cloned().collect();
    let prefix: String = input.prefix.chars().take(16).collect();
    let config = StatsdConfig {
        addr: addr.to_string(),
        prefix: prefix.clone(),
        flavor: match flavor {
            0 => TagFlavor::DogStatsd,
            1 => TagFlavor::Etsy,
            _ => TagFlavor::None,
        },
        fold_tags_into_name: flavor == 3,
        common_tags: common.clone(),
        // Only shutdown flushes, so each series has one flush.
        flush_interval_ms: 3_600_000,
        shutdown_probe_ms: 0,
        max_datagrams_per_sec: 0,
        ..StatsdConfig::default()
    };
    let max_datagram = config.max_datagram_bytes;
    let Ok(statsd) = StatsdMetrics::new(config) else {
        return;
    };
    let statsd = std::sync::Arc::new(statsd);
    let rec = &input.recording;
    rec.record_into(&Metrics::new(statsd.clone()));
    // The model: what each accepted sample must become.
    type Series = (String, String, Vec<(String, String)>);
    let mut want: HashMap<Series, Vec<f64>> = HashMap::new();
    // Distinct recorded series behind each wire series (sanitising may
    // map two onto one: then a gauge's last value is either's).
    let mut sources: HashMap<Series, HashSet<String>> = HashMap::new();
    for op in rec.ops.iter().take(MAX_OPS) {
        let name = rec.name(op.name);
        let tags = rec.tags(op);
        let kind = op.kind % 4;
        let (value, wire) = match kind {
            0 => (op.value, "c"),
            1 => (op.value, "g"),
            // Plain StatsD has no histogram type: they go out as timers,
            // which must not be negative (dropped and counted).
            2 if flavor == 0 => (op.value, "h"),
            2 if op.value < 0.0 => continue,
            2 => (op.value, "ms"),
            _ => match Duration::try_from_secs_f64(op.value / 1e3) {
                Ok(d) => (d.as_secs_f64() * 1e3, "ms"),
                Err(_) => continue,
            },
        };
        // What the call site refuses never reaches the backend.
        let checked = if kind == 0 {
            Value::Counter(value)
        } else {
            Value::Gauge(value)
        };
        let Ok(key) = Key::new(name, &tags) else {
            continue;
        };
        if Measurement::new(&key, checked).is_err() {
            continue;
        }
        let mut merged: BTreeMap<&str, &str> = common
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in &tags {
            merged.insert(k, v);
        }
        let mut full = String::new();
        if !prefix.is_empty() {
            full.push_str(&sanitize(&prefix));
            full.push('.');
        }
        full.push_str(&sanitize(name));
        let mut wire_tags: Vec<(String, String)> = Vec::new();
        match flavor {
            0 | 1 => {
                wire_tags = merged
                    .iter()
                    .map(|(k, v)| (sanitize(k), sanitize(v)))
                    .collect();
            }
            3 => {
                for (k, v) in &merged {
                    full.push_str(&format!(".{}.{}", sanitize(k), sanitize(v)));
                }
            }
            _ => {}
        }
        wire_tags.sort();
        let key = (full, wire.to_owned(), wire_tags);
        let mut sorted = tags.clone();
        sorted.sort();
        sources
            .entry(key.clone())
            .or_default()
            .insert(format!("{name:?}{sorted:?}"));
        want.entry(key).or_default().push(value);
    }
    let shutdown = statsd.shutdown();
    assert!(shutdown.is_ok(), "shutdown: {shutdown:?}");
    // Loopback delivery is synchronous: everything sent is queued here.
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; 65_536];
    let mut got: HashMap<Series, Vec<String>> = HashMap::new();
    while let Ok(n) = socket.recv(&mut buf) {
        let text = std::str::from_utf8(&buf[..n]).expect("UTF-8 datagram");
        if n > max_datagram {
            // Only one line, or one negative gauge's `0`/`-N` pair, may
            // go out alone past the limit.
            let lines: Vec<&str> = text.split('\n').collect();
            let pair = lines.len() == 2 && {
                let (a, b) = (parse_line(lines[0], flavor), parse_line(lines[1], flavor));
                a.series == b.series && a.series.1 == "g" && a.value == "0"
            };
            assert!(lines.len() == 1 || pair, "datagram of {n} bytes: {text:?}");
        }
        for line in text.split('\n') {
            assert!(!line.is_empty(), "empty line in {text:?}");
            let p = parse_line(line, flavor);
            got.entry(p.series).or_default().push(p.value);
        }
    }
    for (series, values) in &got {
        let Some(samples) = want.get(series) else {
            panic!("line for a series never recorded: {series:?}\nwanted {want:?}");
        };
        match series.1.as_str() {
            "c" => {
                let total: f64 = values.iter().map(|v| num(v)).sum();
                let expect: f64 = samples.iter().sum();
                assert!(
                    close(total, expect),
                    "counter {series:?}: {total} vs {expect}"
                );
            }
            "g" => {
                let mut g = 0.0;
                for v in values {
                    if v.starts_with(['+', '-']) {
                        g += num(v);
                    } else {
                        g = num(v);
                    }
                }
                let last = samples.last().copied().unwrap_or_default();
                let merged = sources.get(series).is_some_and(|s| s.len() > 1);
                assert!(merged || close(g, last), "gauge {series:?}: {g} vs {last}");
            }
            _ => {
                assert_eq!(
                    values.len(),
                    samples.len(),
                    "one line per sample: {series:?}"
                );
            }
        }
    }
    for series in want.keys() {
        assert!(got.contains_key(series), "series never sent: {series:?}");
    }
}

fn num(v: &str) -> f64 {
    v.parse()
        .unwrap_or_else(|_| panic!("value {v:?} is not a number"))
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}
