//! The application side of the metrics facade: one value implementing
//! [`MetricsSystem`](metrics_protocol::system::MetricsSystem) and
//! [`AsyncMetricsSystem`](metrics_protocol::system::AsyncMetricsSystem), chosen at
//! start-up from configuration.
#![deny(missing_docs)]

pub mod aggregate;
pub mod config;
mod core;
pub mod dashboard;
pub mod export;
pub mod health;
mod pool;
mod recorded;
pub mod stream;
pub mod system;

pub use aggregate::{
    AggFn, AggregateSink, AggregationSet, AggregationSpec, AggregationWindow, StreamAggregator,
};
pub use config::{AgentConfig, AggregationConfig, AggregationTarget, BackendChoice, HealthConfig};
pub use health::{CheckOutcome, ErrorRateWindow, FnCheck, HealthCheck, HealthChecks};
pub use stream::StreamHub;
pub use system::Agent;

#[cfg(test)]
pub(crate) mod test_util {
    /// Runs a future to completion on a fresh current-thread runtime.
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a test runtime")
            .block_on(f)
    }
}
