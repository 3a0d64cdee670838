//! What the JSON API answers, as a new user reads it: units that agree with
//! `/metrics`, numbers as numbers, a counter's summary in its own terms,
//! windows shorter than a bin refused, and ranges relative to now. Over the
//! memory backend on a manual clock.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use metrics_http::{HttpConfig, Source, router};
use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::{MetricCollector, MetricType, MetricUnit};
use serde_json::Value;
use tower::ServiceExt;

mod common;
use common::TestSystem;

/// 2027-01-15T08:00:00Z: the start of a 10 s bin (and of an hour).
const T0: i64 = 1_800_000_000_000;

fn backend() -> (Arc<ManualClock>, Arc<MemoryMetrics>) {
    let clock = Arc::new(ManualClock::new(T0));
    let mem = MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap();
    (clock, Arc::new(mem))
}

fn serve(mem: &Arc<MemoryMetrics>) -> Router {
    let system = TestSystem::over(mem.clone());
    router(
        Source::from_system(Arc::new(system))
            .with_ranges(mem.clone())
            .with_exporter(metrics_exposition::Exporter::new(mem.clone())),
        &HttpConfig::default(),
    )
}

async fn get(app: &Router, uri: &str, accept: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get_json(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, body) = get(app, uri, "application/json").await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: {e}: {body}"));
    (status, v)
}

/// The `# UNIT` of each OpenMetrics family, by family name.
fn exposed_units(openmetrics: &str) -> Vec<(String, String)> {
    openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# UNIT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(f, u)| (f.to_owned(), u.to_owned()))
        .collect()
}

#[tokio::test]
async fn sizes_in_bytes_are_bytes_in_the_api_as_in_the_exposition() {
    let (_clock, mem) = backend();
    // As the resource monitor describes its metrics.
    mem.describe(
        "system.network.io",
        MetricType::Counter,
        Some(MetricUnit::Bytes),
        "Bytes moved",
    );
    mem.describe(
        "system.filesystem.usage",
        MetricType::Gauge,
        Some(MetricUnit::Bytes),
        "Filesystem space",
    );
    let m = metrics_protocol::Metrics::new(mem.clone());
    m.record_counter("system.network.io", 1500.0, &[("direction", "receive")]);
    m.record_gauge("system.filesystem.usage", 4096.0, &[("state", "used")]);
    // Described by nothing but its name's last word.
    m.record_histogram("http.response.bytes", 512.0, &[]);
    m.record_counter("http.requests", 1.0, &[]);
    let app = serve(&mem);

    let (status, om) = get(
        &app,
        "/metrics",
        "application/openmetrics-text;version=1.0.0",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let units = exposed_units(&om);
    let (status, series) = get_json(&app, "/api/v1/series").await;
    assert_eq!(status, StatusCode::OK);
    for (name, family) in [
        ("system.network.io", "system_network_io_bytes"),
        ("system.filesystem.usage", "system_filesystem_usage_bytes"),
        ("http.response.bytes", "http_response_bytes"),
    ] {
        assert!(
            units.contains(&(family.to_owned(), "bytes".to_owned())),
            "{family}: {om}"
        );
        let s = series["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {series}"));
        assert_eq!(s["unit"], "bytes", "{name}: {series}");
        let (status, summary) = get_json(&app, &format!("/api/v1/summary?name={name}")).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        assert_eq!(summary["unit"], "bytes", "{name}: {summary}");
    }
    // A plain count has no unit in the exposition and is a count here.
    assert!(
        !units.iter().any(|(f, _)| f.starts_with("http_requests")),
        "{om}"
    );
    let (_, summary) = get_json(&app, "/api/v1/summary?name=http.requests").await;
    assert_eq!(summary["unit"], "count", "{summary}");
    let (_, top) = get_json(&app, "/api/v1/top?type=histogram").await;
    assert_eq!(top["metrics"][0]["unit"], "bytes", "{top}");
}

#[tokio::test]
async fn top_answers_a_distributions_statistics_as_numbers() {
    let (_clock, mem) = backend();
    let m = metrics_protocol::Metrics::new(mem.clone());
    for v in [100.0, 200.0, 300.0] {
        m.record_histogram("payload.size", v, &[]);
    }
    let (status, top) = get_json(&serve(&mem), "/api/v1/top?type=histogram").await;
    assert_eq!(status, StatusCode::OK, "{top}");
    let metadata = &top["metrics"][0]["metadata"];
    assert_eq!(metadata["sum"], 600.0, "{top}");
    assert_eq!(metadata["avg"], 200.0, "{top}");
    assert_eq!(metadata["min"], 100.0, "{top}");
    assert_eq!(metadata["max"], 300.0, "{top}");
    assert!(metadata["p50"].is_number(), "{top}");
}

