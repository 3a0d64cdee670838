//! The JSON API under `/api/v1/`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use metrics_exposition::ExportFormat;
use metrics_protocol::app::{
    DashboardData, DashboardKind, HealthReport, MetricFilter, MetricSummary, MetricValue,
    TimingStats, rate_from_counts,
};
use metrics_protocol::backend::HealthStatus;
use metrics_protocol::{MetricType, MetricUnit};
use serde::Serialize;
use utoipa::ToSchema;

use crate::Source;
use crate::error::{ApiError, query_error};
use crate::params::{Params, doc};
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

fn window_ms(w: Option<Duration>) -> Option<f64> {
    w.map(|w| w.as_secs_f64() * 1e3)
}

/// Unhealthy (a health report), or too many requests of this kind waiting
/// (an error, `overloaded`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum HealthUnavailable {
    /// The system is unhealthy.
    Report(HealthReport),
    /// The server is at its limit.
    Error(ApiError),
}

/// `GET /api/v1/health`: 200 when healthy or degraded, 503 when unhealthy.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "health",
    summary = "Health of every backend and check",
    responses(
        (status = 200, description = "Healthy or degraded.", body = HealthReport),
        (status = 503, description = "Unhealthy (a health report), or too many requests of this kind are waiting for the server's threads (an error, `overloaded`; retry after the `Retry-After` seconds).", body = HealthUnavailable),
    )
)]
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

/// The answer of `series`.
#[derive(Serialize, ToSchema)]
pub(crate) struct SeriesList {
    /// Every series that passes the filters.
    series: Vec<SeriesEntry>,
}

/// One series: name, kind, unit, tags and current value.
#[derive(Serialize, ToSchema)]
pub(crate) struct SeriesEntry {
    /// Metric name.
    name: String,
    /// Kind of metric.
    #[serde(rename = "type")]
    metric_type: MetricType,
    /// The unit of the value, the one `/metrics` exports it in: `bytes`
    /// for a metric described in a size unit or named `...bytes`,
    /// `milliseconds` for timers, `count` for plain counts.
    unit: MetricUnit,
    /// The series' tags.
    tags: BTreeMap<String, String>,
    /// The current value (`null` when not a finite number).
    #[schema(required = true)]
    value: Option<f64>,
}

/// `GET /api/v1/series?prefix=&type=&tag=k:v`: every series' name, type,
/// unit, tags and current value.
#[utoipa::path(
    get,
    path = "/api/v1/series",
    operation_id = "series",
    summary = "Every series: name, type, unit, tags, current value",
    params(doc::Prefix, doc::Kind, doc::Tag),
    responses(
        (status = 200, description = "The series.", body = SeriesList),
        (status = 501, description = UNSUPPORTED, body = ApiError),
    )
)]
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
    let series = values
        .into_iter()
        .filter(|v| prefix.as_deref().is_none_or(|p| v.name.starts_with(p)))
        .filter(|v| kind.is_none_or(|k| v.metric_type == k))
        .map(|v| SeriesEntry {
            value: finite(v.value),
            name: v.name,
            metric_type: v.metric_type,
            unit: v.unit,
            tags: v.tags,
        })
        .collect();
    Ok(Json(SeriesList { series }).into_response())
}

/// `instance` of a summary: as elsewhere, and the window it needs.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SummaryInstance {
    /// Whose history: absent for the instance serving the request, an
    /// instance's name (its history in the shared store), `*` for every
    /// instance merged. With an instance, `window` is required. Other
    /// instances need a shared history store (else 400 naming `instance`).
    #[param(pattern = r"\S")]
    instance: Option<String>,
}

/// `GET /api/v1/summary?name=&window=`.
#[utoipa::path(
    get,
    path = "/api/v1/summary",
    operation_id = "summary",
    summary = "Summary of every series of a metric, merged",
    params(doc::Name, doc::Window, SummaryInstance),
    responses(
        (status = 200, description = "The summary, in the metric's `unit` (the one `/metrics` gives it: `bytes` for sizes, milliseconds for timers). A counter's is `total` (the sum of its increments), `increments` (how many) and `rate` (total per second over the window, null for all time), without sample statistics (the backend keeps a counter's bins, not its increments, so extremes would be of bins). Gauges, histograms and timers: `count` samples, their `sum`, `avg`, `min`, `max`, and percentiles for distributions.", body = SummaryAnswer),
        (status = 404, description = "Nothing recorded under this name (in the window).", body = ApiError),
        (status = 501, description = UNSUPPORTED, body = ApiError),
    )
)]
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
    Ok(Json(SummaryAnswer::from(summary)).into_response())
}

