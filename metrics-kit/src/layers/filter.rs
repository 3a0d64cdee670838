//! [`Filter`]: passes on only the keys a predicate accepts.

use std::sync::Arc;

use metrics_protocol::backend::{self, InstrumentFn, Measurement, Value};
use metrics_protocol::{Key, MetricCollector, MetricType};

use super::Layer;

type Predicate = dyn Fn(&Key<'_>) -> bool + Send + Sync;

/// Hands the collector below only the measurements whose key `allow`
/// accepts; the others are left out on purpose (not a drop: nothing is
/// counted).
///
/// ```
/// use std::sync::Arc;
/// use metrics_kit::layers::{FilterLayer, Stack};
/// use metrics_protocol::Metrics;
/// use metrics_protocol::testing::Capture;
///
/// let capture = Capture::new();
/// let stack = Stack::new(capture.clone()).push(FilterLayer::new(|k| !k.name().starts_with("debug.")));
/// let metrics = Metrics::new(Arc::new(stack.into_inner()));
/// metrics.increment("debug.loops", &[]);
/// metrics.increment("orders", &[]);
/// assert_eq!(capture.records().len(), 1);
/// ```
pub struct Filter<C> {
    inner: Arc<C>,
    allow: Arc<Predicate>,
}

/// Makes a [`Filter`] (see [`Stack`](super::Stack)).
#[derive(Clone)]
pub struct FilterLayer {
    allow: Arc<Predicate>,
}

impl FilterLayer {
    /// Keeps the keys `allow` accepts.
    pub fn new(allow: impl Fn(&Key<'_>) -> bool + Send + Sync + 'static) -> Self {
        FilterLayer {
            allow: Arc::new(allow),
        }
    }
}

impl<C> Layer<C> for FilterLayer {
    type Output = Filter<C>;
    fn layer(&self, inner: C) -> Filter<C> {
        Filter {
            inner: Arc::new(inner),
            allow: self.allow.clone(),
        }
    }
}

/// The handle of a key the filter leaves out.
struct LeftOut;

impl InstrumentFn for LeftOut {
    fn record(&self, _: Value) {}
}

impl<C: MetricCollector + 'static> MetricCollector for Filter<C> {
    #[inline]
    fn record(&self, m: &Measurement<'_>) {
        if (self.allow)(m.key()) {
            self.inner.record(m);
        }
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        if (self.allow)(key) {
            let below: Arc<dyn MetricCollector> = self.inner.clone();
            Some(backend::bind(&below, key, kind))
        } else {
            Some(Arc::new(LeftOut))
        }
    }

    metrics_protocol::forward_collector!(@describe @rest |s| &*s.inner);
}
