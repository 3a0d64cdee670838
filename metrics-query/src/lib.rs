//! The range-query model of the metrics facade: what a question about
//! history is ([`RangeRequest`], [`RollupRequest`] with its calendar
//! [`Period`], whose history: [`InstanceScope`]), what the answer is
//! ([`RangeGroup`]s of [`RangeBin`] steps, a [`RangeAnswer`] that says when
//! part of the history could not be asked), and the trait a source of
//! binned history implements ([`RangeQueries`]). The memory backend answers
//! from its rings, the store from its tables, the composed system merges
//! both, and the HTTP service serves whichever it is given: all in these
//! types. The [`snapshot`] module is the read model of the present: a
//! view of every series that a backend lends and the exposition formats
//! encode.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use metrics_query::{Period, RangeBin, RangeGroup};
//!
//! // A Thursday afternoon falls in the ISO week that started on Monday.
//! let t = Utc.with_ymd_and_hms(2026, 11, 26, 15, 42, 7).unwrap();
//! let week = Period::Week.start_of(t);
//! assert_eq!(week, Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap());
//! assert_eq!(Period::Week.end_of(week), Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap());
//! assert_eq!("month".parse::<Period>(), Ok(Period::Month));
//!
//! // One step of an answer: three samples in that week.
//! let bin = RangeBin::new((week, Period::Week.end_of(week)), (week, t), (3, 6.0, 1.0, 3.0));
//! assert_eq!(bin.avg, 2.0);
//! let group = RangeGroup { group: None, bins: vec![bin] };
//! assert_eq!(group.bins[0].count, 3);
//! ```

pub mod snapshot;

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use metrics_protocol::MetricsError;
use metrics_protocol::app::{MetricSummary, TimingStats};
use serde::{Deserialize, Serialize};

/// A base unit spelled out as the last word of a metric's name
/// (`http.response.bytes`, `gc.pause.seconds`): the unit of a metric
/// described without one, the same for the JSON API and the exposition.
///
/// ```
/// use metrics_protocol::MetricUnit;
/// assert_eq!(metrics_query::unit_in_name("http.response.bytes"), Some(MetricUnit::Bytes));
/// assert_eq!(metrics_query::unit_in_name("jobs"), None);
/// ```
pub fn unit_in_name(name: &str) -> Option<metrics_protocol::MetricUnit> {
    let last = name.rsplit(|c: char| !c.is_ascii_alphanumeric()).next()?;
    match last.to_ascii_lowercase().as_str() {
        "bytes" => Some(metrics_protocol::MetricUnit::Bytes),
        "seconds" => Some(metrics_protocol::MetricUnit::Seconds),
        _ => None,
    }
}

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

impl RangeRequest {
    /// This request on its step grid: `start` rounded down and `end`
    /// rounded up to whole steps counted from the Unix epoch, so every
    /// step is `[k·step, (k+1)·step)` for some integer `k`. Stored bins are
    /// aligned the same way (a bin of width `w` starts at a multiple of
    /// `w`), so on this grid every bin whose width divides the step lies
    /// wholly inside one step: no step holds a sample from outside its own
    /// `[start, end)`, and a range starting one second past a bin edge
    /// loses no sample of the bin it starts in. Every source answers on
    /// this grid ([`RangeQueries::query_range`]); the answer says which
    /// ([`RangeAnswer::grid`]). Idempotent; a zero step leaves the request
    /// as it is (a source refuses it).
    pub fn aligned(&self) -> RangeRequest {
        let step = i64::try_from(self.step.as_millis()).unwrap_or(i64::MAX);
        if step <= 0 {
            return self.clone();
        }
        let snap = |t: DateTime<Utc>, up: bool| {
            let ms = t.timestamp_millis();
            let down = ms.div_euclid(step).saturating_mul(step);
            let ms = if up && down < ms {
                down.saturating_add(step)
            } else {
                down
            };
            DateTime::from_timestamp_millis(ms).unwrap_or(if up {
                DateTime::<Utc>::MAX_UTC
            } else {
                DateTime::<Utc>::MIN_UTC
            })
        };
        RangeRequest {
            start: snap(self.start, false),
            end: snap(self.end, true),
            ..self.clone()
        }
    }
}

/// The step grid a range answer was given on ([`RangeRequest::aligned`]):
/// the range as answered, which may be wider than the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepGrid {
    /// Start of the first step: the asked start, rounded down to a step.
    pub start: DateTime<Utc>,
    /// End of the last step (exclusive): the asked end, rounded up.
    pub end: DateTime<Utc>,
    /// Width of every step, in seconds.
    pub step_seconds: f64,
}

