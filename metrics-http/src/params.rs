//! Query-string parameters: parsed once, unknown or repeated names refused
//! with a 400 that names them; a path or a parameter that is not UTF-8 once
//! percent-decoded refused the same way on every route.

use std::borrow::Cow;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use percent_encoding::percent_decode;
use tower::{Layer, Service};

use crate::error::ApiError;
use metrics_query::{ALL_INSTANCES, InstanceScope};

/// The longest window a query may ask for (a year).
const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// The parameters of one request.
#[derive(Debug)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `raw` (the query string, if any); a name outside `allowed` is
    /// a 400 naming it.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs = match raw {
            None | Some("") => Vec::new(),
            Some(q) => decode_query(q)?,
        };
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_parameter(
                k,
                format!(
                    "unknown parameter `{k}` (expected {})",
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
        Ok(Params(pairs))
    }

    /// The value of a parameter given at most once.
    pub fn one(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == key);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(ApiError::bad_parameter(
                key,
                format!("`{key}` given more than once"),
            ));
        }
        Ok(first)
    }

    /// The value of a required parameter, not empty.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        match self.one(key)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ApiError::bad_parameter(key, format!("`{key}` is required"))),
        }
    }

    /// Every value of a parameter that may be repeated.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `tag=k:v`, as pairs.
    pub fn tags(&self) -> Result<Vec<(String, String)>, ApiError> {
        self.0
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| parse_tag(v))
            .collect()
    }

    /// The `group_by` parameter, if given (not empty).
    pub fn group_by(&self) -> Result<Option<String>, ApiError> {
        match self.one("group_by")? {
            Some(g) if g.trim().is_empty() => {
                Err(ApiError::bad_parameter("group_by", "`group_by` is empty"))
            }
            g => Ok(g.map(str::to_owned)),
        }
    }

    /// The `instance` parameter: absent for this instance, `*` for all.
    pub fn instance(&self) -> Result<InstanceScope, ApiError> {
        match self.one("instance")? {
            None => Ok(InstanceScope::Local),
            Some(i) if i.trim() == ALL_INSTANCES => Ok(InstanceScope::All),
            Some(i) if i.trim().is_empty() => Err(ApiError::bad_parameter(
                "instance",
                "`instance` is empty (give a name, or `*` for every instance)",
            )),
            Some(i) => Ok(InstanceScope::Named(i.trim().to_owned())),
        }
    }

    /// The `window` parameter, if given.
    pub fn window(&self) -> Result<Option<Duration>, ApiError> {
        self.one("window")?
            .map(|w| parse_window(w).map_err(|m| ApiError::bad_parameter("window", m)))
            .transpose()
    }
}

/// The pairs of a query string (`application/x-www-form-urlencoded`: `+`
/// is a space, `%XX` a byte; empty pieces skipped, a piece without `=` has
/// an empty value). A name or value that is not UTF-8 once decoded is a
/// 400 naming the parameter (a name that is not, as it was sent).
pub(crate) fn decode_query(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    q.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            let key = decode_component(k).map_err(|()| {
                ApiError::bad_parameter(
                    k,
                    format!("the parameter name `{k}` is not UTF-8 once percent-decoded"),
                )
            })?;
            let value = decode_component(v).map_err(|()| {
                ApiError::bad_parameter(
                    &key,
                    format!("the value of `{key}` (`{v}`) is not UTF-8 once percent-decoded"),
                )
            })?;
            Ok((key, value))
        })
        .collect()
}

/// One form-encoded name or value, decoded.
fn decode_component(s: &str) -> Result<String, ()> {
    let plus_as_space: Cow<'_, str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    percent_decode(plus_as_space.as_bytes())
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ())
}

/// The answer to a request whose path or a query parameter is not UTF-8
/// once percent-decoded: 400 naming the parameter (or `path`).
fn invalid_utf8(uri: &Uri) -> Option<ApiError> {
    if uri.path().contains('%') && percent_decode(uri.path().as_bytes()).decode_utf8().is_err() {
        return Some(ApiError::bad_parameter(
            "path",
            format!(
                "the path `{}` is not UTF-8 once percent-decoded",
                uri.path()
            ),
        ));
    }
    uri.query()
        .filter(|q| q.contains('%'))
        .and_then(|q| decode_query(q).err())
}

/// Refuses, on every route, a path or a query parameter that is not UTF-8
/// once percent-decoded, before any handler runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckUtf8Layer;

impl<S> Layer<S> for CheckUtf8Layer {
    type Service = CheckUtf8<S>;

    fn layer(&self, inner: S) -> CheckUtf8<S> {
        CheckUtf8 { inner }
    }
}

/// See [`CheckUtf8Layer`].
#[derive(Clone, Debug)]
pub(crate) struct CheckUtf8<S> {
    inner: S,
}