#[tokio::test]
async fn a_counters_summary_is_its_total_increments_and_rate() {
    let (clock, mem) = backend();
    let m = metrics_protocol::Metrics::new(mem.clone());
    // 30 increments of 1 in the first bin, 10 of 5 in the second: bins
    // of 30 and 50, which are no increment's extremes.
    for _ in 0..30 {
        m.record_counter("jobs.done", 1.0, &[]);
    }
    clock.advance(std::time::Duration::from_secs(10));
    for _ in 0..10 {
        m.record_counter("jobs.done", 5.0, &[]);
    }
    clock.advance(std::time::Duration::from_secs(5));
    let app = serve(&mem);

    let (status, s) = get_json(&app, "/api/v1/summary?name=jobs.done").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["metric_type"], "counter", "{s}");
    assert_eq!(s["total"], 80.0, "{s}");
    assert_eq!(s["increments"], 40, "{s}");
    assert_eq!(s["rate"], Value::Null, "all time has no rate: {s}");
    for gone in ["count", "sum", "avg", "min", "max", "p50", "p99"] {
        assert!(s.get(gone).is_none(), "{gone}: {s}");
    }

    let (status, s) = get_json(&app, "/api/v1/summary?name=jobs.done&window=1m").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["total"], 80.0, "{s}");
    assert_eq!(s["rate"], 80.0 / 60.0, "{s}");

    // Other kinds keep their sample statistics.
    m.record_histogram("payload.size", 7.0, &[]);
    let (_, s) = get_json(&app, "/api/v1/summary?name=payload.size").await;
    assert_eq!(
        (s["count"].clone(), s["min"].clone()),
        (1.into(), 7.0.into()),
        "{s}"
    );
}

#[tokio::test]
async fn a_window_shorter_than_one_bin_is_a_400_naming_the_shortest() {
    let (_clock, mem) = backend();
    let m = metrics_protocol::Metrics::new(mem.clone());
    m.record_counter("jobs.done", 1.0, &[]);
    m.record_success("checkout", &[]);
    m.record_timer("db.query", std::time::Duration::from_millis(5), &[]);
    let app = serve(&mem);
    for uri in [
        "/api/v1/summary?name=jobs.done&window=500ms",
        "/api/v1/summary?name=jobs.done&window=9s",
        "/api/v1/timing?name=db.query&window=1s",
        "/api/v1/success?operation=checkout&window=2s",
    ] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["parameter"], "window", "{uri}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("the shortest window is 10s"),
            "{uri}: {e}"
        );
    }
    let (status, s) = get_json(&app, "/api/v1/summary?name=jobs.done&window=10s").await;
    assert_eq!(status, StatusCode::OK, "{s}");
}

#[tokio::test]
async fn ranges_take_times_relative_to_now_and_default_to_the_last_hour() {
    // The backend's clock half an hour behind the service's: its bins
    // have all ended by the service's now (a range counts whole bins).
    let clock = Arc::new(ManualClock::at(
        chrono::Utc::now() - chrono::TimeDelta::minutes(30),
    ));
    let mem = MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap();
    let mem = Arc::new(mem);
    let m = metrics_protocol::Metrics::new(mem.clone());
    m.record_counter("jobs.done", 3.0, &[("queue", "a")]);
    m.record_counter("jobs.done", 4.0, &[("queue", "b")]);
    let app = serve(&mem);
    for (uri, total) in [
        ("/api/v1/query_range?name=jobs.done&step=1m", 7.0),
        (
            "/api/v1/query_range?name=jobs.done&step=1m&start=-45m&end=now",
            7.0,
        ),
        (
            "/api/v1/query_range?name=jobs.done&step=1m&start=-1.5h",
            7.0,
        ),
        ("/api/v1/query_range?name=jobs.done&step=1m&end=-31m", 0.0),
        ("/api/v1/query_range?name=jobs.done&step=1m&start=-20m", 0.0),
        ("/api/v1/rollup?name=jobs.done&period=hour&start=-1d", 7.0),
        (
            "/api/v1/rollup?name=jobs.done&period=hour&group_by=queue",
            7.0,
        ),
    ] {
        let (status, r) = get_json(&app, uri).await;
        if total == 0.0 && status == StatusCode::NOT_FOUND {
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{uri}: {r}");
        let sum: f64 = r["series"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["bins"].as_array().unwrap())
            .map(|b| b["sum"].as_f64().unwrap())
            .sum();
        assert_eq!(sum, total, "{uri}: {r}");
    }
    for (uri, parameter) in [
        (
            "/api/v1/query_range?name=jobs.done&step=1m&start=now",
            "end",
        ),
        (
            "/api/v1/query_range?name=jobs.done&step=1m&start=-5w",
            "start",
        ),
        ("/api/v1/rollup?name=jobs.done&period=hour&end=-x", "end"),
    ] {
        let (status, e) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert_eq!(e["parameter"], parameter, "{uri}: {e}");
    }
}
