//! [`Sample`]: the JSON-lines sample format the command-line examples read
//! parsed by one piece of code everywhere.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use metrics_protocol::backend::validate::MAX_TAGS;
use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{Key, MetricCollector, MetricType};

/// Why a sample line could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// The line is not a sample (bad JSON, an unknown kind or field, a
    /// timer value that is no duration).
    #[error("malformed sample: {0}")]
    Parse(String),
    /// Reading the input failed.
    #[error("reading samples: {0}")]
    Io(#[from] std::io::Error),
}

/// One sample, as one line of JSON:
/// `{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"GET"}}`.
///
/// ```
/// use metrics_kit::Sample;
/// use metrics_protocol::MetricType;
/// let s = Sample::parse_line(r#"{"kind":"timer","name":"db.query","value":12.5}"#).unwrap();
/// assert_eq!(s.kind, MetricType::Timer);
/// assert!(Sample::parse_line(r#"{"kind":"timer","name":"x","value":-1}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Which recording call.
    pub kind: MetricType,
    /// Metric name.
    pub name: String,
    /// The value (milliseconds for timers).
    pub value: f64,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Sample {
    /// Parses one line. A timer value must be a non-negative number of
    /// milliseconds that fits a `Duration`; other rules (names, counter signs,
    /// ...) are the collector's to apply when the sample is recorded.
    pub fn parse_line(line: &str) -> Result<Sample, SampleError> {
        let s: Sample =
            serde_json::from_str(line).map_err(|e| SampleError::Parse(e.to_string()))?;
        match s.kind {
            MetricType::Timer => {
                s.duration()?;
            }
            MetricType::Rate => {
                return Err(SampleError::Parse(
                    "unknown kind `rate` (expected counter, gauge, histogram or timer)".into(),
                ));
            }
            _ => {}
        }
        Ok(s)
    }

    /// The value as a duration (timer samples).
    pub fn duration(&self) -> Result<Duration, SampleError> {
        Duration::try_from_secs_f64(self.value / 1e3).map_err(|e| {
            SampleError::Parse(format!(
                "timer value {} is not a valid number of milliseconds: {e}",
                self.value
            ))
        })
    }

    /// Records this sample into `collector`.
    pub fn record_into(&self, collector: &dyn MetricCollector) -> Result<(), SampleError> {
        let value = match self.kind {
            MetricType::Counter => Value::Counter(self.value),
            MetricType::Gauge => Value::Gauge(self.value),
            MetricType::Histogram => Value::Histogram(self.value),
            MetricType::Timer => Value::Timer(self.duration()?),
            MetricType::Rate => {
                return Err(SampleError::Parse("kind `rate` is not recordable".into()));
            }
        };
        let mut buf: [(&str, &str); MAX_TAGS + 1] = [("", ""); MAX_TAGS + 1];
        let n = self.tags.len().min(MAX_TAGS + 1);
        for (slot, (k, v)) in buf.iter_mut().zip(&self.tags) {
            *slot = (k.as_str(), v.as_str());
        }
        match Key::new(&self.name, &buf[..n])
            .and_then(|key| Measurement::new(&key, value).map(|m| collector.record(&m)))
        {
            Ok(()) => {}
            Err(reason) => collector.reject(reason),
        }
        Ok(())
    }
}

/// Reads samples from JSON lines, yielding `(line_number, result)` for each
/// non-blank line (line numbers start at 1). An I/O error ends the iteration
/// after being yielded once.
pub fn read_samples<R: BufRead>(
    reader: R,
) -> impl Iterator<Item = (usize, Result<Sample, SampleError>)> {
    let mut lines = reader.lines().enumerate();
    let mut done = false;
    std::iter::from_fn(move || {
        while !done {
            let (i, line) = lines.next()?;
            match line {
                Err(e) => {
                    done = true;
                    return Some((i + 1, Err(SampleError::Io(e))));
                }
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => return Some((i + 1, Sample::parse_line(&l))),
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_with_numbers_and_skips_blank_ones() {
        let input = "{\"kind\":\"counter\",\"name\":\"a\",\"value\":1}\n\n{bad\n{\"kind\":\"gauge\",\"name\":\"g\",\"value\":-2,\"tags\":{\"k\":\"v\"}}\n";
        let got: Vec<_> = read_samples(input.as_bytes()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 1);
        assert!(got[0].1.is_ok());
        assert_eq!(got[1].0, 3);
        assert!(matches!(got[1].1, Err(SampleError::Parse(_))));
        assert_eq!(got[2].0, 4);
        assert_eq!(got[2].1.as_ref().unwrap().tags["k"], "v");
    }

    #[test]
    fn rejects_unknown_kinds_fields_and_bad_timer_values() {
        for bad in [
            r#"{"kind":"set","name":"a","value":1}"#,
            r#"{"kind":"rate","name":"a","value":1}"#,
            r#"{"kind":"counter","name":"a","value":1,"extra":true}"#,
            r#"{"kind":"counter","name":"a"}"#,
            r#"{"kind":"counter","name":"a","value":"1"}"#,
            r#"{"kind":"timer","name":"a","value":-5}"#,
            r#"{"kind":"timer","name":"a","value":1e300}"#,
        ] {
            assert!(Sample::parse_line(bad).is_err(), "{bad}");
        }
    }
}