/// The answer of `summary`: a counter's in its own terms, any other
/// kind's with its sample statistics.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum SummaryAnswer {
    /// A counter's.
    Counter(CounterSummary),
    /// A gauge's, histogram's or timer's.
    Samples(MetricSummary),
}

/// A counter's summary: `total` (the sum of its increments), `increments`
/// (how many were recorded) and `rate` (the total per second over the
/// window; `null` for all time), without the sample statistics (mean,
/// extremes, percentiles) of the other kinds: the backend keeps a counter
/// as a count and a sum per bin, so its extremes would be of bins, not of
/// increments.
#[derive(Serialize, ToSchema)]
pub(crate) struct CounterSummary {
    /// Metric name.
    name: String,
    /// Always `counter`.
    metric_type: MetricType,
    /// Unit of the total.
    unit: MetricUnit,
    /// Number of series (tag sets) merged into this summary.
    series: usize,
    /// The sum of the increments (`null` when not a finite number).
    #[schema(required = true)]
    total: Option<f64>,
    /// How many increments were recorded.
    increments: u64,
    /// `total` per second over the window; `null` for all time.
    #[schema(required = true)]
    rate: Option<f64>,
    /// The window summarised, in milliseconds; `null` for all time.
    window: Option<f64>,
    /// How far back, from now, the total reaches, in milliseconds (see
    /// `MetricSummary`'s `covers`).
    covers: Option<f64>,
}

impl From<MetricSummary> for SummaryAnswer {
    fn from(s: MetricSummary) -> Self {
        if s.metric_type != MetricType::Counter {
            return SummaryAnswer::Samples(s);
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        SummaryAnswer::Counter(CounterSummary {
            total: finite(s.sum),
            increments: s.count,
            rate: s
                .window
                .filter(|w| !w.is_zero())
                .and_then(|w| finite(s.sum / w.as_secs_f64())),
            window: ms(s.window),
            covers: ms(s.covers),
            name: s.name,
            metric_type: s.metric_type,
            unit: s.unit,
            series: s.series,
        })
    }
}

/// `name`: a timer's.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct TimerName {
    /// Timer (operation) name.
    #[param(min_length = 1)]
    name: String,
}

/// The answer of `timing`: count and durations in milliseconds.
#[derive(Serialize, ToSchema)]
pub(crate) struct TimingAnswer {
    /// Timer name.
    name: String,
    /// The window, in milliseconds; `null` for all time.
    #[schema(required = true)]
    window_ms: Option<f64>,
    /// The statistics.
    #[serde(flatten)]
    stats: TimingStats,
}

/// `GET /api/v1/timing?name=&window=`.
#[utoipa::path(
    get,
    path = "/api/v1/timing",
    operation_id = "timing",
    summary = "Timing statistics of a timer",
    params(TimerName, doc::Window),
    responses(
        (status = 200, description = "Count and durations in milliseconds.", body = TimingAnswer),
        (status = 404, description = "No timings of this name (in the window).", body = ApiError),
        (status = 501, description = UNSUPPORTED, body = ApiError),
    )
)]
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
    Ok(Json(TimingAnswer {
        name,
        window_ms: window_ms(window),
        stats,
    })
    .into_response())
}

/// `operation`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct Operation {
    /// Operation name.
    #[param(min_length = 1)]
    operation: String,
}

/// The answer of `success`: the rate from 0 to 1 and failure counts.
#[derive(Serialize, ToSchema)]
pub(crate) struct SuccessAnswer {
    /// Operation name.
    operation: String,
    /// The window, in milliseconds; `null` for all time.
    #[schema(required = true)]
    window_ms: Option<f64>,
    /// Successes / (successes + failures), 0 to 1 (`null` when not a
    /// finite number).
    #[schema(required = true)]
    success_rate: Option<f64>,
    /// Failures, by error type.
    failures: BTreeMap<String, u64>,
}

/// `GET /api/v1/success?operation=&window=&instance=`: success rate and
/// failures by error type.
#[utoipa::path(
    get,
    path = "/api/v1/success",
    operation_id = "success",
    summary = "Success rate and failures by error type of an operation",
    params(Operation, doc::Window, doc::Instance),
    responses(
        (status = 200, description = "Rate from 0 to 1 and failure counts.", body = SuccessAnswer),
        (status = 404, description = "No outcomes of this operation (in the window).", body = ApiError),
        (status = 501, description = UNSUPPORTED, body = ApiError),
    )
)]
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
    Ok(Json(SuccessAnswer {
        operation,
        window_ms: window_ms(window),
        success_rate: finite(rate),
        failures,
    })
    .into_response())
}

