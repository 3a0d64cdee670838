//! [`MetricCollector`]: the one trait a backend writes.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::validate::DropReason;
use crate::error::MetricsError;
use crate::health::BackendHealth;
use crate::instruments::InstrumentFn;
use crate::key::Key;
use crate::measurement::Measurement;
use crate::measurement::Value;
use crate::types::{MetricType, MetricUnit, Tags};

/// What a backend implements: it is handed [`Measurement`]s, each valid and
/// hashed once where it was made. It only writes; reading is the query
/// side's job (`app::MetricsAggregator`).
///
/// A library does not call this trait: it holds a [`Metrics`](crate::Metrics)
/// handle, whose conveniences (by name, bound handles, timing guards,
/// outcomes) all arrive here as measurements.
///
/// # For implementors
///
/// - [`record`](Self::record) is the only required method. Be cheap and
///   non-blocking: no I/O on the caller's thread, no global lock. Key your
///   tables on [`Key::fingerprint`]; do not check the name, tags or value
///   again.
/// - Override [`record_by_name`](Self::record_by_name) only if you can find
///   an existing series from the borrowed name and tags faster than a key
///   is built; refuse exactly what the default refuses.
/// - Override [`bind`](Self::bind) to hand out handles that write to a
///   series' storage directly; by default a handle keeps its key and calls
///   `record`.
/// - Count what the caller's side refused in [`reject`](Self::reject), and
///   what you drop yourself (full queue, full table), in
///   [`health`](Self::health).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use metrics_protocol::{MetricCollector, Metrics};
/// use metrics_protocol::backend::{Measurement, Value};
///
/// /// Counts counter increments, whatever the series.
/// #[derive(Default)]
/// struct Tally(AtomicU64);
/// impl MetricCollector for Tally {
///     fn record(&self, m: &Measurement<'_>) {
///         if let Value::Counter(v) = m.value() {
///             self.0.fetch_add(v as u64, Ordering::Relaxed);
///         }
///     }
/// }
/// let tally = Arc::new(Tally::default());
/// let metrics = Metrics::new(tally.clone());
/// metrics.increment("a", &[]);
/// metrics.counter("b", &[("k", "v")]).add(2.0);
/// metrics.increment("", &[]); // no name: refused before it reaches the backend
/// assert_eq!(tally.0.load(Ordering::Relaxed), 3);
/// ```
pub trait MetricCollector: Send + Sync {
    /// Records one measurement.
    fn record(&self, measurement: &Measurement<'_>);

    /// Records `value` into the series `name`/`tags`: what every by-name
    /// call of the [`Metrics`](crate::Metrics) handle arrives as. The
    /// default builds the [`Key`] (checked and hashed once) and the
    /// [`Measurement`] and calls [`record`](Self::record), or
    /// [`reject`](Self::reject)s with the reason of the first broken rule.
    ///
    /// A backend may override it to look up a series it already holds by
    /// the borrowed name and tags, skipping the key where a match proves
    /// the name and tags valid; it must refuse exactly what the default
    /// refuses, with the same reasons.
    #[inline]
    fn record_by_name(&self, name: &str, tags: Tags<'_>, value: &Value) {
        crate::handle::record_with_key(self, name, tags, *value)
    }

    /// Records a finished timing of the operation `name`/`tags`: the
    /// duration `elapsed` into its timer series, then one outcome, a
    /// success (`failure` is `None`) or a failure of that error type. What
    /// a [`Timing`](crate::Timing) guard arrives as when it ends. The
    /// default builds the key once and records both measurements
    /// ([`backend::record_timing_with_key`](crate::backend::record_timing_with_key)); a name or
    /// tags that break a rule are refused twice, once per measurement.
    ///
    /// Overriding it follows the rule of [`record_by_name`](Self::record_by_name):
    /// find what you already hold by the borrowed name and tags, and refuse
    /// exactly what the default refuses.
    #[inline]
    fn record_timing_by_name(
        &self,
        name: &str,
        tags: Tags<'_>,
        elapsed: Duration,
        failure: Option<&str>,
    ) {
        crate::handle::record_timing_with_key(self, name, tags, elapsed, failure)
    }

    /// A handle that writes to `key`'s series of kind `kind` directly, if
    /// the backend has one; `None` (the default) makes the handle call
    /// [`record`](Self::record) with the key it keeps.
    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        let _ = (key, kind);
        None
    }

