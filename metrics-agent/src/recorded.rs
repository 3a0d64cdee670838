//! [`Recorded`]: one recording call as it travels the composed system:
//! validated once where it enters, then handed to the backends, the
//! streams and the aggregations.

use std::time::Duration;

use metrics_protocol::system::MetricValue;
use metrics_protocol::validate::{self, DropReason, SortedTags};
use metrics_protocol::{MetricCollector, MetricType, MetricUnit, Tags};

/// Which recording call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// `record_counter`.
    Counter,
    /// `record_gauge`.
    Gauge,
    /// `adjust_gauge` (the value is a delta).
    GaugeDelta,
    /// `record_histogram`.
    Histogram,
    /// `record_timer` (the value is in milliseconds).
    Timer,
}

/// One recording call, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recorded<'a> {
    pub kind: RecordKind,
    pub name: &'a str,
    /// The value; milliseconds for timers.
    pub value: f64,
    /// The duration of a timer, exactly as recorded.
    pub duration: Duration,
    pub tags: Tags<'a>,
}

impl<'a> Recorded<'a> {
    #[inline(always)]
    pub fn new(kind: RecordKind, name: &'a str, value: f64, tags: Tags<'a>) -> Self {
        Recorded {
            kind,
            name,
            value,
            duration: Duration::ZERO,
            tags,
        }
    }

    #[inline]
    pub fn timer(name: &'a str, duration: Duration, tags: Tags<'a>) -> Self {
        Recorded {
            kind: RecordKind::Timer,
            name,
            value: duration.as_secs_f64() * 1e3,
            duration,
            tags,
        }
    }

    /// The kind of metric this call records into.
    pub fn metric_type(&self) -> MetricType {
        match self.kind {
            RecordKind::Counter => MetricType::Counter,
            RecordKind::Gauge | RecordKind::GaugeDelta => MetricType::Gauge,
            RecordKind::Histogram => MetricType::Histogram,
            RecordKind::Timer => MetricType::Timer,
        }
    }

    /// The unit of [`value`](Self::value).
    pub fn unit(&self) -> MetricUnit {
        match self.kind {
            RecordKind::Timer => MetricUnit::Milliseconds,
            _ => MetricUnit::Count,
        }
    }

    /// The protocol's validation rules, applied once: the sorted tags, or
    /// why every backend drops this call.
    #[inline]
    pub fn check(&self) -> Result<SortedTags<'a>, DropReason> {
        validate::check_sample(
            self.name,
            self.value,
            self.kind == RecordKind::Counter,
            self.tags,
        )?;
        SortedTags::new(self.tags)
    }

    /// Makes the same call on `collector` (statically dispatched when the
    /// collector's type is known).
    #[inline(always)]
    pub fn record_into<C: MetricCollector + ?Sized>(&self, collector: &C) {
        match self.kind {
            RecordKind::Counter => collector.record_counter(self.name, self.value, self.tags),
            RecordKind::Gauge => collector.record_gauge(self.name, self.value, self.tags),
            RecordKind::GaugeDelta => collector.adjust_gauge(self.name, self.value, self.tags),
            RecordKind::Histogram => collector.record_histogram(self.name, self.value, self.tags),
            RecordKind::Timer => collector.record_timer(self.name, self.duration, self.tags),
        }
    }

    /// The value a stream subscriber receives: what was recorded (a
    /// counter's increment, a gauge's value or delta, one sample, a
    /// duration in milliseconds), with the sorted tags.
    pub fn to_value(self, tags: &SortedTags<'_>) -> MetricValue {
        let mut v = MetricValue::new(
            self.name,
            self.value,
            self.metric_type(),
            self.unit(),
            tags.as_slice(),
        );
        if self.kind == RecordKind::GaugeDelta {
            v.metadata.insert("gauge_op".into(), "adjust".into());
        }
        v
    }
}

/// A conservative, lock-free pre-filter of the taps: which first bytes of a
/// metric name some stream or aggregation may want (a one-hash Bloom
/// filter). Recording reads one atomic word and, for most names no tap
/// wants, goes no further. Rebuilt whenever a tap comes or goes.
#[derive(Debug, Default)]
pub(crate) struct Interest(std::sync::atomic::AtomicU64);

impl Interest {
    fn bit(first: u8) -> u64 {
        1u64 << (first % 64)
    }

    /// Whether some tap may want `name` (false positives, never false negatives).
    #[inline]
    pub fn may_want(&self, name: &str) -> bool {
        let mask = self.0.load(std::sync::atomic::Ordering::Acquire);
        mask != 0
            && name
                .as_bytes()
                .first()
                .is_some_and(|b| mask & Self::bit(*b) != 0)
    }

    /// Rebuilds the filter from each tap's name prefix (`None` or empty: it
    /// wants every name).
    pub fn rebuild<'p>(&self, prefixes: impl IntoIterator<Item = Option<&'p str>>) {
        let mask =
            prefixes
                .into_iter()
                .fold(0u64, |m, p| match p.and_then(|p| p.as_bytes().first()) {
                    Some(b) => m | Self::bit(*b),
                    None => u64::MAX,
                });
        self.0.store(mask, std::sync::atomic::Ordering::Release);
    }
}

/// Implements the five recording methods of `MetricCollector` for a type
/// with `fn take(&self, Recorded<'_>)`: each call becomes one
/// [`Recorded`], written once here for every tap. Further trait items
/// (health, handles, ...) may follow the type and a `;`; invoke it with
/// braces, so rustfmt leaves the items alone.
macro_rules! collector_via_take {
    ($ty:ty $(; $($extra:item)*)?) => {
        impl metrics_protocol::MetricCollector for $ty {
            fn record_counter<'a>(&self, name: &'a str, value: f64, tags: metrics_protocol::Tags<'a>) {
                self.take($crate::recorded::Recorded::new(
                    $crate::recorded::RecordKind::Counter, name, value, tags,
                ));
            }
            fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: metrics_protocol::Tags<'a>) {
                self.take($crate::recorded::Recorded::new(
                    $crate::recorded::RecordKind::Gauge, name, value, tags,
                ));
            }
            fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: metrics_protocol::Tags<'a>) {
                self.take($crate::recorded::Recorded::new(
                    $crate::recorded::RecordKind::GaugeDelta, name, delta, tags,
                ));
            }
            fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: metrics_protocol::Tags<'a>) {
                self.take($crate::recorded::Recorded::new(
                    $crate::recorded::RecordKind::Histogram, name, value, tags,
                ));
            }
            fn record_timer<'a>(
                &self,
                name: &'a str,
                duration: std::time::Duration,
                tags: metrics_protocol::Tags<'a>,
            ) {
                self.take($crate::recorded::Recorded::timer(name, duration, tags));
            }
            $($($extra)*)?
        }
    };
}
pub(crate) use collector_via_take;
