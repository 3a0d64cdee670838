//! Stream aggregation: the samples of one metric, grouped by tag set in
//! tumbling batches (by time or by count), reduced by functions (built-in
//! or from code) into results sent to a collector or a stream.
//!
//! - `spec`: what to aggregate and how ([`AggregationSpec`], [`AggregationBatch`],
//!   [`AggFn`]);
//! - `aggregator`: one aggregation's batches ([`StreamAggregator`]) and
//!   where results go ([`AggregateSink`]);
//! - `set`: an agent's aggregations, found by name ([`AggregationSet`]).

mod aggregator;
mod set;
mod spec;

pub use aggregator::{AggregateSink, StreamAggregator};
pub use set::AggregationSet;
pub use spec::{AggFn, AggregationBatch, AggregationSpec, CustomFn};

#[cfg(test)]
mod tests;
