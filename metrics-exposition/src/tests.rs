use std::collections::BTreeMap;
use std::sync::Arc;

use metrics_memory::{MemoryMetrics, RELATIVE_ACCURACY};
use metrics_protocol::{MetricType, MetricUnit};

use crate::names::*;
use crate::text::labels;
use crate::{DistributionFormat, ExportFormat, Exporter, ExpositionConfig};

#[test]
fn names_and_labels_are_sanitised_and_escaped() {
    assert_eq!(sanitize_name("http.requests-total"), "http_requests_total");
    assert_eq!(sanitize_name("9lives"), "_9lives");
    // A counter named by its suffix alone keeps a family name.
    for name in ["_total", "total", "_total_total", ".total"] {
        let stem = family_stem(name, MetricType::Counter, None);
        assert!(!stem.trim_matches('_').is_empty(), "{name:?} -> {stem:?}");
    }
    assert_eq!(family_stem("jobs_total", MetricType::Counter, None), "jobs");
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
    let l = labels(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), None);
    assert_eq!(l, r#"{tag__name__="n",a_b="x\"y\\z\nw",a_b_2="2"}"#);
}

use metrics_protocol::app::MetricsAggregator;
use metrics_protocol::{MetricCollector, Metrics, SuccessFailureTracker};
use std::time::Duration;

/// A memory backend and an exporter over it with `exposition`.
fn with(exposition: ExpositionConfig) -> (Arc<MemoryMetrics>, Exporter) {
    let m = Arc::new(MemoryMetrics::new());
    let x = Exporter::with_config(m.clone(), exposition).unwrap();
    (m, x)
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
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    // 1 ms to about 2.4 s, denser at the low end, exactly on some bounds.
    for i in 1..=2000u64 {
        let ms = (i * i) as f64 * 6e-4 + 1.0;
        w.record_timer(
            "db.query",
            Duration::from_secs_f64(ms / 1e3),
            &[("db", "a")],
        );
    }
    w.record_timer("db.query", Duration::from_millis(5), &[("db", "a")]);
    w.record_timer("db.query", Duration::from_millis(100), &[("db", "a")]);
    let prom = x.export(ExportFormat::Prometheus).unwrap();
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
    let s = m.metric_summary("db.query", None).unwrap();
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
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
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
    let (m, x) = with(c.clone());
    let w = Metrics::new(m.clone());
    w.record_timer("db.query", Duration::from_millis(300), &[]);
    w.record_timer("db.insert", Duration::from_millis(300), &[]);
    w.record_histogram("dist", 8.0, &[]);
    w.record_histogram("payload", 3000.0, &[]);
    m.describe(
        "payload",
        MetricType::Histogram,
        Some(MetricUnit::Kilobytes),
        "Payloads",
    );
    let prom = x.export(ExportFormat::Prometheus).unwrap();
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

    let (m, x) = with(ExpositionConfig {
        distributions: DistributionFormat::Summary,
        ..c
    });
    let w = Metrics::new(m.clone());
    w.record_timer("db.query", Duration::from_millis(300), &[]);
    let prom = x.export(ExportFormat::Prometheus).unwrap();
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
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    w.record_histogram("h", 1.0, &[("a.b", "x")]);
    w.record_histogram("h", 2.0, &[("a_b", "x")]);
    let prom = x.export(ExportFormat::Prometheus).unwrap();
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
        let e = c.check().unwrap_err().to_string();
        let m: Arc<MemoryMetrics> = Arc::new(MemoryMetrics::new());
        assert_eq!(Exporter::with_config(m, c).unwrap_err().to_string(), e);
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
    let (m, x) = with(c);
    let w = Metrics::new(m.clone());
    for v in [-2.0, -0.5, 0.0, 0.5, 3.0] {
        w.record_histogram("offset", v, &[]);
    }
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
    assert!(om.contains("# TYPE offset histogram\n"), "{om}");
    assert_eq!(
        buckets(&om, "offset"),
        [(-1.0, 1), (0.0, 3), (1.0, 4), (f64::INFINITY, 5)]
    );
    assert!(
        !om.contains("offset_sum") && !om.contains("offset_count"),
        "{om}"
    );
    let prom = x.export(ExportFormat::Prometheus).unwrap();
    assert!(prom.contains("offset_sum 1\noffset_count 5\n"), "{prom}");
    // As summaries, OpenMetrics gets gauges with a statistic label.
    let (m, x) = with(ExpositionConfig {
        distributions: DistributionFormat::Summary,
        ..ExpositionConfig::default()
    });
    let w = Metrics::new(m.clone());
    w.record_histogram("offset", -2.0, &[]);
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
    assert!(om.contains("# TYPE offset gauge\n"), "{om}");
    assert!(om.contains("offset{statistic=\"sum\"} -2\n"), "{om}");
}

