//! The JSON API under `/api/v1/`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics_exposition::ExportFormat;
use metrics_protocol::MetricType;
use metrics_protocol::app::{
    DashboardKind, MetricFilter, MetricSummary, MetricValue, rate_from_counts,
};
use metrics_protocol::backend::HealthStatus;
use serde_json::{Value, json};

use crate::Source;
use crate::error::{ApiError, query_error};
use crate::params::Params;
use crate::stream::Streams;
use metrics_query::InstanceScope;

/// The largest `limit` of `top`.
const MAX_TOP: usize = 1000;

/// Runs a synchronous protocol call off the async workers (health checks
/// and exports may take a while), in the lane of the request's kind; a
/// panic in it is a 500, not a crash.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::limits::run_blocking(f).await
}

type ApiResult = Result<Response, ApiError>;

fn window_ms(w: Option<Duration>) -> Value {
    w.map_or(Value::Null, |w| json!(w.as_secs_f64() * 1e3))
}

/// `GET /api/v1/health`: 200 when healthy or degraded, 503 when unhealthy.
pub(crate) async fn health(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    Params::parse(q.as_deref(), &[])?;
    let system = s.system.clone();
    let report = blocking(move || system.system_health()).await?;
    let status = if report.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)).into_response())
}

/// `GET /api/v1/series?prefix=&type=&tag=k:v`: every series' name, type,
/// unit, tags and current value.
pub(crate) async fn series(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["prefix", "type", "tag"])?;
    let prefix = p.one("prefix")?.map(str::to_owned);
    let kind = p.one("type")?.map(parse_type).transpose()?;
    let tags = p.tags()?;
    let agg = s.system.aggregator();
    let values = blocking(move || {
        let borrowed: Vec<(&str, &str)> =
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        agg.metrics_by_tag(&borrowed)
    })
    .await?
    .map_err(|e| ApiError::from_metrics(e, "tag"))?;
    let series: Vec<Value> = values
        .into_iter()
        .filter(|v| prefix.as_deref().is_none_or(|p| v.name.starts_with(p)))
        .filter(|v| kind.is_none_or(|k| v.metric_type == k))
        .map(|v| {
            json!({
                "name": v.name,
                "type": v.metric_type,
                "unit": v.unit,
                "tags": v.tags,
                "value": finite(v.value),
            })
        })
        .collect();
    Ok(Json(json!({ "series": series })).into_response())
}

/// `GET /api/v1/summary?name=&window=`.
pub(crate) async fn summary(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["name", "window", "tag", "instance"])?;
    let name = p.required("name")?.to_owned();
    let window = p.window()?;
    let instance = p.instance()?;
    if !p.tags()?.is_empty() {
        return Err(ApiError::bad_parameter(
            "tag",
            "summaries by tag are not available: the protocol's metric_summary merges every \
             series of a name (see /api/v1/series?tag=k:v for each series' value)",
        ));
    }
    if instance != InstanceScope::Local && window.is_none() {
        return Err(ApiError::bad_parameter(
            "window",
            "a summary of other instances needs a `window` (all-time totals are each process's own)",
        ));
    }
    let ranges = match instance {
        InstanceScope::Local => s.ranges.clone(),
        _ => Some(crate::range::history_for(&s, &instance)?),
    };
    let agg = s.system.aggregator();
    let summary =
        blocking(
            move || match ranges.and_then(|r| r.summary(&name, window, &instance)) {
                Some(answer) => answer,
                None => agg.metric_summary(&name, window),
            },
        )
        .await?
        .map_err(|e| query_error(e, "name", window))?;
    Ok(Json(summary_json(summary)).into_response())
}

/// A summary as JSON. A counter's is its own shape: `total` (the sum of
/// its increments), `increments` (how many were recorded) and `rate` (the
/// total per second over the window; `null` for all time), without the
/// sample statistics (mean, extremes, percentiles) of the other kinds: the
/// backend keeps a counter as a count and a sum per bin, so its extremes
/// would be of bins, not of increments. Gauges, histograms and timers keep
/// theirs.
pub(crate) fn summary_json(summary: MetricSummary) -> Value {
    let counter = summary.metric_type == MetricType::Counter;
    let (total, increments, window) = (summary.sum, summary.count, summary.window);
    let mut body = serde_json::to_value(summary).unwrap_or(Value::Null);
    if let (true, Value::Object(b)) = (counter, &mut body) {
        for k in [
            "count",
            "sum",
            "avg",
            "min",
            "max",
            "last",
            "p50",
            "p90",
            "p95",
            "p99",
            "quantiles_cover",
        ] {
            b.remove(k);
        }
        b.insert("total".into(), finite(total));
        b.insert("increments".into(), json!(increments));
        let rate = window
            .filter(|w| !w.is_zero())
            .map_or(Value::Null, |w| finite(total / w.as_secs_f64()));
        b.insert("rate".into(), rate);
    }
    body
}

/// `GET /api/v1/timing?name=&window=`.
pub(crate) async fn timing(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["name", "window"])?;
    let name = p.required("name")?.to_owned();
    let window = p.window()?;
    let (agg, ranges) = (s.system.aggregator(), s.ranges.clone());
    let n = name.clone();
    let stats = blocking(move || match ranges.and_then(|r| r.timing(&n, window)) {
        Some(answer) => answer,
        None => agg.timing_stats(&n, window),
    })
    .await?
    .map_err(|e| query_error(e, "name", window))?;
    let mut body = json!({ "name": name, "window_ms": window_ms(window) });
    if let (Value::Object(b), Ok(Value::Object(st))) = (&mut body, serde_json::to_value(stats)) {
        b.extend(st);
    }
    Ok(Json(body).into_response())
}