impl StepGrid {
    /// The grid of `request` once aligned.
    pub fn of(request: &RangeRequest) -> StepGrid {
        let r = request.aligned();
        StepGrid {
            start: r.start,
            end: r.end,
            step_seconds: r.step.as_secs_f64(),
        }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", parse_err_ty = String, parse_err_fn = not_a_period)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl Period {
    /// The start of the period holding `t`.
    pub fn start_of(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let day = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN));
        match self {
            Period::Hour => t
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(t),
            Period::Day => day(t.date_naive()),
            Period::Week => {
                let d = t.date_naive();
                day(d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday())))
            }
            Period::Month => day(t.date_naive().with_day(1).unwrap_or(t.date_naive())),
        }
    }

    /// The end (exclusive) of the period starting at `start`: where the
    /// next one starts.
    pub fn end_of(self, start: DateTime<Utc>) -> DateTime<Utc> {
        let next = match self {
            Period::Hour => start.checked_add_signed(chrono::TimeDelta::hours(1)),
            Period::Day => start.checked_add_days(chrono::Days::new(1)),
            Period::Week => start.checked_add_days(chrono::Days::new(7)),
            Period::Month => start.checked_add_months(chrono::Months::new(1)),
        };
        next.unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The error of a name that is no period (`FromStr`).
fn not_a_period(other: &str) -> String {
    format!("expected hour, day, week or month, got `{other}`")
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
///
/// A distribution's step (a timer's or a histogram's) also says its
/// percentiles, [`p50`](Self::p50), [`p95`](Self::p95) and
/// [`p99`](Self::p99): the nearest-rank quantiles of the merged quantile
/// sketches of the bins counted in the step (those `covers_start` to
/// `covers_end` spans), within the sketch's stated relative error (1 %,
/// the accuracy of the bins' sketches) of the exact quantile of those
/// samples, and never outside the step's `min` and `max`. Where a step's
/// bins are coarser than the step (older history in 15 minute bins under
/// 1 minute steps, say), the step counts the covering bin whole, and its
/// percentiles are those of the covering bin's sketch, as its count is.
/// Where the history keeps sketches coarser than its bins (the memory
/// backend keeps one sketch per block of older bins), the percentiles are
/// those of the sketches covering the step's bins, so they describe a
/// span wider than `covers_start` to `covers_end`. Sources, and the
/// instances of a shared store, are merged sketch by sketch, never by
/// averaging percentiles. The percentiles are absent for counters and
/// gauges, and for a step whose sketches do not hold every sample it
/// counts (history stored without sketches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub sum: f64,
    /// The smallest.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub min: f64,
    /// The largest.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub max: f64,
    /// Their mean.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub avg: f64,
    /// The step's median (see the percentile rule above); absent from the
    /// JSON when the step has no sketch of its samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// The step's 95th percentile (see the percentile rule above); absent
    /// from the JSON when the step has no sketch of its samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    /// The step's 99th percentile (see the percentile rule above); absent
    /// from the JSON when the step has no sketch of its samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    /// The merged quantile sketch the percentiles were read from, in its
    /// source's mergeable encoding (the memory backend's bin encoding), so
    /// that answers of several sources merge sketches, not percentiles.
    /// Never serialised.
    #[serde(skip)]
    pub sketch: Option<Vec<u8>>,
}

impl RangeBin {
    /// A step `[start, end)` whose bins span `covers` and hold `(count,
    /// sum, min, max)`; the mean is computed (0 for an empty step).
    pub fn new(
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        (covers_start, covers_end): (DateTime<Utc>, DateTime<Utc>),
        (count, sum, min, max): (u64, f64, f64, f64),
    ) -> Self {
        RangeBin {
            start,
            end,
            covers_start,
            covers_end,
            count,
            sum,
            min,
            max,
            avg: if count == 0 { 0.0 } else { sum / count as f64 },
            p50: None,
            p95: None,
            p99: None,
            sketch: None,
        }
    }

    /// This step with the merged sketch of its bins (`encoding`, kept for
    /// merging with other sources) and the percentiles read from it by
    /// `quantile` (at [`STEP_QUANTILES`]).
    pub fn with_sketch(self, encoding: Vec<u8>, quantile: impl Fn(f64) -> Option<f64>) -> Self {
        let [p50, p95, p99] = STEP_QUANTILES.map(&quantile);
        RangeBin {
            p50,
            p95,
            p99,
            sketch: Some(encoding),
            ..self
        }
    }

    /// This step without a sketch or percentiles (its sketches do not
    /// hold every sample it counts).
    pub fn without_sketch(self) -> Self {
        RangeBin {
            p50: None,
            p95: None,
            p99: None,
            sketch: None,
            ..self
        }
    }
}

/// The quantiles every distribution's step reports: [`RangeBin::p50`],
/// [`RangeBin::p95`], [`RangeBin::p99`].
pub const STEP_QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// One group of a range or rollup answer: the steps of every series of
/// the name with one value of the `group_by` tag (or all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RangeGroup {
    /// The `group_by` tag's value (`None` without grouping).
    pub group: Option<String>,
    /// Non-empty steps, oldest first.
    pub bins: Vec<RangeBin>,
}

