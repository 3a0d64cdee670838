//! [`Prefix`]: puts a prefix before every name.

use std::sync::Arc;

use metrics_protocol::backend::validate::MAX_NAME_LEN;
use metrics_protocol::backend::{self, DropReason, InstrumentFn, Measurement};
use metrics_protocol::{Key, MetricCollector, MetricType, MetricUnit};

use super::{Layer, rekey};

/// Renames every metric `<prefix>.<name>` on its way down (names built on
/// the stack: no allocation). A name that grows past the length limit is
/// refused and counted as `InvalidName`.
///
/// ```
/// use std::sync::Arc;
/// use metrics_kit::layers::{PrefixLayer, Stack};
/// use metrics_protocol::Metrics;
/// use metrics_protocol::testing::Capture;
///
/// let capture = Capture::new();
/// let metrics = Metrics::new(Arc::new(Stack::new(capture.clone()).push(PrefixLayer::new("api")).into_inner()));
/// metrics.counter("calls", &[]).increment();
/// assert_eq!(capture.counter("api.calls", &[]), 1.0);
/// ```
pub struct Prefix<C> {
    inner: Arc<C>,
    prefix: Box<str>,
}

/// Makes a [`Prefix`] (see [`Stack`](super::Stack)).
#[derive(Debug, Clone)]
pub struct PrefixLayer {
    prefix: Box<str>,
}

impl PrefixLayer {
    /// Prefixes every name with `prefix` and a dot.
    pub fn new(prefix: impl Into<String>) -> Self {
        PrefixLayer {
            prefix: prefix.into().into_boxed_str(),
        }
    }
}

impl<C> Layer<C> for PrefixLayer {
    type Output = Prefix<C>;
    fn layer(&self, inner: C) -> Prefix<C> {
        Prefix {
            inner: Arc::new(inner),
            prefix: self.prefix.clone(),
        }
    }
}

impl<C> Prefix<C> {
    /// Calls `f` with `<prefix>.<name>`, or returns the reason it is no name.
    #[inline]
    fn with_name<R>(&self, name: &str, f: impl FnOnce(&str) -> R) -> Result<R, DropReason> {
        let len = self.prefix.len() + 1 + name.len();
        if len > MAX_NAME_LEN {
            return Err(DropReason::InvalidName);
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        buf[..self.prefix.len()].copy_from_slice(self.prefix.as_bytes());
        buf[self.prefix.len()] = b'.';
        buf[self.prefix.len() + 1..len].copy_from_slice(name.as_bytes());
        // Two whole UTF-8 strings joined by an ASCII dot: still UTF-8.
        let joined = std::str::from_utf8(&buf[..len]).map_err(|_| DropReason::InvalidName)?;
        Ok(f(joined))
    }
}

impl<C: MetricCollector + 'static> MetricCollector for Prefix<C> {
    #[inline]
    fn record(&self, m: &Measurement<'_>) {
        let key = m.key();
        let done = self.with_name(key.name(), |name| {
            let renamed = key.with_name(name)?;
            rekey(m, &renamed).map(|m| self.inner.record(&m))
        });
        if let Err(reason) | Ok(Err(reason)) = done {
            self.inner.reject(reason);
        }
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        let below: Arc<dyn MetricCollector> = self.inner.clone();
        let bound = self.with_name(key.name(), |name| {
            key.with_name(name).map(|k| backend::bind(&below, &k, kind))
        });
        // A name past the limit: no handle, so each recording through the
        // fallback handle is refused (and counted) by `record`.
        bound.ok()?.ok()
    }

    fn describe(&self, name: &str, kind: MetricType, unit: Option<MetricUnit>, help: &str) {
        let _ = self.with_name(name, |name| self.inner.describe(name, kind, unit, help));
    }

    metrics_protocol::forward_collector!(@rest |s| &*s.inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Stack;
    use metrics_protocol::Metrics;
    use metrics_protocol::testing::Capture;

    #[test]
    fn outcomes_keep_their_error_type_and_long_names_are_refused() {
        let capture = Capture::new();
        let stack = Stack::new(capture.clone()).push(PrefixLayer::new("svc"));
        let metrics = Metrics::new(Arc::new(stack.into_inner()));
        metrics.start("op", &[]).failure("timeout");
        assert_eq!(capture.failures("svc.op", "timeout", &[]), 1);
        metrics.increment(&"n".repeat(MAX_NAME_LEN - 2), &[]);
        assert_eq!(capture.dropped(DropReason::InvalidName), 1);
        assert_eq!(capture.records().len(), 2);
    }
}
