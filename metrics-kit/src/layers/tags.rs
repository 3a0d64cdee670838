//! [`CommonTags`]: adds tags to every key.

use std::sync::Arc;

use metrics_protocol::backend::validate::MAX_TAGS;
use metrics_protocol::backend::{self, DropReason, InstrumentFn, Measurement};
use metrics_protocol::{Key, MetricCollector, MetricType};

use super::{Layer, rekey};

/// Adds the same tags (a host, a region, a service) to every key on its
/// way down; a tag the call site set itself wins. Tags are merged on the
/// stack; a key that would carry more than the tag limit is refused and
/// counted as `TooManyTags`.
///
/// ```
/// use std::sync::Arc;
/// use metrics_kit::layers::{CommonTagsLayer, Stack};
/// use metrics_protocol::Metrics;
/// use metrics_protocol::testing::Capture;
///
/// let capture = Capture::new();
/// let stack = Stack::new(capture.clone()).push(CommonTagsLayer::new([("host", "a"), ("zone", "1")]));
/// let metrics = Metrics::new(Arc::new(stack.into_inner()));
/// metrics.increment("jobs", &[("zone", "2")]);
/// assert_eq!(capture.counter("jobs", &[("host", "a"), ("zone", "2")]), 1.0);
/// ```
pub struct CommonTags<C> {
    inner: Arc<C>,
    tags: Arc<[(Box<str>, Box<str>)]>,
}

/// Makes a [`CommonTags`] (see [`Stack`](super::Stack)).
#[derive(Debug, Clone)]
pub struct CommonTagsLayer {
    tags: Arc<[(Box<str>, Box<str>)]>,
}

impl CommonTagsLayer {
    /// Adds `tags` to every key.
    pub fn new<K: Into<String>, V: Into<String>>(tags: impl IntoIterator<Item = (K, V)>) -> Self {
        CommonTagsLayer {
            tags: tags
                .into_iter()
                .map(|(k, v)| (k.into().into_boxed_str(), v.into().into_boxed_str()))
                .collect(),
        }
    }
}

impl<C> Layer<C> for CommonTagsLayer {
    type Output = CommonTags<C>;
    fn layer(&self, inner: C) -> CommonTags<C> {
        CommonTags {
            inner: Arc::new(inner),
            tags: self.tags.clone(),
        }
    }
}

impl<C> CommonTags<C> {
    /// Calls `f` with `key` plus the common tags it lacks.
    #[inline]
    fn with_key<R>(&self, key: &Key<'_>, f: impl FnOnce(&Key<'_>) -> R) -> Result<R, DropReason> {
        let mut buf: [(&str, &str); MAX_TAGS] = [("", ""); MAX_TAGS];
        let own = key.tags();
        let mut n = own.len();
        buf[..n].copy_from_slice(own);
        for (k, v) in self.tags.iter() {
            if key.tag(k).is_none() {
                if n == MAX_TAGS {
                    return Err(DropReason::TooManyTags);
                }
                buf[n] = (k, v);
                n += 1;
            }
        }
        Key::new(key.name(), &buf[..n]).map(|k| f(&k))
    }
}

impl<C: MetricCollector + 'static> MetricCollector for CommonTags<C> {
    #[inline]
    fn record(&self, m: &Measurement<'_>) {
        let done = self.with_key(m.key(), |k| rekey(m, k).map(|m| self.inner.record(&m)));
        if let Err(reason) | Ok(Err(reason)) = done {
            self.inner.reject(reason);
        }
    }

    fn bind(&self, key: &Key<'_>, kind: MetricType) -> Option<Arc<dyn InstrumentFn>> {
        let below: Arc<dyn MetricCollector> = self.inner.clone();
        // Too many tags: no handle, so `record` refuses (and counts) each one.
        self.with_key(key, |k| backend::bind(&below, k, kind)).ok()
    }

    metrics_protocol::forward_collector!(@describe @rest |s| &*s.inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Stack;
    use metrics_protocol::Metrics;
    use metrics_protocol::testing::Capture;

    #[test]
    fn bound_handles_carry_the_tags_and_a_full_key_is_refused() {
        let capture = Capture::new();
        let stack = Stack::new(capture.clone()).push(CommonTagsLayer::new([("host", "a")]));
        let metrics = Metrics::new(Arc::new(stack.into_inner()));
        metrics.gauge("g", &[]).set(2.0);
        assert_eq!(capture.gauge("g", &[("host", "a")]), Some(2.0));
        let full: Vec<(String, String)> = (0..MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        let full: Vec<(&str, &str)> = full.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        metrics.increment("c", &full);
        metrics.counter("c", &full).increment();
        assert_eq!(capture.dropped(DropReason::TooManyTags), 2);
    }
}