/// `limit` of `top`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct Limit {
    /// How many (default 10).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The answer of `top`: the series of one kind with the largest values.
#[derive(Serialize, ToSchema)]
pub(crate) struct TopAnswer {
    /// The kind asked for.
    #[serde(rename = "type")]
    metric_type: MetricType,
    /// Largest first.
    metrics: Vec<ValueAnswer>,
}

/// `GET /api/v1/top?type=&limit=`.
#[utoipa::path(
    get,
    path = "/api/v1/top",
    operation_id = "top",
    summary = "The series of one type with the largest values",
    params(doc::Kind, Limit),
    responses(
        (status = 200, description = "Largest first.", body = TopAnswer),
        (status = 501, description = UNSUPPORTED, body = ApiError),
    )
)]
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
    Ok(Json(TopAnswer {
        metric_type: kind,
        metrics: values.into_iter().map(ValueAnswer::from).collect(),
    })
    .into_response())
}

/// `GET /api/v1/dashboards/{kind}`.
#[utoipa::path(
    get,
    path = "/api/v1/dashboards/{kind}",
    operation_id = "dashboard",
    summary = "Data of one dashboard",
    params(("kind" = DashboardKind, Path, description = "Which dashboard.")),
    responses(
        (status = 200, description = "Panels in display order.", body = DashboardData),
        (status = 501, description = UNSUPPORTED, body = ApiError),
    )
)]
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

/// `format` of `export`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct Format {
    /// Default json.
    format: Option<ExportFormat>,
}

/// `GET /api/v1/export?format=` (default json); 501 without an exporter.
#[utoipa::path(
    get,
    path = "/api/v1/export",
    operation_id = "export",
    summary = "Everything recorded, in one format",
    params(Format),
    responses(
        (status = 200, description = "The export.", content(
            ("application/json"),
            (String = "text/csv"),
            (String = "text/plain"),
            (String = "application/openmetrics-text"),
        )),
        (status = 501, description = "No exporter was given to the server, or the system cannot export.", body = ApiError),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    operation_id = "stream",
    summary = "Values recorded from now on, as server-sent events",
    params(doc::Prefix, doc::Kinds, doc::Tag),
    responses(
        (status = 200, description = "Events `metric` (data: a MetricValue) and `lagged` (data: {\"missed\": n}, values this subscriber lost by falling behind).", content_type = "text/event-stream", body = String),
        (status = 503, description = "As many subscribers as the server takes are connected (`too_many_streams`, 32 by default); retry after the `Retry-After` seconds.", body = ApiError),
    )
)]
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

/// One value of a series, as `top` and the stream give it.
#[derive(Serialize, ToSchema)]
#[schema(as = MetricValue)]
pub(crate) struct ValueAnswer {
    /// Metric name.
    name: String,
    /// Kind of metric.
    #[serde(rename = "type")]
    metric_type: MetricType,
    /// The unit of the value, the one `/metrics` exports it in.
    unit: MetricUnit,
    /// The value (`null` when not a finite number).
    #[schema(required = true)]
    value: Option<f64>,
    /// When it was recorded or read.
    timestamp: DateTime<Utc>,
    /// The series' tags.
    tags: BTreeMap<String, String>,
    /// Statistics of a distribution (`sum`, `avg`, `min`, `max`, `p50`,
    /// `p95`, `p99`) as numbers; anything else as a string.
    metadata: BTreeMap<String, MetadataValue>,
}

/// One annotation of a value: what reads as a finite number is a JSON
/// number, as everywhere else in the API; anything else stays a string.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum MetadataValue {
    /// A statistic.
    Number(f64),
    /// Anything else.
    Text(String),
}

impl From<MetricValue> for ValueAnswer {
    fn from(v: MetricValue) -> Self {
        ValueAnswer {
            value: finite(v.value),
            metadata: v
                .metadata
                .into_iter()
                .map(|(k, v)| {
                    let n = v.parse::<f64>().ok().filter(|x| x.is_finite());
                    (k, n.map_or(MetadataValue::Text(v), MetadataValue::Number))
                })
                .collect(),
            name: v.name,
            metric_type: v.metric_type,
            unit: v.unit,
            timestamp: v.timestamp,
            tags: v.tags,
        }
    }
}

/// A finite number, else `None` (`null` in JSON).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The description of a 501 from a system that cannot answer queries.
const UNSUPPORTED: &str =
    "The system cannot answer queries (a write-only backend such as StatsD alone).";
