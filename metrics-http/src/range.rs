//! `GET /api/v1/query_range`: history in bins, from a system that keeps it.
//!
//! The protocol has no range query, so a server of any system cannot ask
//! for one; a system that keeps binned history (the memory backend's
//! `range_query`) plugs it in with [`Source::with_ranges`](crate::Source::with_ranges).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use metrics_protocol::MetricsError;
use metrics_query::{InstanceScope, MAX_POINTS, Period, RangeQueries, RangeRequest, RollupRequest};

use crate::Source;
use crate::api::blocking;
use crate::error::ApiError;
use crate::params::{Params, doc, parse_window};

/// How far back a range reaches when neither `start` nor `end` is given.
pub(crate) const DEFAULT_RANGE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// An RFC 3339 time, Unix seconds (as Prometheus' API takes them), `now`,
/// or a time relative to now: `-` and a window (`-5m`, `-1.5h`, `-30s`).
pub(crate) fn parse_time(
    key: &str,
    v: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    let v = v.trim();
    if v == "now" {
        return Ok(now);
    }
    if let Some(ago) = v.strip_prefix("now-").or_else(|| v.strip_prefix('-'))
        && ago.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && ago.ends_with(|c: char| c.is_ascii_alphabetic())
    {
        let ago = parse_window(ago).map_err(|m| ApiError::bad_parameter(key, m))?;
        return chrono::TimeDelta::from_std(ago)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| ApiError::bad_parameter(key, format!("`{v}` is out of range")));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite())
        .and_then(|s| DateTime::from_timestamp_millis((s * 1e3) as i64))
        .ok_or_else(|| {
            ApiError::bad_parameter(
                key,
                format!(
                    "expected an RFC 3339 time, Unix seconds, `now` or a time before now \
                     such as `-5m`, got `{v}`"
                ),
            )
        })
}

/// The `start` and `end` parameters, `end` after `start`: `end` absent is
/// now, `start` absent is an hour before `end`.
fn time_range(p: &Params, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let end = match p.one("end")? {
        Some(e) => parse_time("end", e, now)?,
        None => now,
    };
    let start = match p.one("start")? {
        Some(s) => parse_time("start", s, now)?,
        None => end - DEFAULT_RANGE,
    };
    if end <= start {
        return Err(ApiError::bad_parameter(
            "end",
            "`end` must be after `start`",
        ));
    }
    Ok((start, end))
}

/// `GET /api/v1/query_range?name=&start=&end=&step=&tag=k:v&group_by=k`.
#[utoipa::path(
    get,
    path = "/api/v1/query_range",
    operation_id = "query_range",
    summary = "History in bins of `step`, per value of a tag",
    params(doc::Name, doc::TimeRange, doc::Step, doc::Tag, doc::GroupBy, doc::Instance),
    responses(
        (status = 200, description = "Groups of bins (`series`), one per `group_by` value (one without it), oldest bin first. The range is answered on its step grid (`grid`): `start` rounded down and `end` rounded up to whole steps counted from the Unix epoch, so stored bins (aligned the same way) each lie in one step and no step holds a sample from outside its `[start, end)`. Each bin is `[start, end)`, one step; `[covers_start, covers_end)` is what its stored bins really span (wider where stored bins are coarser than the step: such a bin counts whole in the step holding its start).", body = metrics_query::RangeAnswer),
        (status = 404, description = "Nothing recorded under this name.", body = ApiError),
        (status = 501, description = "The system keeps no binned history (the protocol has no range query; the main program plugs in the memory backend's).", body = ApiError),
    )
)]
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
    let (start, end) = time_range(&p, Utc::now())?;
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

/// `period` of a rollup.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PeriodParam {
    /// Calendar period.
    period: Period,
}