#[test]
fn described_units_become_base_units_and_suffixes() {
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    w.record_gauge("process.memory.usage", 2048.0, &[]);
    m.describe(
        "process.memory.usage",
        MetricType::Gauge,
        Some(MetricUnit::Bytes),
        "Resident set",
    );
    w.record_counter("net.io", 5.0, &[]);
    m.describe(
        "net.io",
        MetricType::Counter,
        Some(MetricUnit::Kilobytes),
        "",
    );
    w.record_gauge("cpu.busy.percent", 50.0, &[]);
    m.describe(
        "cpu.busy.percent",
        MetricType::Gauge,
        Some(MetricUnit::Percent),
        "Busy",
    );
    w.record_gauge("uptime.ms", 1500.0, &[]);
    m.describe(
        "uptime.ms",
        MetricType::Gauge,
        Some(MetricUnit::Milliseconds),
        "Up",
    );
    w.record_gauge("jobs.count", 3.0, &[]);
    m.describe(
        "jobs.count",
        MetricType::Gauge,
        Some(MetricUnit::Count),
        "Jobs",
    );
    let prom = x.export(ExportFormat::Prometheus).unwrap();
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
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
    for line in [
        "# TYPE process_memory_usage_bytes gauge\n# UNIT process_memory_usage_bytes bytes\n",
        "# TYPE net_io_bytes counter\n# UNIT net_io_bytes bytes\nnet_io_bytes_total 5120\n",
        "# UNIT cpu_busy_ratio ratio\n",
    ] {
        assert!(om.contains(line), "{line:?} in\n{om}");
    }
    assert!(!om.contains("# UNIT jobs"), "{om}");
    // A base unit as the last word of the name counts as described.
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    w.record_histogram("http.response.bytes", 3000.0, &[]);
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
    assert!(om.contains("# UNIT http_response_bytes bytes\n"), "{om}");
    assert!(
        om.contains("http_response_bytes_bucket{le=\"4096\"} 1\n"),
        "{om}"
    );
}

#[test]
fn numbers_are_written_as_fmt_value_writes_them() {
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        42.0,
        0.5,
        -2.75,
        1e-6,
        9.99e-7,
        1e15,
        999_999_999_999_999.0,
        -999_999_999_999_999.0,
        1e16,
        3.2e20,
        1.5e-9,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1 + 0.2,
    ];
    // Whole numbers and fractions around every power of ten in range.
    for e in -8..17 {
        let p = 10f64.powi(e);
        values.extend([p, -p, p + 1.0, p - 1.0, p * 1.5, p.next_up(), p.next_down()]);
    }
    for v in values {
        let mut out = String::new();
        write_value(&mut out, v);
        assert_eq!(out, fmt_value(v), "{v:?}");
    }
}

