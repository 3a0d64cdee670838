//! Bound instruments: [`Counter`], [`Gauge`], [`Histogram`], [`Timer`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::validate::DropReason;
use crate::collector::MetricCollector;
use crate::key::{Key, OwnedKey};
use crate::measurement::{Measurement, Value};
use crate::types::MetricType;

/// What a backend implements to record into one series without looking it
/// up: handed out from [`MetricCollector::bind`] and wrapped in a
/// [`Counter`], [`Gauge`], [`Histogram`] or [`Timer`], which check each
/// value first (a value that breaks a rule goes to
/// [`reject`](Self::reject) instead).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use metrics_protocol::Counter;
/// use metrics_protocol::backend::{InstrumentFn, Value};
///
/// /// A series that counts whole increments in an atomic.
/// #[derive(Default)]
/// struct Cell(AtomicU64);
/// impl InstrumentFn for Cell {
///     fn record(&self, value: Value) {
///         if let Value::Counter(v) = value {
///             self.0.fetch_add(v as u64, Ordering::Relaxed);
///         }
///     }
/// }
/// let cell = Arc::new(Cell::default());
/// let counter = Counter::from_arc(cell.clone());
/// counter.increment();
/// counter.add(2.0);
/// counter.add(-1.0); // refused by the handle, never reaches the cell
/// assert_eq!(cell.0.load(Ordering::Relaxed), 3);
/// ```
pub trait InstrumentFn: Send + Sync {
    /// Records one checked value of the series' kind.
    fn record(&self, value: Value);

    /// Counts one value the handle refused.
    fn reject(&self, reason: DropReason) {
        let _ = reason;
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Arc<dyn InstrumentFn>);

        impl $name {
            /// Wraps a backend's series handle.
            pub fn from_arc(inner: Arc<dyn InstrumentFn>) -> Self {
                $name(inner)
            }

            #[inline]
            fn put(&self, value: Value) {
                match value.check() {
                    Ok(()) => self.0.record(value),
                    Err(reason) => self.0.reject(reason),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

handle!(
    /// A counter bound to one series. Cheap to clone; all clones record
    /// into the same series.
    Counter
);
handle!(
    /// A gauge bound to one series. Cheap to clone; all clones record into
    /// the same series.
    Gauge
);
handle!(
    /// A histogram bound to one series. Cheap to clone; all clones record
    /// into the same series.
    Histogram
);
handle!(
    /// A timer bound to one series. Cheap to clone; all clones record into
    /// the same series.
    Timer
);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.put(Value::Counter(1.0))
    }
    /// Adds `value` (finite, not negative).
    #[inline]
    pub fn add(&self, value: f64) {
        self.put(Value::Counter(value))
    }
}

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.put(Value::Gauge(value))
    }
    /// Adds `delta` (negative to decrease).
    #[inline]
    pub fn adjust(&self, delta: f64) {
        self.put(Value::GaugeDelta(delta))
    }
    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.put(Value::GaugeDelta(1.0))
    }
    /// Subtracts one.
    #[inline]
    pub fn decrement(&self) {
        self.put(Value::GaugeDelta(-1.0))
    }
}

impl Histogram {
    /// Records one sample.
    #[inline]
    pub fn record(&self, value: f64) {
        self.put(Value::Histogram(value))
    }
}

impl Timer {
    /// Records one duration.
    #[inline]
    pub fn record(&self, duration: Duration) {
        self.put(Value::Timer(duration))
    }
}

/// A handle for a backend that does not [`bind`](MetricCollector::bind):
/// it keeps the key and calls `record`.
struct ByKey {
    collector: Arc<dyn MetricCollector>,
    key: OwnedKey,
}

impl InstrumentFn for ByKey {
    fn record(&self, value: Value) {
        self.key.with_key(|key| {
            // The value was checked by the handle.
            if let Ok(m) = Measurement::new(key, value) {
                self.collector.record(&m);
            }
        })
    }

    fn reject(&self, reason: DropReason) {
        self.collector.reject(reason);
    }
}

/// What a handle binds to when its key was refused: every recording
/// through it is refused too, and counted.
struct Refused {
    collector: Arc<dyn MetricCollector>,
    reason: DropReason,
}

impl InstrumentFn for Refused {
    fn record(&self, _: Value) {
        self.collector.reject(self.reason);
    }

    fn reject(&self, reason: DropReason) {
        self.collector.reject(reason);
    }
}

/// Binds `name`/`tags` through `collector`; a handle that refuses (and
/// counts) every recording if they break a rule.
pub(crate) fn bind_name(
    collector: &Arc<dyn MetricCollector>,
    name: &str,
    tags: crate::Tags<'_>,
    kind: MetricType,
) -> Arc<dyn InstrumentFn> {
    match Key::new(name, tags) {
        Ok(key) => bind(collector, &key, kind),
        Err(reason) => Arc::new(Refused {
            collector: collector.clone(),
            reason,
        }),
    }
}

/// `collector`'s own handle for `key`'s series if it
/// [binds](MetricCollector::bind), else one that keeps the key and calls
/// [`record`](MetricCollector::record): what a fan-out or a layer binds each
/// backend below it with.
pub fn bind(
    collector: &Arc<dyn MetricCollector>,
    key: &Key<'_>,
    kind: MetricType,
) -> Arc<dyn InstrumentFn> {
    collector.bind(key, kind).unwrap_or_else(|| {
        Arc::new(ByKey {
            collector: collector.clone(),
            key: OwnedKey::from(key),
        })
    })
}
