//! The agent's recording side: a stack of `metrics-kit` layers.
//!
//! ```text
//! application ──> Tap (observer: streams, aggregations, error-rate window) ──┐
//!                                                                             ├──> Fanout ──> memory, StatsD
//! aggregation results ──> Tap (observer: streams only) ──────────────────────┘
//! ```
//!
//! Both taps sit over the same [`Fanout`], so an aggregation's results reach
//! every backend and every stream, and never an aggregation (no result is
//! aggregated again, and no aggregation feeds itself).

use std::sync::Arc;

use metrics_kit::Timers;
use metrics_kit::layers::{Fanout, Observer, Tap};
use metrics_memory::{Clock, MemoryMetrics};
use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{MetricCollector, Metrics};
use metrics_statsd::StatsdMetrics;

use crate::aggregate::AggregationSet;
use crate::health::ErrorRateWindow;
use crate::stream::StreamHub;

/// A tap over the agent's fan-out.
pub(crate) type Tapped = Tap<Arc<Fanout>, Taps>;
pub(crate) type ResultsTapped = Tap<Arc<Fanout>, StreamsOnly>;

/// Running timers kept at most; past it the oldest is evicted and counted.
const MAX_RUNNING_TIMERS: usize = 10_000;

/// The layers and what they feed.
pub(crate) struct Recording {
    /// The backends configured (memory and/or StatsD, in that order,
    /// behind one fan-out the taps share).
    pub memory: Option<Arc<MemoryMetrics>>,
    pub statsd: Option<Arc<StatsdMetrics>>,
    /// What the application records into: the fan-out, tapped for the
    /// streams, the aggregations and the error-rate window.
    pub top: Arc<Tapped>,
    /// Where the agent's own aggregations write their results: the same
    /// fan-out, tapped for the streams only.
    pub results: Arc<ResultsTapped>,
    pub hub: StreamHub,
    pub aggregations: Arc<AggregationSet>,
    pub outcomes: Arc<ErrorRateWindow>,
    /// `start_timer`/`stop_timer`, recorded into `top`.
    pub timers: Arc<Timers>,
    pub clock: Arc<dyn Clock>,
}

/// The observer of the top tap.
pub(crate) struct Taps {
    hub: StreamHub,
    aggregations: Arc<AggregationSet>,
    outcomes: Arc<ErrorRateWindow>,
}

impl Observer for Taps {
    #[inline]
    fn wants(&self, name: &str, value: &Value) -> bool {
        matches!(value, Value::Success | Value::Failure)
            || self.hub.may_want(name)
            || self.aggregations.may_want(name)
    }

    /// Streams see every measurement; an outcome is counted in the
    /// error-rate window; every other value may be a sample of an
    /// aggregation. Streams come first, so a batch an aggregation closes
    /// here streams its results after the sample that closed it. The
    /// one-word pre-checks come first, so a measurement nobody taps costs a
    /// couple of loads.
    #[inline]
    fn observe(&self, m: &Measurement<'_>) {
        let name = m.key().name();
        if self.hub.may_want(name) {
            self.hub.offer(m);
        }
        match m.value() {
            Value::Success => self.outcomes.record(true),
            Value::Failure => self.outcomes.record(false),
            _ => {
                if self.aggregations.may_want(name) {
                    self.aggregations.offer(m);
                }
            }
        }
    }
}

/// The observer of the results' tap: the streams only.
pub(crate) struct StreamsOnly(StreamHub);

impl Observer for StreamsOnly {
    #[inline]
    fn wants(&self, name: &str, _: &Value) -> bool {
        self.0.may_want(name)
    }

    #[inline]
    fn observe(&self, m: &Measurement<'_>) {
        if self.0.may_want(m.key().name()) {
            self.0.offer(m);
        }
    }
}

impl Recording {
    /// The stack over `memory` and/or `statsd`.
    pub fn new(
        memory: Option<Arc<MemoryMetrics>>,
        statsd: Option<Arc<StatsdMetrics>>,
        hub: StreamHub,
        outcomes: ErrorRateWindow,
        clock: Arc<dyn Clock>,
    ) -> Recording {
        let mut backends: Vec<Arc<dyn MetricCollector>> = Vec::new();
        if let Some(m) = &memory {
            backends.push(m.clone());
        }
        if let Some(s) = &statsd {
            backends.push(s.clone());
        }
        let fanout = Arc::new(Fanout::new(backends));
        let aggregations = Arc::new(AggregationSet::new());
        let outcomes = Arc::new(outcomes);
        let top = Arc::new(Tap::new(
            fanout.clone(),
            Arc::new(Taps {
                hub: hub.clone(),
                aggregations: aggregations.clone(),
                outcomes: outcomes.clone(),
            }),
        ));
        let results = Arc::new(Tap::new(fanout.clone(), Arc::new(StreamsOnly(hub.clone()))));
        let timers = Arc::new(Timers::new(top.clone(), MAX_RUNNING_TIMERS));
        Recording {
            memory,
            statsd,
            top,
            results,
            hub,
            aggregations,
            outcomes,
            timers,
            clock,
        }
    }

    /// The handle libraries record through.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(self.top.clone())
    }
}
