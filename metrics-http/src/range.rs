//! `GET /api/v1/query_range`: history in bins, from a system that keeps it.
//!
//! The protocol has no range query, so a server of any system cannot ask
//! for one; a system that keeps binned history (the memory backend's
//! `range_query`) plugs it in with [`Source::with_ranges`](crate::Source::with_ranges).

use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use metrics_protocol::MetricsError;
use metrics_protocol::app::MetricSummary;
use metrics_protocol::app::TimingStats;
use serde::Serialize;

use crate::Source;
use crate::api::blocking;
use crate::error::ApiError;
use crate::params::{Params, parse_window};

/// The most bins one answer may have per series (as a Prometheus server
/// limits its range queries).
pub const MAX_POINTS: i64 = 11_000;

/// A range query: bins of `step` from `start` to `end` of the series of
/// `name` whose tags contain `tags`, merged per value of the tag `group_by`
/// (all in one when `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeRequest {
    /// Metric name.
    pub name: String,
    /// Only series whose tags contain all of these.
    pub tags: Vec<(String, String)>,
    /// First instant (inclusive).
    pub start: DateTime<Utc>,
    /// Last instant (exclusive).
    pub end: DateTime<Utc>,
    /// Width of one bin.
    pub step: Duration,
    /// One group per value of this tag.
    pub group_by: Option<String>,
    /// Whose history (the `instance` parameter).
    pub instance: InstanceScope,
}

/// The `instance` value that asks for every instance merged.
pub const ALL_INSTANCES: &str = "*";

/// Whose history a query asks about: the `instance` parameter of
/// `query_range`, `summary` and `rollup`. Other instances' history comes
/// from a store several instances share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InstanceScope {
    /// The instance serving the request (no `instance` parameter).
    #[default]
    Local,
    /// One instance, by name.
    Named(String),
    /// Every instance merged (`instance=*`, [`ALL_INSTANCES`]).
    All,
}

/// A calendar period of a rollup (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Clock hours.
    Hour,
    /// Days.
    Day,
    /// ISO weeks, from Monday.
    Week,
    /// Calendar months.
    Month,
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "hour" => Ok(Period::Hour),
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            other => Err(format!("expected hour, day, week or month, got `{other}`")),
        }
    }
}

/// A calendar rollup: the series of `name` whose tags contain `tags`, per
/// `period` from `start` to `end`, per value of `group_by`.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRequest {
    /// Metric name.
    pub name: String,
    /// Only series whose tags contain all of these.
    pub tags: Vec<(String, String)>,
    /// The calendar period.
    pub period: Period,
    /// First instant (inclusive).
    pub start: DateTime<Utc>,
    /// Last instant (exclusive).
    pub end: DateTime<Utc>,
    /// One group per value of this tag.
    pub group_by: Option<String>,
    /// Whose history.
    pub instance: InstanceScope,
}

/// Successes, and failures by error type.
pub type Outcomes = (u64, std::collections::BTreeMap<String, u64>);

/// One step of a [`RangeGroup`] (a `step` of a range query, or a calendar
/// period of a rollup): `[start, end)` is the step; `[covers_start,
/// covers_end)` is what the bins counted in it really span (narrower at
/// the edges of the range or of history, wider where stored bins are
/// coarser than the step). Only bins wholly inside the request's range
/// count, each in the step holding its start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeBin {
    /// Start of the step.
    pub start: DateTime<Utc>,
    /// End of the step (exclusive).
    pub end: DateTime<Utc>,
    /// Start of the earliest bin counted.
    pub covers_start: DateTime<Utc>,
    /// End of the latest bin counted (exclusive).
    pub covers_end: DateTime<Utc>,
    /// Samples in the step.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Their mean.
    pub avg: f64,
}

/// One group of a range or rollup answer: the steps of every series of
/// the name with one value of the `group_by` tag (or all of them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeGroup {
    /// The `group_by` tag's value (`None` without grouping).
    pub group: Option<String>,
    /// Non-empty steps, oldest first.
    pub bins: Vec<RangeBin>,
}

