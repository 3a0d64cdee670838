//! The application side of the metrics facade: one value, [`Agent`],
//! implementing [`MetricsSystem`](metrics_protocol::system::MetricsSystem)
//! and [`AsyncMetricsSystem`](metrics_protocol::system::AsyncMetricsSystem),
//! chosen at start-up from configuration.
//!
//! ```
//! use metrics_agent::{Agent, AgentConfig};
//! use metrics_protocol::system::MetricsSystem;
//!
//! let agent = Agent::new(AgentConfig { system_sampling: false, ..Default::default() })?;
//! let metrics = agent.metrics(); // what the application's libraries get
//! metrics.time("startup", &[], || ());
//! assert_eq!(agent.tracker().get_success_rate("startup", None)?, 1.0);
//! agent.shutdown_metrics()?;
//! # Ok::<(), metrics_protocol::MetricsError>(())
//! ```
//!
//! Where each job lives:
//!
//! | module | job |
//! | --- | --- |
//! | [`system`] | [`Agent`]: building the system from its configuration, its health entries (`system`), the protocol's system traits (`system::protocol`), the ticker and shutdown (`system::lifecycle`) |
//! | `core` | the recording path: each call to the backends, then (validated once) to the streams and aggregations that want it |
//! | [`config`] | [`AgentConfig`]: schema and defaults (`config`), JSON/TOML files (`config::file`), `METRICS_*` variables (`config::env`) |
//! | [`stream`] | [`StreamHub`]: live streams with bounded buffers per subscriber |
//! | [`aggregate`] | stream aggregation: specs and functions, windows, the set of a system |
//! | [`health`] | registered health checks and the error-rate window |
//! | [`history`] | durable history: range queries over memory and the store, the store's health |
//! | [`logging`] | what the main program logs on stderr (`RUST_LOG`, the configuration's `log`) |
//! | [`dashboard`] | dashboards computed from the memory backend |
//! | [`export`] | exports to files and HTTP endpoints |
//! | `pool` | the few threads that run checks, exports and on-demand samples |
//! | `recorded` | one recording call as it travels the system |
#![deny(missing_docs)]

pub mod aggregate;
pub mod config;
mod core;
pub mod dashboard;
pub mod export;
pub mod health;
pub mod history;
pub mod logging;
mod pool;
mod ranges;
mod recorded;
pub mod stream;
pub mod system;

pub use aggregate::{
    AggFn, AggregateSink, AggregationSet, AggregationSpec, AggregationWindow, StreamAggregator,
};
pub use config::{AgentConfig, AggregationConfig, AggregationTarget, BackendChoice, HealthConfig};
pub use health::{CheckOutcome, ErrorRateWindow, FnCheck, HealthCheck, HealthChecks};
pub use history::HistoryRanges;
pub use ranges::MemoryRanges;
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