    /// Describes a metric: its kind, unit and a one-line help text, for the
    /// exports that carry them (Prometheus `# HELP`, OpenMetrics `# UNIT`).
    /// The last description of a name wins; a backend may ignore it.
    fn describe(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>, help: &str) {
        let _ = (name, kind, unit, help);
    }

    /// Counts one recording refused before it became a measurement (a bad
    /// name, tag or value), so health shows it.
    fn reject(&self, reason: DropReason) {
        let _ = reason;
    }

    /// Pushes out anything buffered and waits, bounded, until it is handed
    /// to the OS. In-memory backends have nothing to flush.
    fn flush(&self) -> Result<(), MetricsError> {
        Ok(())
    }

    /// What this backend (or each backend behind it) reports about itself:
    /// drops by reason, queue depths, errors.
    fn health(&self) -> Vec<BackendHealth> {
        Vec::new()
    }
}

/// Forwards methods of [`MetricCollector`] to `$inner` (an expression over
/// `self` that yields something implementing it): the one place the trait
/// is forwarded. Smart pointers, the handle and layers use it.
///
/// `forward_collector!(|s| &s.inner)` forwards every method. A layer that
/// writes some methods itself forwards the others by name:
/// `forward_collector!(@describe @rest |s| &s.inner)` forwards `describe`,
/// and `@rest` stands for `reject`, `flush` and `health`; `@record` (which
/// also forwards `record_by_name` and `record_timing_by_name`) and `@bind`
/// name the others.
#[doc(hidden)]
#[macro_export]
macro_rules! forward_collector {
    (|$this:ident| $inner:expr) => {
        $crate::forward_collector!(@record @bind @describe @rest |$this| $inner);
    };
    ($(@$part:ident)+ |$this:ident| $inner:expr) => {
        $( $crate::forward_collector!(@one $part |$this| $inner); )+
    };
    (@one record |$this:ident| $inner:expr) => {
        #[inline]
        fn record(&self, measurement: &$crate::backend::Measurement<'_>) {
            let $this = self;
            $crate::MetricCollector::record($inner, measurement)
        }
        #[inline]
        fn record_by_name(
            &self,
            name: &str,
            tags: $crate::Tags<'_>,
            value: &$crate::backend::Value,
        ) {
            let $this = self;
            $crate::MetricCollector::record_by_name($inner, name, tags, value)
        }
        #[inline]
        fn record_timing_by_name(
            &self,
            name: &str,
            tags: $crate::Tags<'_>,
            elapsed: ::std::time::Duration,
            failure: ::std::option::Option<&str>,
        ) {
            let $this = self;
            $crate::MetricCollector::record_timing_by_name($inner, name, tags, elapsed, failure)
        }
    };
    (@one bind |$this:ident| $inner:expr) => {
        #[inline]
        fn bind(
            &self,
            key: &$crate::Key<'_>,
            kind: $crate::MetricType,
        ) -> ::std::option::Option<::std::sync::Arc<dyn $crate::backend::InstrumentFn>> {
            let $this = self;
            $crate::MetricCollector::bind($inner, key, kind)
        }
    };
    (@one describe |$this:ident| $inner:expr) => {
        fn describe(
            &self,
            name: &str,
            kind: $crate::MetricType,
            unit: ::std::option::Option<$crate::MetricUnit>,
            help: &str,
        ) {
            let $this = self;
            $crate::MetricCollector::describe($inner, name, kind, unit, help)
        }
    };
    (@one rest |$this:ident| $inner:expr) => {
        fn reject(&self, reason: $crate::backend::DropReason) {
            let $this = self;
            $crate::MetricCollector::reject($inner, reason)
        }
        fn flush(&self) -> ::std::result::Result<(), $crate::MetricsError> {
            let $this = self;
            $crate::MetricCollector::flush($inner)
        }
        fn health(&self) -> ::std::vec::Vec<$crate::backend::BackendHealth> {
            let $this = self;
            $crate::MetricCollector::health($inner)
        }
    };
}

impl<C: MetricCollector + ?Sized> MetricCollector for Arc<C> {
    forward_collector!(|s| &**s);
}

impl<C: MetricCollector + ?Sized> MetricCollector for Box<C> {
    forward_collector!(|s| &**s);
}

impl<C: MetricCollector + ?Sized> MetricCollector for &C {
    forward_collector!(|s| &**s);
}