/// A range or rollup answer: its groups and, when part of the history
/// could not be asked, why ([`partial`](Self::partial)).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RangeAnswer {
    /// The groups, as [`RangeQueries::query_range`] or
    /// [`RangeQueries::rollup`] give them (serialised as `series`, the
    /// answer's JSON field).
    pub series: Vec<RangeGroup>,
    /// Set when the answer lacks part of the history because a source did
    /// not answer (a history store that is down, or slower than its
    /// bound): why, and what the answer holds instead (for example
    /// `history store unavailable (did not answer within 1 s): recent
    /// history from memory only`). Absent from the JSON when the answer is
    /// complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
}

impl RangeAnswer {
    /// A complete answer of `series` (its groups).
    pub fn complete(series: Vec<RangeGroup>) -> Self {
        RangeAnswer {
            series,
            partial: None,
        }
    }
}

/// A system that answers range queries over its binned history.
///
/// A history that outlives the process (a store of earlier runs) may also
/// answer `/api/v1/summary`, `/api/v1/timing`, `/api/v1/success` and
/// `/api/v1/rollup`, and other instances' history (the provided methods
/// return `None`: the system's own query answers, and a request for
/// another instance is refused).
pub trait RangeQueries: Send + Sync {
    /// Bins of `request`. [`MetricsError::NoData`] for an unknown name,
    /// [`MetricsError::InvalidArgument`] for a step or range the history
    /// cannot give.
    fn query_range(&self, request: &RangeRequest) -> Result<Vec<RangeGroup>, MetricsError>;

    /// The summary of `name` over `window` from this history, or `None` to
    /// let the system answer.
    fn summary(
        &self,
        _name: &str,
        _window: Option<Duration>,
        _instance: &InstanceScope,
    ) -> Option<Result<MetricSummary, MetricsError>> {
        None
    }

    /// The timing statistics of `name` over `window` from this history,
    /// or `None` to let the system answer.
    fn timing(
        &self,
        _name: &str,
        _window: Option<Duration>,
    ) -> Option<Result<TimingStats, MetricsError>> {
        None
    }

    /// Successes and failures by error type of `operation` over `window`
    /// (all time with `None`) from this history for `instance`, or `None`
    /// to let the system answer (for the serving instance).
    fn outcomes(
        &self,
        _operation: &str,
        _window: Option<Duration>,
        _instance: &InstanceScope,
    ) -> Option<Result<Outcomes, MetricsError>> {
        None
    }

    /// Whether this history answers for other instances than the serving
    /// one ([`InstanceScope::Named`], [`InstanceScope::All`]): a shared
    /// store. Without it such requests are refused (400 naming `instance`).
    fn serves_instances(&self) -> bool {
        false
    }

    /// Calendar rollups, or `None` when this history has none.
    fn rollup(&self, _request: &RollupRequest) -> Option<Result<Vec<RangeGroup>, MetricsError>> {
        None
    }

    /// [`query_range`](Self::query_range)'s answer, saying whether part of
    /// the history could not be asked ([`RangeAnswer::partial`]): what
    /// `/api/v1/query_range` serves. By default `query_range`'s series, as
    /// a complete answer.
    fn query_range_answer(&self, request: &RangeRequest) -> Result<RangeAnswer, MetricsError> {
        self.query_range(request).map(RangeAnswer::complete)
    }

    /// [`rollup`](Self::rollup)'s answer, saying whether part of the
    /// history could not be asked: what `/api/v1/rollup` serves. By
    /// default `rollup`'s series, as a complete answer.
    fn rollup_answer(&self, request: &RollupRequest) -> Option<Result<RangeAnswer, MetricsError>> {
        self.rollup(request).map(|r| r.map(RangeAnswer::complete))
    }
}

/// An RFC 3339 time or Unix seconds (as Prometheus' API takes them).
pub(crate) fn parse_time(key: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())
        .and_then(|s| DateTime::from_timestamp_millis((s * 1e3) as i64))
        .ok_or_else(|| {
            ApiError::bad_parameter(
                key,
                format!("expected an RFC 3339 time or Unix seconds, got `{v}`"),
            )
        })
}

/// The `start` and `end` parameters, `end` after `start`.
fn time_range(p: &Params) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let start = parse_time("start", p.required("start")?)?;
    let end = parse_time("end", p.required("end")?)?;
    if end <= start {
        return Err(ApiError::bad_parameter(
            "end",
            "`end` must be after `start`",
        ));
    }
    Ok((start, end))
}

