//! Layers: each a small wrapper of a [`MetricCollector`](metrics_protocol::MetricCollector) that does one
//! thing to every measurement on its way down, stacked by the
//! application.
//!
//! | layer | wrapper | does |
//! | --- | --- | --- |
//! | [`TapLayer`] | [`Tap`] | shows every measurement to an observer (streams, stream aggregations), then passes it on |
//! | [`FilterLayer`] | [`Filter`] | passes on only the keys a predicate accepts |
//! | [`PrefixLayer`] | [`Prefix`] | puts a prefix before every name |
//! | [`CommonTagsLayer`] | [`CommonTags`] | adds tags to every key (a call's own tag wins) |
//!
//! [`Fanout`] is where a stack usually starts: one collector over several
//! backends. Checking names, tags and values is not a layer: a
//! [`Key`] and a [`Measurement`] are valid by
//! construction, checked once where they are made.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_kit::layers::{CommonTagsLayer, Fanout, PrefixLayer, Stack};
//! use metrics_protocol::Metrics;
//! use metrics_protocol::testing::Capture;
//!
//! let (memory, fleet) = (Capture::new(), Capture::new());
//! let stack = Stack::new(Fanout::new(vec![memory.clone(), fleet.clone()]))
//!     .push(PrefixLayer::new("shop"))
//!     .push(CommonTagsLayer::new([("region", "eu")]));
//! let metrics = Metrics::new(Arc::new(stack.into_inner()));
//! metrics.increment("orders", &[]);
//! assert_eq!(memory.counter("shop.orders", &[("region", "eu")]), 1.0);
//! assert_eq!(fleet.counter("shop.orders", &[("region", "eu")]), 1.0);
//! ```

use metrics_protocol::Key;
use metrics_protocol::backend::{DropReason, Measurement};

mod fanout;
mod filter;
mod prefix;
mod tags;
mod tap;

pub use fanout::{Fanout, flush_all};
pub use filter::{Filter, FilterLayer};
pub use prefix::{Prefix, PrefixLayer};
pub use tags::{CommonTags, CommonTagsLayer};
pub use tap::{Observer, Tap, TapLayer};

/// Wraps a collector in another: what each layer's `…Layer` value does.
pub trait Layer<C> {
    /// The wrapped collector.
    type Output;

    /// Wraps `inner`.
    fn layer(&self, inner: C) -> Self::Output;
}

/// A collector and the layers pushed onto it, outermost last: a
/// measurement goes through the last layer pushed first.
#[derive(Debug)]
pub struct Stack<C> {
    inner: C,
}

impl<C> Stack<C> {
    /// A stack of just `inner`.
    pub fn new(inner: C) -> Self {
        Stack { inner }
    }

    /// Wraps the stack in `layer`.
    pub fn push<L: Layer<C>>(self, layer: L) -> Stack<L::Output> {
        Stack {
            inner: layer.layer(self.inner),
        }
    }

    /// The outermost collector.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

/// `m` again with another key (a layer's renamed or retagged one).
pub(crate) fn rekey<'a>(
    m: &Measurement<'a>,
    key: &'a Key<'a>,
) -> Result<Measurement<'a>, DropReason> {
    match m.error_type() {
        Some(error_type) => Measurement::failure(key, error_type),
        None => Measurement::new(key, m.value()),
    }
}