impl<S> Service<Request> for CheckUtf8<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match invalid_utf8(req.uri()) {
            Some(e) => Either::Left(ready(Ok(e.into_response()))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}

/// `key:value`, both non-empty.
fn parse_tag(v: &str) -> Result<(String, String), ApiError> {
    match v.split_once(':') {
        Some((k, val)) if !k.trim().is_empty() && !val.is_empty() => {
            Ok((k.trim().to_owned(), val.to_owned()))
        }
        _ => Err(ApiError::bad_parameter(
            "tag",
            format!("expected `key:value`, got `{v}`"),
        )),
    }
}

/// A window: `300` (seconds), `500ms`, `30s`, `5m`, `1h`, `1d`; above zero,
/// at most a year.
pub(crate) fn parse_window(w: &str) -> Result<Duration, String> {
    let w = w.trim();
    let split = w
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(w.len());
    let (number, unit) = w.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 30s, 5m or 1h, got `{w}`"))?;
    let scale = match unit {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{w}` (expected ms, s, m, h or d)"
            ));
        }
    };
    let secs = n * scale;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{w}` must be longer than zero"));
    }
    match Duration::try_from_secs_f64(secs) {
        // Shorter than a nanosecond, but above zero: the shortest window.
        Ok(d) if d.is_zero() => Ok(Duration::from_nanos(1)),
        Ok(d) if d <= MAX_WINDOW => Ok(d),
        _ => Err(format!("`{w}` is longer than a year")),
    }
}

/// The parameters of the OpenAPI document, one type per rule, each stated
/// once in its doc comment: an operation lists the ones it takes
/// (`#[utoipa::path(params(...))]`). Only the document reads them: the
/// handlers parse with [`Params`], and a test holds the names each handler
/// accepts equal to the names its operation lists.
pub(crate) mod doc {
    #![allow(dead_code)]

    use metrics_protocol::MetricType;
    use utoipa::IntoParams;

    /// `window`.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Window {
        /// Only the last part of history: `300` (seconds), `500ms`, `30s`,
        /// `5m`, `1h`, `1d`; above zero, at most a year and at most what the
        /// system keeps, and at least one of its finest bins (10 s by
        /// default; a shorter window holds no whole bin): else 400 naming
        /// `window`, the message giving the shortest or longest window
        /// allowed. Default: all time.
        #[param(pattern = r"^([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)(ms|s|m|h|d)?$")]
        window: Option<String>,
    }

    /// `tag`, repeated.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Tag {
        /// Only series tagged `key:value` (repeat for several).
        #[param(style = Form, explode, pattern = "^[^:]+:.+$")]
        tag: Option<Vec<String>>,
    }

    /// `instance`.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Instance {
        /// Whose history: absent for the instance serving the request, an
        /// instance's name for its history in the shared store, `*` for
        /// every instance merged. Other instances need a shared history
        /// store (else 400 naming `instance`).
        #[param(pattern = r"\S")]
        instance: Option<String>,
    }

    /// `start` and `end`.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct TimeRange {
        /// RFC 3339 time, Unix seconds, `now`, or a time before now: `-`
        /// and a duration (`-5m`, `-1.5h`; also `now-5m`). Default: an hour
        /// before `end`.
        #[param(min_length = 1)]
        start: Option<String>,
        /// RFC 3339 time, Unix seconds, `now`, or a time before now
        /// (`-5m`); after start. Default: now. Only bins that have ended by
        /// `end` count, so the bin being filled (the last 10 s by default)
        /// is left out.
        #[param(min_length = 1)]
        end: Option<String>,
    }

    /// `group_by`.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct GroupBy {
        /// One group per value of this tag.
        #[param(min_length = 1)]
        group_by: Option<String>,
    }

    /// `step`.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Step {
        /// Bin width, a duration (`10s`, `1m`); a multiple of the system's
        /// finest bin; at most 11000 bins.
        #[param(pattern = r"^([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)(ms|s|m|h|d)?$")]
        step: String,
    }

    /// `name`: a metric's.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Name {
        /// Metric name.
        #[param(min_length = 1)]
        name: String,
    }

    /// `prefix`.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Prefix {
        /// Only names starting with this.
        prefix: Option<String>,
    }

    /// `type`, at most once.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Kind {
        /// Kind of metric.
        #[param(rename = "type")]
        kind: Option<MetricType>,
    }

    /// `type`, repeated.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct Kinds {
        /// Only these kinds (repeat for several).
        #[param(rename = "type", style = Form, explode)]
        kinds: Option<Vec<MetricType>>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_window("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_window("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_window("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_window("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_window("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_window("0.0000000001"), Ok(Duration::from_nanos(1)));
        for bad in [
            "", "0", "0s", "-5m", "5w", "m", "1e400", "400d", "1.2.3s", "NaN",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_named() {
        let e = Params::parse(Some("windw=5m"), &["name", "window"]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("windw"));
        let p = Params::parse(Some("name=a&name=b"), &["name"]).unwrap();
        assert_eq!(
            p.one("name").unwrap_err().parameter.as_deref(),
            Some("name")
        );
        let p = Params::parse(Some("tag=host:a&tag=zone:b%3Ac"), &["tag"]).unwrap();
        assert_eq!(
            p.tags().unwrap(),
            vec![("host".into(), "a".into()), ("zone".into(), "b:c".into())]
        );
        let p = Params::parse(Some("tag=nocolon"), &["tag"]).unwrap();
        assert_eq!(p.tags().unwrap_err().parameter.as_deref(), Some("tag"));
        let p = Params::parse(Some("name="), &["name"]).unwrap();
        assert_eq!(
            p.required("name").unwrap_err().parameter.as_deref(),
            Some("name")
        );
    }

    #[test]
    fn query_strings_decode_as_forms_and_refuse_invalid_utf8_naming_the_parameter() {
        assert_eq!(
            decode_query("a=1+2&&b&c=%C3%A9%3D&=x&d=%zz").unwrap(),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "".into()),
                ("c".into(), "é=".into()),
                ("".into(), "x".into()),
                ("d".into(), "%zz".into()),
            ]
        );
        let e = Params::parse(Some("name=%FF"), &["name"]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("name"));
        assert!(e.message.contains("%FF"), "{}", e.message);
        let e = Params::parse(Some("name=ok&prefix=a%C3"), &["name", "prefix"]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("prefix"));
        let e = Params::parse(Some("%FF%FE=1"), &["name"]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("%FF%FE"));
    }
}