/// `GET /api/v1/query_range?name=&start=&end=&step=&tag=k:v&group_by=k`.
pub(crate) async fn query_range(State(s): State<Source>, RawQuery(q): RawQuery) -> Response {
    match answer(s, q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn answer(s: Source, q: Option<String>) -> Result<Response, ApiError> {
    let p = Params::parse(
        q.as_deref(),
        &[
            "name", "start", "end", "step", "tag", "group_by", "instance",
        ],
    )?;
    let name = p.required("name")?.to_owned();
    let (start, end) = time_range(&p)?;
    let step = p.required("step")?;
    let step = parse_window(step).map_err(|m| ApiError::bad_parameter("step", m))?;
    let span_ms = (end - start).num_milliseconds();
    if span_ms / (step.as_millis().max(1) as i64) > MAX_POINTS {
        return Err(ApiError::bad_parameter(
            "step",
            format!("more than {MAX_POINTS} bins: choose a longer step or a shorter range"),
        ));
    }
    let group_by = p.group_by()?;
    let request = RangeRequest {
        name,
        tags: p.tags()?,
        start,
        end,
        step,
        group_by,
        instance: p.instance()?,
    };
    let ranges = history_for(&s, &request.instance)?;
    let answer = blocking(move || ranges.query_range_answer(&request))
        .await?
        .map_err(|e| match e {
            MetricsError::InvalidArgument(m) => ApiError::bad_parameter("step", m),
            e => ApiError::from_metrics(e, "name"),
        })?;
    Ok(Json(answer).into_response())
}

/// `GET /api/v1/rollup?name=&period=hour|day|week|month&start=&end=&tag=k:v&group_by=k&instance=`.
pub(crate) async fn rollup(State(s): State<Source>, RawQuery(q): RawQuery) -> Response {
    match rollup_answer(s, q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn rollup_answer(s: Source, q: Option<String>) -> Result<Response, ApiError> {
    let p = Params::parse(
        q.as_deref(),
        &[
            "name", "period", "start", "end", "tag", "group_by", "instance",
        ],
    )?;
    let name = p.required("name")?.to_owned();
    let period: Period = p
        .required("period")?
        .parse()
        .map_err(|m| ApiError::bad_parameter("period", m))?;
    let (start, end) = time_range(&p)?;
    let request = RollupRequest {
        name,
        tags: p.tags()?,
        period,
        start,
        end,
        group_by: p.group_by()?,
        instance: p.instance()?,
    };
    let ranges = history_for(&s, &request.instance)?;
    let answer = blocking(move || ranges.rollup_answer(&request))
        .await?
        .ok_or_else(no_history)?
        .map_err(|e| ApiError::from_metrics(e, "name"))?;
    Ok(Json(answer).into_response())
}

/// The history of `s`, if it can answer for `instance`.
pub(crate) fn history_for(
    s: &Source,
    instance: &InstanceScope,
) -> Result<std::sync::Arc<dyn RangeQueries>, ApiError> {
    let Some(ranges) = s.ranges.clone() else {
        return Err(match instance {
            InstanceScope::Local => no_history(),
            _ => crate::api::other_instances_unsupported(),
        });
    };
    if *instance != InstanceScope::Local && !ranges.serves_instances() {
        return Err(crate::api::other_instances_unsupported());
    }
    Ok(ranges)
}

fn no_history() -> ApiError {
    ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        error: "unsupported",
        message: "this system keeps no binned history to query".into(),
        parameter: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_answer_says_why_and_a_complete_one_has_no_flag() {
        let complete = serde_json::to_value(RangeAnswer::complete(vec![])).unwrap();
        assert_eq!(complete, serde_json::json!({ "series": [] }));
        let partial = RangeAnswer {
            series: vec![],
            partial: Some("history store unavailable".into()),
        };
        let v = serde_json::to_value(partial).unwrap();
        assert_eq!(v["partial"], "history store unavailable");
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        let t = parse_time("start", "2026-01-02T03:04:05Z").unwrap();
        assert_eq!(t.timestamp(), 1_767_323_045);
        assert_eq!(
            parse_time("start", "1767323045.5")
                .unwrap()
                .timestamp_millis(),
            1_767_323_045_500
        );
        for bad in ["yesterday", "", "NaN", "1e300"] {
            assert_eq!(
                parse_time("end", bad).unwrap_err().parameter.as_deref(),
                Some("end"),
                "{bad}"
            );
        }
    }
}