/// `GET /api/v1/rollup?name=&period=hour|day|week|month&start=&end=&tag=k:v&group_by=k&instance=`.
#[utoipa::path(
    get,
    path = "/api/v1/rollup",
    operation_id = "rollup",
    summary = "Calendar rollups (UTC hour, day, ISO week, month), per value of a tag",
    params(doc::Name, PeriodParam, doc::TimeRange, doc::Tag, doc::GroupBy, doc::Instance),
    responses(
        (status = 200, description = "Series of periods, oldest first. Each period is `[start, end)`; only bins wholly inside the request's range count, each in the period holding its start; `[covers_start, covers_end)` is what they really span (narrower at the edges, wider where stored bins are coarser than the period).", body = metrics_query::RangeAnswer),
        (status = 404, description = "Nothing recorded under this name (in the range, for the instance).", body = ApiError),
        (status = 501, description = "The system keeps no binned history.", body = ApiError),
    )
)]
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
        .trim()
        .parse()
        .map_err(|m| ApiError::bad_parameter("period", m))?;
    let (start, end) = time_range(&p, Utc::now())?;
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
    fn times_are_rfc3339_unix_seconds_now_or_relative_to_now() {
        let now = DateTime::from_timestamp(1_767_323_045, 0).unwrap();
        let t = parse_time("start", "2026-01-02T03:04:05Z", now).unwrap();
        assert_eq!(t.timestamp(), 1_767_323_045);
        assert_eq!(
            parse_time("start", "1767323045.5", now)
                .unwrap()
                .timestamp_millis(),
            1_767_323_045_500
        );
        assert_eq!(parse_time("end", "now", now).unwrap(), now);
        for (rel, secs) in [("-5m", 300), ("now-5m", 300), ("-1.5h", 5400), ("-30s", 30)] {
            assert_eq!(
                parse_time("start", rel, now).unwrap(),
                now - chrono::TimeDelta::seconds(secs),
                "{rel}"
            );
        }
        for bad in ["yesterday", "", "NaN", "1e300", "-5w", "-m", "now-", "-0s"] {
            assert_eq!(
                parse_time("end", bad, now)
                    .unwrap_err()
                    .parameter
                    .as_deref(),
                Some("end"),
                "{bad}"
            );
        }
        // Negative Unix seconds stay Unix seconds.
        assert_eq!(parse_time("start", "-5", now).unwrap().timestamp(), -5);
    }

    /// A period is its name, spaces around it ignored; anything else is a
    /// 400 naming `period` and the names it takes.
    #[tokio::test]
    async fn a_period_is_its_name_and_anything_else_is_refused_with_the_names() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt;

        let app = crate::router(
            crate::Source::from_system(std::sync::Arc::new(metrics_protocol::NoopMetrics)),
            &crate::HttpConfig::default(),
        );
        let ask = |period: &str| {
            let req = Request::builder()
                .uri(format!("/api/v1/rollup?name=x&period={period}"))
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(req)
        };
        // Past the period: no history to ask (501).
        for ok in ["day", "+week+", "month"] {
            let res = ask(ok).await.unwrap();
            assert_eq!(res.status(), StatusCode::NOT_IMPLEMENTED, "{ok}");
        }
        let res = ask("fortnight").await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["parameter"], "period");
        assert_eq!(
            e["message"],
            "expected hour, day, week or month, got `fortnight`"
        );
    }

    #[test]
    fn an_absent_end_is_now_and_an_absent_start_an_hour_before_end() {
        let now = DateTime::from_timestamp(1_767_323_045, 0).unwrap();
        let p = Params::parse(None, &["start", "end"]).unwrap();
        assert_eq!(time_range(&p, now).unwrap(), (now - DEFAULT_RANGE, now));
        let p = Params::parse(Some("start=-5m"), &["start", "end"]).unwrap();
        assert_eq!(
            time_range(&p, now).unwrap(),
            (now - chrono::TimeDelta::minutes(5), now)
        );
        let p = Params::parse(Some("end=-1h"), &["start", "end"]).unwrap();
        assert_eq!(
            time_range(&p, now).unwrap(),
            (
                now - chrono::TimeDelta::hours(2),
                now - chrono::TimeDelta::hours(1)
            )
        );
        let p = Params::parse(Some("start=now"), &["start", "end"]).unwrap();
        assert_eq!(
            time_range(&p, now).unwrap_err().parameter.as_deref(),
            Some("end")
        );
    }
}
