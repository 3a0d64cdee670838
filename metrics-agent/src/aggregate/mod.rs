//! Stream aggregation: the samples of one metric, grouped by tag set in
//! tumbling windows (by time or by count), reduced by functions (built-in
//! or from code) into results sent to a collector or a stream.
//!
//! - `spec`: what to aggregate and how ([`AggregationSpec`], [`AggregationWindow`],
//!   [`AggFn`]);
//! - `aggregator`: one aggregation's windows ([`StreamAggregator`]) and
//!   where results go ([`AggregateSink`]);
//! - `set`: a system's aggregations, found by name ([`AggregationSet`]).

mod aggregator;
mod set;
mod spec;

pub use aggregator::{AggregateSink, StreamAggregator};
pub use set::AggregationSet;
pub use spec::{AggFn, AggregationSpec, AggregationWindow, CustomFn};

#[cfg(test)]
mod tests;
