//! [`Measurement`]: one recording, the only thing a backend is handed.

use std::time::Duration;

use crate::backend::validate::{self, DropReason};
use crate::key::Key;
use crate::types::MetricType;

/// What one recording does to its series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// Adds this much (finite, not negative) to a counter.
    Counter(f64),
    /// Sets a gauge (finite).
    Gauge(f64),
    /// Adds this much (finite, may be negative) to a gauge.
    GaugeDelta(f64),
    /// One sample (finite) of a distribution.
    Histogram(f64),
    /// One duration of a timer.
    Timer(Duration),
    /// One success of the operation named by the key.
    Success,
    /// One failure of the operation named by the key; its error type is
    /// [`Measurement::error_type`].
    Failure,
}

impl Value {
    /// The kind of series this value records into. Outcomes count, so
    /// they are counters (`<operation>.success`, `<operation>.failure`).
    #[inline]
    pub fn kind(self) -> MetricType {
        match self {
            Value::Counter(_) | Value::Success | Value::Failure => MetricType::Counter,
            Value::Gauge(_) | Value::GaugeDelta(_) => MetricType::Gauge,
            Value::Histogram(_) => MetricType::Histogram,
            Value::Timer(_) => MetricType::Timer,
        }
    }

    /// The number carried (a duration in milliseconds, an outcome 1).
    #[inline]
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Counter(v) | Value::Gauge(v) | Value::GaugeDelta(v) | Value::Histogram(v) => v,
            Value::Timer(d) => d.as_secs_f64() * 1e3,
            Value::Success | Value::Failure => 1.0,
        }
    }

    /// Checks the value against the [rules](crate::backend::validate): the
    /// reason it would be dropped, if it breaks one.
    #[inline]
    pub fn check(self) -> Result<(), DropReason> {
        match self {
            Value::Counter(v) => validate::check_counter_value(v),
            Value::Gauge(v) | Value::GaugeDelta(v) | Value::Histogram(v) => {
                validate::check_value(v)
            }
            Value::Timer(_) | Value::Success | Value::Failure => Ok(()),
        }
    }
}

/// One recording: a [`Key`], a [`Value`] and, for a failure, its error type.
/// Valid once built (its key is valid by construction and [`Measurement::new`]
/// checks the value), so a backend stores it without checking again.
///
/// ```
/// use metrics_protocol::Key;
/// use metrics_protocol::backend::{DropReason, Measurement, Value};
///
/// let key = Key::new("uploads", &[("kind", "blob")]).unwrap();
/// let m = Measurement::new(&key, Value::Counter(2.0)).unwrap();
/// assert_eq!((m.key().name(), m.value()), ("uploads", Value::Counter(2.0)));
/// assert_eq!(Measurement::new(&key, Value::Counter(-1.0)).unwrap_err(), DropReason::NegativeCounter);
/// let f = Measurement::failure(&key, "timeout").unwrap();
/// assert_eq!((f.value(), f.error_type()), (Value::Failure, Some("timeout")));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Measurement<'a> {
    key: &'a Key<'a>,
    value: Value,
    error_type: &'a str,
}

impl<'a> Measurement<'a> {
    /// A measurement of `value` into `key`'s series; the reason if the value
    /// breaks a rule. For a failure with its error type use
    /// [`failure`](Self::failure) (here the error type is empty).
    #[inline]
    pub fn new(key: &'a Key<'a>, value: Value) -> Result<Self, DropReason> {
        value.check()?;
        Ok(Measurement {
            key,
            value,
            error_type: "",
        })
    }

    /// One failure of the operation `key` names, of kind `error_type` (a
    /// tag value: at most 1024 bytes).
    #[inline]
    pub fn failure(key: &'a Key<'a>, error_type: &'a str) -> Result<Self, DropReason> {
        validate::check_error_type(error_type)?;
        Ok(Measurement {
            key,
            value: Value::Failure,
            error_type,
        })
    }

    /// The series.
    #[inline]
    pub fn key(&self) -> &'a Key<'a> {
        self.key
    }

    /// What it records.
    #[inline]
    pub fn value(&self) -> Value {
        self.value
    }

    /// The value, borrowed: for a hot path that hands it on, so that it is
    /// read in place, field by field (a `Value` copied whole right after it
    /// was built waits for the stores that built it).
    #[inline]
    pub fn value_ref(&self) -> &Value {
        &self.value
    }

    /// The kind of series: `self.value().kind()`.
    #[inline]
    pub fn kind(&self) -> MetricType {
        self.value.kind()
    }

    /// The error type of a failure; `None` for every other value.
    #[inline]
    pub fn error_type(&self) -> Option<&'a str> {
        matches!(self.value, Value::Failure).then_some(self.error_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_by_kind() {
        let key = Key::new("m", &[]).unwrap();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for value in [
                Value::Counter(v),
                Value::Gauge(v),
                Value::GaugeDelta(v),
                Value::Histogram(v),
            ] {
                assert_eq!(
                    Measurement::new(&key, value).unwrap_err(),
                    DropReason::InvalidValue
                );
            }
        }
        assert_eq!(
            Measurement::new(&key, Value::Counter(-f64::MIN_POSITIVE)).unwrap_err(),
            DropReason::NegativeCounter
        );
        for ok in [
            Value::Counter(0.0),
            Value::Counter(-0.0),
            Value::Gauge(-3.0),
            Value::GaugeDelta(-1.0),
            Value::Histogram(f64::MAX),
            Value::Timer(Duration::MAX),
            Value::Success,
        ] {
            assert!(Measurement::new(&key, ok).is_ok(), "{ok:?}");
        }
        let long = "x".repeat(validate::MAX_TAG_VALUE_LEN + 1);
        assert_eq!(
            Measurement::failure(&key, &long).unwrap_err(),
            DropReason::InvalidTag
        );
        assert_eq!(
            Measurement::new(&key, Value::Success).unwrap().error_type(),
            None
        );
    }

    #[test]
    fn kinds_and_numbers() {
        assert_eq!(Value::Failure.kind(), MetricType::Counter);
        assert_eq!(Value::GaugeDelta(1.0).kind(), MetricType::Gauge);
        assert_eq!(Value::Timer(Duration::from_millis(1500)).as_f64(), 1500.0);
    }
}