#[test]
fn exports_every_format() {
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    w.record_counter(
        "http.requests",
        3.0,
        &[("path", "/a\"b\\c\nd"), ("méthode", "GÉT")],
    );
    w.record_gauge("temp-c", -2.5, &[]);
    w.record_timer("db.query", Duration::from_millis(250), &[("quantile", "x")]);
    w.record_histogram("size", 10.0, &[]);
    m.record_failure("op", "boom", &[]);
    let prom = x.export(ExportFormat::Prometheus).unwrap();
    assert!(
        prom.contains("# TYPE http_requests_total counter\n"),
        "{prom}"
    );
    assert!(
        prom.contains(r#"http_requests_total{m_thode="GÉT",path="/a\"b\\c\nd"} 3"#),
        "{prom}"
    );
    assert!(prom.contains("temp_c -2.5\n"));
    assert!(
        prom.contains("db_query_seconds_sum{tag_quantile=\"x\"} 0.25\n"),
        "{prom}"
    );
    assert!(prom.contains("op_failure_total{error_type=\"boom\"} 1\n"));
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
    assert!(om.contains("# TYPE http_requests counter\n") && om.ends_with("# EOF\n"));
    let json: serde_json::Value =
        serde_json::from_str(&x.export(ExportFormat::Json).unwrap()).unwrap();
    assert_eq!(json["series"].as_array().unwrap().len(), 6);
    let csv = x.export(ExportFormat::Csv).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().any(|row| row[3].contains(r#"/a\"b\\c\nd"#)));
}

#[test]
fn colliding_names_get_distinct_families() {
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    w.record_counter("a.b", 1.0, &[]);
    w.record_counter("a-b", 2.0, &[]);
    w.record_gauge("a_b_total", 3.0, &[]);
    let prom = x.export(ExportFormat::Prometheus).unwrap();
    let types: Vec<&str> = prom.lines().filter(|l| l.starts_with("# TYPE")).collect();
    let unique: std::collections::HashSet<&str> =
        types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(types.len(), 3);
    assert_eq!(unique.len(), 3, "{prom}");
}

#[test]
fn descriptions_become_the_help_text_of_the_text_exports() {
    let (m, x) = with(ExpositionConfig::default());
    let w = Metrics::new(m.clone());
    w.record_counter("jobs.done", 1.0, &[]);
    w.record_gauge("queue.depth", 3.0, &[]);
    w.describe(
        "jobs.done",
        MetricType::Counter,
        None,
        "Jobs finished\nsuccessfully",
    );
    w.describe("", MetricType::Gauge, None, "ignored: no such name");
    let prom = x.export(ExportFormat::Prometheus).unwrap();
    assert!(
        prom.contains("# HELP jobs_done_total Jobs finished\\nsuccessfully\n"),
        "{prom}"
    );
    assert!(prom.contains("# HELP queue_depth queue.depth\n"), "{prom}");
    let om = x.export(ExportFormat::OpenMetrics).unwrap();
    assert!(
        om.contains("# HELP jobs_done Jobs finished\\nsuccessfully\n"),
        "{om}"
    );
}

#[cfg(feature = "remote-write")]
mod remote_write {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use metrics_protocol::{MetricCollector, MetricType, MetricUnit, Metrics};
    use metrics_query::snapshot::Snapshots;

    use super::with;
    use crate::remote_write::{decode, encode, write_request};
    use crate::{DistributionFormat, ExportFormat, ExpositionConfig};

    /// One sample: the metric name, the labels sorted by name, the value
    /// (as bits, so NaN compares equal).
    type Line = (String, BTreeMap<String, String>, u64);

    /// The samples of a Prometheus text export (label values without
    /// escapes, as the test records them).
    fn text_samples(text: &str) -> BTreeSet<Line> {
        let mut out = BTreeSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap(),
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            out.insert((name.to_owned(), labels, value.to_bits()));
        }
        out
    }

    /// A bit of everything: counters with tags (one whose keys collide
    /// once sanitised), a gauge in percent, a timer, histograms in bytes
    /// and plain, a success/failure pair.
    fn record(m: &metrics_memory::MemoryMetrics, w: &Metrics) {
        w.record_counter("http.requests", 3.0, &[("code", "200"), ("path", "/a b")]);
        w.record_counter("http.requests", 1.0, &[("code", "500"), ("path", "/a b")]);
        w.record_counter("jobs", 2.0, &[("a.b", "x")]);
        w.record_counter("jobs", 5.0, &[("a_b", "x")]);
        w.record_gauge("cpu.load", 42.0, &[("Host", "h1")]);
        m.describe(
            "cpu.load",
            MetricType::Gauge,
            Some(MetricUnit::Percent),
            "Load",
        );
        w.record_timer("db.query", Duration::from_millis(30), &[("db", "main")]);
        w.record_timer("db.query", Duration::from_millis(700), &[("db", "main")]);
        w.record_histogram("payload", 3.0, &[]);
        m.describe(
            "payload",
            MetricType::Histogram,
            Some(MetricUnit::Kilobytes),
            "",
        );
        w.record_histogram("batch", 17.0, &[("le", "odd tag")]);
        let _ = w.time_result("upload", &[], || Err::<(), _>("disk full"));
        let _ = w.time_result("upload", &[], || Ok::<(), &str>(()));
    }

    fn same_as_text(c: ExpositionConfig) {
        let (m, x) = with(c.clone());
        let w = Metrics::new(m.clone());
        record(&m, &w);
        let text = x.export(ExportFormat::Prometheus).unwrap();
        let request = write_request(&*m.snapshot(), &c, 1_700_000_000_123);
        let mut body = Vec::new();
        encode(&request, &mut body).unwrap();
        let decoded = decode(&body).unwrap();
        assert_eq!(decoded, request);

        let mut samples = BTreeSet::new();
        for ts in &decoded.timeseries {
            let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted, "labels sorted by name");
            assert_eq!(names[0], "__name__", "{names:?}");
            assert_eq!(ts.samples.len(), 1);
            assert_eq!(ts.samples[0].timestamp, 1_700_000_000_123);
            let mut labels: BTreeMap<String, String> = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            let name = labels.remove("__name__").unwrap();
            samples.insert((name, labels, ts.samples[0].value.to_bits()));
        }
        let expected = text_samples(&text);
        assert!(expected.len() > 20, "{text}");
        assert_eq!(samples, expected, "{text}");
        assert_eq!(decoded.sample_count(), expected.len());
    }

    #[test]
    fn the_request_has_the_series_of_the_prometheus_text() {
        same_as_text(ExpositionConfig::default());
    }

    #[test]
    fn summaries_too() {
        same_as_text(ExpositionConfig {
            distributions: DistributionFormat::Summary,
            ..ExpositionConfig::default()
        });
    }

    #[test]
    fn a_body_that_is_no_request_is_an_error() {
        assert!(decode(b"not snappy at all").is_err());
        let mut body = Vec::new();
        let junk = [0xff_u8; 16];
        body.resize(snap::raw::max_compress_len(junk.len()), 0);
        let n = snap::raw::Encoder::new()
            .compress(&junk, &mut body)
            .unwrap();
        body.truncate(n);
        assert!(matches!(
            decode(&body),
            Err(crate::remote_write::RemoteWriteError::Decode(_))
        ));
    }
}
