//! What to aggregate and how: [`AggregationSpec`], its [`AggregationBatch`] and its
//! functions ([`AggFn`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::AgentError;

/// How samples are grouped before they are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregationBatch {
    /// Tumbling batches of this length, aligned to multiples of it since the
    /// Unix epoch (a 10 s batch holds 12:00:00 to 12:00:10).
    Time(Duration),
    /// Tumbling batches of this many samples (over every tag set).
    Count(usize),
}

/// One named aggregation function: a built-in one, or one from code.
///
/// ```
/// use metrics_sdk::AggFn;
/// assert_eq!("p95".parse::<AggFn>().unwrap(), AggFn::Percentile(95.0));
/// assert_eq!(AggFn::Mean.name(), "mean");
/// assert!("median-ish".parse::<AggFn>().is_err());
///
/// // Any function over the batch's values, under a name of its own.
/// let spread = AggFn::custom("spread", |values| {
///     values.last().copied().unwrap_or(0.0) - values.first().copied().unwrap_or(0.0)
/// });
/// assert_eq!(spread.name(), "spread");
/// ```
#[derive(Clone)]
pub enum AggFn {
    /// Sum of the values.
    Sum,
    /// Number of values.
    Count,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Arithmetic mean.
    Mean,
    /// The last value of the batch.
    Last,
    /// Nearest-rank percentile, 0 < p ≤ 100 (`p50`, `p95`, `p99.9`), from
    /// the quantile sketch: within `metrics_memory::RELATIVE_ACCURACY`.
    Percentile(f64),
    /// A function from code: its name and what it computes from the
    /// batch's values (sorted ascending; all of them up to the spec's
    /// `max_samples`, past that a uniform random choice of that many).
    Custom(CustomFn),
}

/// A function over a batch's sorted values.
type BatchFn = dyn Fn(&[f64]) -> f64 + Send + Sync;

/// A named function over a batch's values, for [`AggFn::Custom`].
#[derive(Clone)]
pub struct CustomFn {
    name: Arc<str>,
    f: Arc<BatchFn>,
}

impl CustomFn {
    /// Runs the function on sorted values.
    pub fn apply(&self, sorted: &[f64]) -> f64 {
        (self.f)(sorted)
    }
}

impl fmt::Debug for AggFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggFn::Custom(c) => write!(f, "Custom({:?})", c.name),
            AggFn::Percentile(p) => write!(f, "Percentile({p})"),
            other => f.write_str(&other.name()),
        }
    }
}

impl PartialEq for AggFn {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AggFn::Custom(a), AggFn::Custom(b)) => a.name == b.name && Arc::ptr_eq(&a.f, &b.f),
            (AggFn::Percentile(a), AggFn::Percentile(b)) => a == b,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl AggFn {
    /// A function from code: `name` (used in result names, so it follows the
    /// metric name rules) and `f`, which gets the batch's values sorted
    /// ascending. A panic in `f` loses that one result, counted like a
    /// panicking sink.
    pub fn custom(
        name: impl Into<String>,
        f: impl Fn(&[f64]) -> f64 + Send + Sync + 'static,
    ) -> Self {
        AggFn::Custom(CustomFn {
            name: Arc::from(name.into()),
            f: Arc::new(f),
        })
    }

    /// The name used in result names (`latency.p95`).
    pub fn name(&self) -> String {
        match self {
            AggFn::Sum => "sum".into(),
            AggFn::Count => "count".into(),
            AggFn::Min => "min".into(),
            AggFn::Max => "max".into(),
            AggFn::Mean => "mean".into(),
            AggFn::Last => "last".into(),
            AggFn::Percentile(p) => format!("p{p}"),
            AggFn::Custom(c) => c.name.to_string(),
        }
    }
}

impl fmt::Display for AggFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for AggFn {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let f = match t.as_str() {
            "sum" => AggFn::Sum,
            "count" => AggFn::Count,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            "mean" | "avg" => AggFn::Mean,
            "last" => AggFn::Last,
            p if p.starts_with('p') => match p[1..].parse::<f64>() {
                Ok(q) if q > 0.0 && q <= 100.0 => AggFn::Percentile(q),
                _ => return Err(bad_fn(s)),
            },
            _ => return Err(bad_fn(s)),
        };
        Ok(f)
    }
}

fn bad_fn(s: &str) -> AgentError {
    AgentError::config(
        "functions",
        s,
        "expected sum, count, min, max, mean, last or a percentile like p95",
    )
}

/// What to aggregate and how: built with [`AggregationSpec::time`] or
/// [`AggregationSpec::count`], then functions and default tags.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationSpec {
    /// The metric whose samples are aggregated (exact name).
    pub metric: String,
    /// Time or count batches.
    pub batch: AggregationBatch,
    /// The functions; each result is named `<metric>.<function>`.
    pub functions: Vec<AggFn>,
    /// Tags every sample gets; a sample's own tag of the same key wins.
    pub default_tags: BTreeMap<String, String>,
    /// Values kept per tag set and batch for functions from code; past
    /// it, a uniform reservoir of this size is kept. Percentiles come
    /// from the memory backend's sketch (within its relative accuracy,
    /// whatever the number of values); sum, count, min, max, mean and last
    /// are exact. Default 10000.
    pub max_samples: usize,
}

impl AggregationSpec {
    /// Tumbling batches `length` long over `metric`.
    pub fn time(metric: impl Into<String>, length: Duration) -> Self {
        Self::new(metric.into(), AggregationBatch::Time(length))
    }

    /// Batches of `n` samples of `metric`.
    pub fn count(metric: impl Into<String>, n: usize) -> Self {
        Self::new(metric.into(), AggregationBatch::Count(n))
    }

    fn new(metric: String, batch: AggregationBatch) -> Self {
        AggregationSpec {
            metric,
            batch,
            functions: Vec::new(),
            default_tags: BTreeMap::new(),
            max_samples: 10_000,
        }
    }

    /// Adds one function.
    pub fn function(mut self, f: AggFn) -> Self {
        self.functions.push(f);
        self
    }

    /// Adds functions by name (`["mean", "p95"]`); an unknown name is an
    /// [`AgentError::Config`] naming it.
    pub fn functions<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, AgentError> {
        for n in names {
            self.functions.push(n.as_ref().parse()?);
        }
        Ok(self)
    }

    /// Adds a default tag.
    pub fn default_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_tags.insert(key.into(), value.into());
        self
    }

    /// Checks the spec; errors name the field and the value.
    pub fn validate(&self) -> Result<(), AgentError> {
        metrics_protocol::backend::validate::check_name(&self.metric).map_err(|r| {
            AgentError::config(
                "metric",
                &self.metric,
                format!("not a valid metric name ({})", r.as_str()),
            )
        })?;
        match self.batch {
            AggregationBatch::Time(d) if d.as_millis() == 0 => {
                return Err(AgentError::config(
                    "batch",
                    format!("{d:?}"),
                    "a time batch must be at least 1 ms",
                ));
            }
            AggregationBatch::Count(0) => {
                return Err(AgentError::config(
                    "batch",
                    "0",
                    "a count batch must be at least 1",
                ));
            }
            _ => {}
        }
        if self.functions.is_empty() {
            return Err(AgentError::config(
                "functions",
                "[]",
                "name at least one function",
            ));
        }
        for f in &self.functions {
            if let AggFn::Percentile(p) = f
                && !(*p > 0.0 && *p <= 100.0)
            {
                return Err(bad_fn(&f.name()));
            }
        }
        if self.max_samples == 0 {
            return Err(AgentError::config("max_samples", "0", "must be at least 1"));
        }
        Ok(())
    }
}
