//! Durations in configuration, in one place: a number in the field's unit
//! (what a `_ms` field or a `_secs` field always took) or a human form
//! (`"500ms"`, `"10s"`, `"5m"`, `"1h 30m"`, read by `humantime`).
//!
//! [`parse`] reads a command-line or environment value (a bare number is
//! seconds); the `deserialize_with` helpers read a configuration field and
//! keep its type, so a number still means what it meant:
//!
//! ```
//! use serde::Deserialize;
//! #[derive(Deserialize)]
//! struct Settings {
//!     #[serde(deserialize_with = "metrics_kit::duration::millis")]
//!     flush_interval_ms: u64,
//!     #[serde(deserialize_with = "metrics_kit::duration::secs")]
//!     window_secs: u64,
//! }
//! let s: Settings =
//!     serde_json::from_str(r#"{"flush_interval_ms": "2s", "window_secs": "5m"}"#).unwrap();
//! assert_eq!((s.flush_interval_ms, s.window_secs), (2000, 300));
//! let s: Settings =
//!     serde_json::from_str(r#"{"flush_interval_ms": 250, "window_secs": 60}"#).unwrap();
//! assert_eq!((s.flush_interval_ms, s.window_secs), (250, 60));
//! ```
//!
//! A value that does not fit the field (negative, not a whole number of
//! its unit, a word) is a deserialisation error saying what is expected.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// The unit a bare number is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds (`_ms` fields).
    Millis,
    /// Seconds (`_secs` fields, intervals, command-line values).
    Secs,
    /// Days (`retention_days`).
    Days,
}

impl Unit {
    fn secs(self) -> f64 {
        match self {
            Unit::Millis => 0.001,
            Unit::Secs => 1.0,
            Unit::Days => 86_400.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "milliseconds",
            Unit::Secs => "seconds",
            Unit::Days => "days",
        }
    }
}

/// Parses `10` (a bare number is seconds), `10s`, `1.5s`, `500ms`, `2m`,
/// `1h 30m`; the error says what is expected, without repeating the input.
pub fn parse(s: &str) -> Result<Duration, String> {
    parse_in(s, Unit::Secs)
}

/// As [`parse`], with a bare number read in `unit`.
pub fn parse_in(s: &str, unit: Unit) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<f64>() {
        return from_number(n, unit);
    }
    humantime::parse_duration(t)
        .map_err(|_| "expected a duration like 10s, 500ms, 2m or 1h 30m".to_owned())
}

fn from_number(n: f64, unit: Unit) -> Result<Duration, String> {
    Duration::try_from_secs_f64(n * unit.secs())
        .map_err(|_| format!("expected a non-negative number of {}", unit.name()))
}

/// `d` as a whole number of `unit`s; an error when it is not one.
fn whole(d: Duration, unit: Unit) -> Result<u64, String> {
    let per = match unit {
        Unit::Millis => 1_000_000u128,
        Unit::Secs => 1_000_000_000,
        Unit::Days => 86_400_000_000_000,
    };
    let nanos = d.as_nanos();
    if !nanos.is_multiple_of(per) {
        return Err(format!("expected a whole number of {}", unit.name()));
    }
    u64::try_from(nanos / per).map_err(|_| "too long".to_owned())
}

/// Reads a number in `unit`, or a string with [`parse_in`].
struct DurationVisitor(Unit);

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a number of {} or a duration such as \"500ms\", \"10s\", \"5m\"",
            self.0.name()
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        match self.0 {
            Unit::Millis => Ok(Duration::from_millis(v)),
            Unit::Secs => Ok(Duration::from_secs(v)),
            Unit::Days => from_number(v as f64, self.0).map_err(E::custom),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "expected a non-negative number of {}",
                self.0.name()
            ))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        from_number(v, self.0).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_in(v, self.0).map_err(E::custom)
    }
}

/// A [`Duration`] field whose numbers are seconds (fractions allowed).
pub fn duration_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor(Unit::Secs))
}

/// A `u64` field of milliseconds (`flush_interval_ms`): a number of
/// milliseconds or a duration of whole milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = d.deserialize_any(DurationVisitor(Unit::Millis))?;
    whole(v, Unit::Millis).map_err(de::Error::custom)
}

/// A `u64` field of seconds (`error_rate_window_secs`): a number of
/// seconds or a duration of whole seconds.
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = d.deserialize_any(DurationVisitor(Unit::Secs))?;
    whole(v, Unit::Secs).map_err(de::Error::custom)
}

/// An `Option<u64>` field of seconds (`idle_expiry_secs`), as [`secs`];
/// `null` is `None`.
pub fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            DurationVisitor(Unit::Secs).expecting(f)
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            secs(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// An `f64` field of seconds (`collection_interval`): a number of seconds
/// or a duration.
pub fn secs_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    duration_secs(d).map(|v| v.as_secs_f64())
}

/// An `f64` field of days (`retention_days`): a number of days or a
/// duration (`"36h"`, `"7d"`).
pub fn days_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = d.deserialize_any(DurationVisitor(Unit::Days))?;
    Ok(v.as_secs_f64() / Unit::Days.secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct S {
        #[serde(default, deserialize_with = "millis")]
        ms: u64,
        #[serde(default, deserialize_with = "secs")]
        s: u64,
        #[serde(default, deserialize_with = "opt_secs")]
        opt: Option<u64>,
        #[serde(default, deserialize_with = "secs_f64")]
        f: f64,
        #[serde(default, deserialize_with = "days_f64")]
        days: f64,
    }

    fn read(json: &str) -> Result<S, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_keep_the_fields_unit() {
        let s = read(r#"{"ms": 250, "s": 60, "opt": 600, "f": 0.5, "days": 7}"#).unwrap();
        assert_eq!(
            (s.ms, s.s, s.opt, s.f, s.days),
            (250, 60, Some(600), 0.5, 7.0)
        );
        // A numeric string is the field's unit too.
        assert_eq!(read(r#"{"ms": "250"}"#).unwrap().ms, 250);
    }

    #[test]
    fn human_forms_are_converted() {
        let s =
            read(r#"{"ms": "2s", "s": "5m", "opt": "1h", "f": "500ms", "days": "36h"}"#).unwrap();
        assert_eq!(
            (s.ms, s.s, s.opt, s.f, s.days),
            (2000, 300, Some(3600), 0.5, 1.5)
        );
        assert_eq!(read(r#"{"opt": null}"#).unwrap().opt, None);
    }

    #[test]
    fn what_does_not_fit_is_refused_saying_why() {
        for (json, why) in [
            (r#"{"ms": -1}"#, "non-negative"),
            (r#"{"s": "1500ms"}"#, "whole number of seconds"),
            (r#"{"ms": 2.5}"#, "whole number of milliseconds"),
            (r#"{"f": "soon"}"#, "expected a duration like"),
            (r#"{"f": -1.5}"#, "non-negative"),
            (r#"{"s": true}"#, "a number of seconds or a duration"),
        ] {
            let e = read(json).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        }
    }

    #[test]
    fn parse_reads_bare_numbers_as_seconds() {
        assert_eq!(parse("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_in("250", Unit::Millis).unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse("-1").is_err() && parse("-1s").is_err() && parse("s").is_err());
    }
}
