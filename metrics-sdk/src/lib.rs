//! The application side of the metrics facade: one value, [`Agent`],
//! implementing [`MetricsSystem`](metrics_protocol::app::MetricsSystem)
//! and [`AsyncMetricsSystem`](metrics_protocol::app::AsyncMetricsSystem),
//! chosen at start-up from configuration. `metrics-protocol` is what a
//! library instruments with; this crate is what an application composes
//! and configures, then hands its libraries the agent's
//! [`Metrics`](metrics_protocol::Metrics) handle.
//!
//! ```
//! use metrics_sdk::{Agent, AgentConfig};
//! use metrics_protocol::app::MetricsSystem;
//!
//! let agent = Agent::new(AgentConfig { system_polling: false, ..Default::default() })?;
//! let metrics = agent.metrics(); // what the application's libraries get
//! metrics.time("startup", &[], || ());
//! assert_eq!(agent.aggregator().success_rate("startup", None)?, 1.0);
//! agent.shutdown_metrics()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The agent is a stack of `metrics-kit` layers: a `Fanout` over the
//! configured backends (memory, StatsD or both), under a `Tap` whose
//! observer feeds the live streams, the stream aggregations and the
//! health report's error-rate window. Aggregation results are written into
//! a second tap over the same fan-out, seen by the streams only.
//!
//! Where each job lives:
//!
//! | module | job |
//! | --- | --- |
//! | [`agent`] | [`Agent`]: building the agent from its configuration, its health entries (`agent`, and `system` for resource polling), the layer stack (`agent::stack`), the protocol's [`MetricsSystem`](metrics_protocol::app::MetricsSystem) traits (`agent::protocol`), the ticker and shutdown (`agent::lifecycle`) |
//! | [`config`] | [`AgentConfig`]: schema and defaults (`config`), JSON/TOML files (`config::file`), `METRICS_*` variables (`config::env`) |
//! | [`error`] | [`AgentError`]: configuration, parse and start-up errors |
//! | [`stream`] | [`StreamHub`]: live streams with bounded buffers per subscriber |
//! | [`aggregate`] | stream aggregation: specs and functions, batches, the set of an agent |
//! | [`health`] | registered health checks and the error-rate window |
//! | [`history`] | durable history: range queries over memory and the store, the store's health |
//! | [`logging`] | the filter of an application's log on stderr (`RUST_LOG`, the configuration's `log`) |
//! | [`dashboard`] | dashboards computed from the memory backend |
//! | [`export`] | exports to files and HTTP endpoints, through the agent's [`Exporter`] (`metrics-exposition`) |
//! | `runtime` | the one tokio runtime every background task runs on (the application's, or one the agent starts) |
//! | `interest` | the one-word filter the taps read first |
#![deny(missing_docs)]

pub mod agent;
pub mod aggregate;
pub mod builder;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod health;
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
pub mod history;
mod interest;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
mod ranges;
mod runtime;
pub mod stream;

pub use agent::Agent;
pub use aggregate::{
    AggFn, AggregateSink, AggregationBatch, AggregationSet, AggregationSpec, StreamAggregator,
};
pub use builder::{Builder, Running};
pub use config::{
    AgentConfig, AggregationConfig, AggregationTarget, BackendChoice, HealthConfig,
    RemoteWriteSettings,
};
pub use error::AgentError;
pub use health::{CheckOutcome, ErrorRateWindow, FnCheck, HealthCheck, HealthChecks};
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
pub use history::HistoryRanges;
pub use metrics_exposition::{ExportFormat, Exporter, ExpositionConfig};
pub use stream::StreamHub;

#[cfg(test)]
pub(crate) mod test_util {
    use std::sync::Arc;

    /// A handle recording into the memory backend `m` alone.
    pub fn metrics_of(m: &Arc<metrics_memory::MemoryMetrics>) -> metrics_protocol::Metrics {
        metrics_protocol::Metrics::new(m.clone())
    }

    /// Runs a future to completion on a fresh current-thread runtime.
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        test_runtime().block_on(f)
    }

    /// A multi-threaded runtime of two workers, shared by the tests, as
    /// an application's: where history writers run.
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    pub fn app_runtime() -> tokio::runtime::Handle {
        static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("an application runtime")
        })
        .handle()
        .clone()
    }

    /// A fresh current-thread runtime, for a test's futures and its
    /// blocking pool.
    pub fn test_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a test runtime")
    }
}