/// A range or rollup answer: its groups and, when part of the history
/// could not be asked, why ([`partial`](Self::partial)).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// For a range query, the step grid it was answered on: the asked
    /// range rounded out to whole steps ([`RangeRequest::aligned`]).
    /// Absent for a rollup, whose steps are calendar periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<StepGrid>,
}

impl RangeAnswer {
    /// A complete answer of `series` (its groups).
    pub fn complete(series: Vec<RangeGroup>) -> Self {
        RangeAnswer {
            series,
            partial: None,
            grid: None,
        }
    }

    /// This answer, saying it was given on `request`'s step grid.
    pub fn on_grid_of(self, request: &RangeRequest) -> Self {
        RangeAnswer {
            grid: Some(StepGrid::of(request)),
            ..self
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
    /// Bins of `request`, on its step grid ([`RangeRequest::aligned`]: an
    /// implementation aligns the request first). [`MetricsError::NoData`]
    /// for an unknown name, [`MetricsError::InvalidArgument`] for a step
    /// or range the history cannot give.
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
    /// a complete answer on the request's step grid.
    fn query_range_answer(&self, request: &RangeRequest) -> Result<RangeAnswer, MetricsError> {
        let request = request.aligned();
        self.query_range(&request)
            .map(|s| RangeAnswer::complete(s).on_grid_of(&request))
    }

    /// [`rollup`](Self::rollup)'s answer, saying whether part of the
    /// history could not be asked: what `/api/v1/rollup` serves. By
    /// default `rollup`'s series, as a complete answer.
    fn rollup_answer(&self, request: &RollupRequest) -> Option<Result<RangeAnswer, MetricsError>> {
        self.rollup(request).map(|r| r.map(RangeAnswer::complete))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn periods_start_where_expected() {
        let t = at("2026-11-26T15:42:07.250Z"); // a Thursday
        let cases = [
            (Period::Hour, "2026-11-26T15:00:00Z"),
            (Period::Day, "2026-11-26T00:00:00Z"),
            (Period::Week, "2026-11-23T00:00:00Z"),
            (Period::Month, "2026-11-01T00:00:00Z"),
        ];
        for (p, start) in cases {
            assert_eq!(p.start_of(t), at(start), "{p:?}");
            assert_eq!(p.start_of(at(start)), at(start), "{p:?} of its own start");
        }
    }

    #[test]
    fn periods_end_where_the_next_one_starts() {
        let cases = [
            (Period::Hour, "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"),
            (Period::Day, "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"),
            (Period::Week, "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"),
            (
                Period::Month,
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                Period::Month,
                "2028-02-01T00:00:00Z",
                "2028-03-01T00:00:00Z",
            ),
        ];
        for (p, start, end) in cases {
            assert_eq!(p.end_of(at(start)), at(end), "{p:?} {start}");
            assert_eq!(p.start_of(p.end_of(at(start))), at(end), "{p:?} {start}");
        }
        assert_eq!(
            Period::Day.end_of(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn periods_parse_from_their_names_only() {
        for p in [Period::Hour, Period::Day, Period::Week, Period::Month] {
            let name = serde_json::to_value(p).unwrap();
            assert_eq!(name.as_str().unwrap().parse::<Period>(), Ok(p));
        }
        assert!(
            "fortnight"
                .parse::<Period>()
                .unwrap_err()
                .contains("fortnight")
        );
    }

    #[test]
    fn a_range_snaps_out_to_whole_steps_from_the_epoch() {
        let r = RangeRequest {
            name: "x".into(),
            tags: vec![],
            start: at("2026-11-26T09:01:01Z"),
            end: at("2026-11-26T09:04:00.001Z"),
            step: Duration::from_secs(60),
            group_by: None,
            instance: InstanceScope::Local,
        };
        let a = r.aligned();
        assert_eq!(
            (a.start, a.end),
            (at("2026-11-26T09:01:00Z"), at("2026-11-26T09:05:00Z"))
        );
        assert_eq!(a.aligned(), a, "aligning twice changes nothing");
        // A range already on the grid stays as it is; the step never changes.
        let on = RangeRequest {
            start: at("2026-11-26T09:00:00Z"),
            end: at("2026-11-26T10:00:00Z"),
            ..r.clone()
        };
        assert_eq!(on.aligned(), on);
        // Steps that are not whole seconds, and times before the epoch.
        let odd = RangeRequest {
            start: at("1969-12-31T23:59:59.100Z"),
            end: at("1970-01-01T00:00:00.100Z"),
            step: Duration::from_millis(250),
            ..r.clone()
        };
        let a = odd.aligned();
        assert_eq!(
            (a.start, a.end),
            (at("1969-12-31T23:59:59Z"), at("1970-01-01T00:00:00.250Z"))
        );
        let grid = StepGrid::of(&odd);
        assert_eq!(
            (grid.start, grid.end, grid.step_seconds),
            (a.start, a.end, 0.25)
        );
        let zero = RangeRequest {
            step: Duration::ZERO,
            ..r
        };
        assert_eq!(zero.aligned(), zero);
    }

    #[test]
    fn the_default_range_answer_is_on_the_grid() {
        struct Echo;
        impl RangeQueries for Echo {
            fn query_range(&self, r: &RangeRequest) -> Result<Vec<RangeGroup>, MetricsError> {
                let bin = RangeBin::new((r.start, r.end), (r.start, r.end), (1, 1.0, 1.0, 1.0));
                Ok(vec![RangeGroup {
                    group: None,
                    bins: vec![bin],
                }])
            }
        }
        let r = RangeRequest {
            name: "x".into(),
            tags: vec![],
            start: at("2026-11-26T09:01:01Z"),
            end: at("2026-11-26T09:02:01Z"),
            step: Duration::from_secs(60),
            group_by: None,
            instance: InstanceScope::Local,
        };
        let a = Echo.query_range_answer(&r).unwrap();
        assert_eq!(
            a.series[0].bins[0].start,
            at("2026-11-26T09:01:00Z"),
            "asked on the grid"
        );
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["grid"]["start"], "2026-11-26T09:01:00Z");
        assert_eq!(v["grid"]["end"], "2026-11-26T09:03:00Z");
        assert_eq!(v["grid"]["step_seconds"], 60.0);
    }

    #[test]
    fn an_empty_step_has_a_mean_of_zero() {
        let t = at("2026-11-26T15:00:00Z");
        assert_eq!(RangeBin::new((t, t), (t, t), (0, 0.0, 0.0, 0.0)).avg, 0.0);
    }

    #[test]
    fn a_steps_percentiles_are_in_the_json_only_when_it_has_a_sketch() {
        let t = at("2026-11-26T15:00:00Z");
        let plain = RangeBin::new((t, t), (t, t), (2, 3.0, 1.0, 2.0));
        let v = serde_json::to_value(&plain).unwrap();
        for k in ["p50", "p95", "p99", "sketch"] {
            assert!(v.get(k).is_none(), "{k} in {v}");
        }
        let with = plain.with_sketch(vec![1, 2, 3], |q| Some(q * 10.0));
        assert_eq!(
            (with.p50, with.p95, with.p99),
            (Some(5.0), Some(9.5), Some(9.9))
        );
        let v = serde_json::to_value(&with).unwrap();
        assert_eq!(
            (v["p50"].as_f64(), v["p99"].as_f64()),
            (Some(5.0), Some(9.9))
        );
        assert!(
            v.get("sketch").is_none(),
            "the sketch is never serialised: {v}"
        );
        let back: RangeBin = serde_json::from_value(v).unwrap();
        assert_eq!((back.p95, back.sketch), (Some(9.5), None));
        let without = with.without_sketch();
        assert_eq!((without.p50, without.sketch), (None, None));
    }

    #[test]
    fn a_partial_answer_says_why_and_a_complete_one_has_no_flag() {
        let complete = serde_json::to_value(RangeAnswer::complete(vec![])).unwrap();
        assert_eq!(complete, serde_json::json!({ "series": [] }));
        let partial = RangeAnswer {
            series: vec![],
            partial: Some("history store unavailable".into()),
            grid: None,
        };
        let v = serde_json::to_value(partial).unwrap();
        assert_eq!(v["partial"], "history store unavailable");
    }
}