/// `GET /api/v1/success?operation=&window=&instance=`: success rate and
/// failures by error type.
pub(crate) async fn success(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["operation", "window", "instance"])?;
    let operation = p.required("operation")?.to_owned();
    let window = p.window()?;
    let instance = p.instance()?;
    let ranges = match instance {
        InstanceScope::Local => s.ranges.clone(),
        _ => Some(crate::range::history_for(&s, &instance)?),
    };
    let agg = s.system.aggregator();
    let op = operation.clone();
    let (rate, failures) = blocking(move || {
        if let Some(answer) = ranges.and_then(|r| r.outcomes(&op, window, &instance)) {
            let (ok, failures) = answer?;
            let rate = rate_from_counts(&op, ok, &failures)?;
            return Ok((rate, failures));
        }
        let rate = agg.success_rate(&op, window)?;
        let failures = agg.failure_breakdown(&op, window)?;
        Ok::<_, metrics_protocol::MetricsError>((rate, failures))
    })
    .await?
    .map_err(|e| query_error(e, "operation", window))?;
    Ok(Json(json!({
        "operation": operation,
        "window_ms": window_ms(window),
        "success_rate": finite(rate),
        "failures": failures,
    }))
    .into_response())
}

/// `GET /api/v1/top?type=&limit=`.
pub(crate) async fn top(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["type", "limit"])?;
    let kind = p
        .one("type")?
        .map(parse_type)
        .transpose()?
        .unwrap_or(MetricType::Counter);
    let limit = match p.one("limit")? {
        None => 10,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    "limit",
                    format!("expected a whole number from 1 to {MAX_TOP}, got `{l}`"),
                )
            })?,
    };
    let agg = s.system.aggregator();
    let values = blocking(move || agg.top_metrics(kind, limit))
        .await?
        .map_err(|e| ApiError::from_metrics(e, "type"))?;
    Ok(Json(
        json!({ "type": kind, "metrics": values.into_iter().map(value_json).collect::<Vec<_>>() }),
    )
    .into_response())
}

/// `GET /api/v1/dashboards/{kind}`.
pub(crate) async fn dashboard(
    State(s): State<Source>,
    kind: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    Params::parse(q.as_deref(), &[])?;
    let Path(kind) = kind.map_err(|e| ApiError::bad_parameter("kind", e.body_text()))?;
    let kind: DashboardKind = kind.parse().map_err(|e: metrics_protocol::MetricsError| {
        ApiError::bad_parameter("kind", e.to_string())
    })?;
    let system = s.system.clone();
    let data = blocking(move || system.create_dashboard_data(kind))
        .await?
        .map_err(|e| ApiError::from_metrics(e, "kind"))?;
    Ok(Json(data).into_response())
}

/// `GET /api/v1/export?format=` (default json); 501 without an exporter.
pub(crate) async fn export(State(s): State<Source>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["format"])?;
    let format = match p.one("format")? {
        None => ExportFormat::Json,
        Some(f) => f
            .parse::<ExportFormat>()
            .map_err(|e| ApiError::bad_parameter("format", e.to_string()))?,
    };
    let exporter = s
        .exporter
        .clone()
        .ok_or_else(crate::exposition::no_exporter)?;
    let text = blocking(move || exporter.export(format))
        .await?
        .map_err(|e| ApiError::from_metrics(e, "format"))?;
    Ok(([(CONTENT_TYPE, format.content_type())], text).into_response())
}

/// `GET /api/v1/stream?prefix=&type=&tag=k:v`: server-sent events, `metric`
/// (a recorded value, JSON) and `lagged` (`{"missed": n}`); 503 past the
/// subscriber limit.
pub(crate) async fn stream(
    State(streams): State<Arc<Streams>>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &["prefix", "type", "tag"])?;
    let mut filter = MetricFilter::default();
    if let Some(prefix) = p.one("prefix")? {
        filter = filter.name_prefix(prefix);
    }
    for t in p.all("type") {
        filter = filter.metric_type(parse_type(t)?);
    }
    for (k, v) in p.tags()? {
        filter = filter.tag(k, v);
    }
    Ok(streams.subscribe(filter))
}

/// A request for another instance's history where no shared store answers.
pub(crate) fn other_instances_unsupported() -> ApiError {
    ApiError::bad_parameter(
        "instance",
        "other instances' history needs a shared history store; this system has none",
    )
}

/// Any other path: 404 with a JSON error.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such path (see /api/v1/openapi.json)")
}

fn parse_type(t: &str) -> Result<MetricType, ApiError> {
    t.parse()
        .map_err(|e: metrics_protocol::MetricsError| ApiError::bad_parameter("type", e.to_string()))
}

/// A value as JSON, non-finite numbers as `null`.
pub(crate) fn value_json(v: MetricValue) -> Value {
    json!({
        "name": v.name,
        "type": v.metric_type,
        "unit": v.unit,
        "value": finite(v.value),
        "timestamp": v.timestamp,
        "tags": v.tags,
        "metadata": metadata_json(v.metadata),
    })
}

/// A value's metadata as JSON: what reads as a finite number (the
/// statistics of a distribution: `sum`, `avg`, `p95`...) is a JSON number,
/// as everywhere else in the API; anything else stays a string.
fn metadata_json(metadata: std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        metadata
            .into_iter()
            .map(|(k, v)| {
                let n = v.parse::<f64>().ok().filter(|x| x.is_finite());
                (k, n.map_or_else(|| Value::String(v), |x| json!(x)))
            })
            .collect(),
    )
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}
