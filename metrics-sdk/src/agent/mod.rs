//! [`Agent`]: the whole protocol behind one value, assembled at start-up
//! from an [`AgentConfig`].
//!
//! This file builds the agent (backends, resource poller, aggregation
//! ticker) and holds its own accessors and health entries; `stack.rs` is the recording
//! side, a stack of `metrics-kit` layers; `protocol.rs` answers the
//! protocol's [`MetricsSystem`] and `AsyncMetricsSystem` traits;
//! `lifecycle.rs` is the aggregation ticker's loop and the shutdown (on
//! request or on drop).

mod lifecycle;
mod protocol;
mod stack;

use lifecycle::{shut_down_error, tick_loop};
use stack::Recording;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics_exposition::{ExportFormat, Exporter};
use metrics_memory::{Clock, MemoryMetrics, SystemClock};
use metrics_protocol::app::{HealthCheckResult, ResourceMonitor};
// The docs link to its methods; the code calls one only with `bridge`.
#[cfg_attr(not(feature = "bridge"), allow(unused_imports))]
use metrics_protocol::app::MetricsSystem;
use metrics_protocol::backend::{BackendHealth, HealthStatus};
use metrics_protocol::{MetricCollector, MetricsError};
use metrics_statsd::StatsdMetrics;
use parking_lot::Mutex;

use crate::aggregate::{AggregateSink, AggregationSpec, StreamAggregator};
use crate::config::{AgentConfig, AggregationTarget};
use crate::error::AgentError;
use crate::health::{ErrorRateWindow, HealthCheck, HealthChecks};
use crate::runtime::SystemRuntime;
use crate::stream::StreamHub;

/// How often time batches of stream aggregations are closed.
const TICK: Duration = Duration::from_millis(100);

/// A complete metrics system: the backends chosen by an [`AgentConfig`]
/// (memory, StatsD, or both, behind a fan-out), host-resource polling
/// (`metrics-system`), live streams, stream aggregation, registered health checks,
/// dashboards and exports. It implements [`MetricsSystem`] and
/// [`AsyncMetricsSystem`](metrics_protocol::app::AsyncMetricsSystem).
///
/// ```
/// use metrics_sdk::{Agent, AgentConfig};
/// use metrics_protocol::app::{DashboardKind, MetricsSystem};
///
/// let mut config = AgentConfig::default(); // the in-memory backend
/// config.system_polling = false;
/// let agent = Agent::new(config)?;
/// agent.metrics().record_counter("http.requests", 1.0, &[("route", "/")]);
/// agent.tracker().record_success("checkout", &[]);
/// assert!(agent.system_health().healthy);
/// let d = agent.create_dashboard_data(DashboardKind::Overview)?;
/// assert_eq!(d.panels[0].series[0].points[0].value, 1.0);
/// agent.shutdown_metrics()?;
/// agent.shutdown_metrics()?; // idempotent
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What goes where
///
/// The agent is a stack of `metrics-kit` layers: a fan-out over the
/// configured backends, under a tap whose observer feeds the streams, the
/// stream aggregations and the error-rate window.
///
/// - Every measurement recorded through [`metrics`](MetricsSystem::metrics)
///   or [`collector`](MetricsSystem::collector) (and timers, and the
///   resource poller's gauges) reaches each backend, each
///   [`metrics_stream`](metrics_protocol::app::AsyncMetricsSystem::metrics_stream)
///   subscriber whose filter matches, and each stream aggregation of its name.
/// - Successes and failures reach each backend and the window the health
///   report's error rate is computed over; stream subscribers see them as
///   counters `<operation>.success` and `<operation>.failure` (tagged
///   `error_type`).
/// - The results of the agent's aggregations are written below the tap,
///   into the same fan-out: they reach every backend and stream, never an
///   aggregation.
/// - Queries, exports and dashboards are answered by the memory backend;
///   with StatsD alone they are [`MetricsError::Unsupported`].
///
/// Cloning an `Agent` is cheap and shares the agent. When the last clone is
/// dropped without [`shutdown_metrics`](MetricsSystem::shutdown_metrics),
/// the agent shuts down then.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<AgentInner>,
}

struct AgentInner {
    rec: Recording,
    /// The exposition formats over the memory backend (none without it).
    exporter: Option<Exporter>,
    monitor: Option<Arc<dyn Polled>>,
    monitor_error: Option<String>,
    checks: HealthChecks,
    settings: Mutex<Settings>,
    ticker: Mutex<Option<Ticker>>,
    shut: AtomicBool,
    shutdown_lock: Mutex<()>,
    runtime: SystemRuntime,
}

struct Settings {
    config: AgentConfig,
}

/// The aggregation ticker's task. A tick runs under `stopped`'s lock, so
/// once shutdown has set it no tick runs beside the final flush.
struct Ticker {
    stopped: Arc<Mutex<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("backend", &self.inner.settings.lock().config.backend)
            .field("memory", &self.inner.rec.memory.is_some())
            .field("statsd", &self.inner.rec.statsd.is_some())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

impl Agent {
    /// Builds the agent `config` describes (validated first) and starts it:
    /// the backends, the resource poller (when `system_polling` is on)
    /// and the aggregation ticker.
    ///
    /// Errors: an [`AgentError::Config`] naming the field and the value;
    /// a StatsD address that does not resolve. A machine whose resources
    /// cannot be read is not an error: the resource monitor then answers
    /// every call with an error and health reports it.
    pub fn new(config: AgentConfig) -> Result<Agent, AgentError> {
        Agent::with_clock(config, Arc::new(SystemClock))
    }

    /// Loads the configuration the way the main program does (defaults,
    /// the file at `path` if any, then the process's `METRICS_*`
    /// environment variables) and builds the agent.
    pub fn from_env(path: Option<&Path>) -> Result<Agent, AgentError> {
        let config = AgentConfig::load(path, |k| std::env::var(k).ok())?;
        Agent::new(config)
    }

    /// As [`new`](Self::new), with the memory backend's windows, aggregation
    /// batches and the error rate on `clock` (a
    /// [`ManualClock`](metrics_memory::ManualClock) in tests).
    ///
    /// Background work (the aggregation ticker, resource polls, health
    /// checks, exports) runs as tasks on the tokio runtime this is called
    /// from when it is multi-threaded, else on a runtime of one worker
    /// thread that the agent starts and stops with itself; see
    /// [`Builder::runtime`](crate::Builder::runtime) to name one.
    pub fn with_clock(config: AgentConfig, clock: Arc<dyn Clock>) -> Result<Agent, AgentError> {
        Agent::assemble(config, clock, None)
    }

    /// [`with_clock`](Self::with_clock), on `runtime` when given.
    pub(crate) fn assemble(
        config: AgentConfig,
        clock: Arc<dyn Clock>,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<Agent, AgentError> {
        config.validate()?;
        // The agent neither serves nor keeps history: the builder starts
        // those parts, so a setting for them is never silently dropped.
        for (field, v) in [("listen", &config.listen), ("store", &config.store)] {
            if let Some(v) = v.as_deref().filter(|v| !crate::config::is_off(v)) {
                return Err(AgentError::config(
                    field,
                    v,
                    "the agent alone neither serves nor keeps history: start it with Agent::builder()",
                ));
            }
        }
        let memory = if config.backend.memory() {
            Some(Arc::new(crate::config::memory_backend(
                config.memory_config()?,
                clock.clone(),
            )?))
        } else {
            None
        };
        let exporter = match &memory {
            Some(m) => Some(
                Exporter::with_config(m.clone(), config.exposition.clone())
                    .map_err(|e| AgentError::config(e.field, e.value, e.reason))?,
            ),
            None => None,
        };
        let statsd = if config.backend.statsd() {
            Some(Arc::new(crate::config::statsd_backend(
                config.statsd.clone(),
            )?))
        } else {
            None
        };
        let rec = Recording::new(
            memory,
            statsd,
            StreamHub::new(config.stream_buffer),
            ErrorRateWindow::new(config.health.error_rate_window(), clock.clone()),
            clock,
        );
        let runtime = SystemRuntime::pick(runtime)?;
        let (monitor, monitor_error) = start_monitor(&rec, runtime.handle());
        let agent = Agent {
            inner: Arc::new(AgentInner {
                rec,
                exporter,
                monitor,
                monitor_error,
                checks: HealthChecks::new(config.health.check_timeout(), runtime.handle().clone()),
                settings: Mutex::new(Settings { config }),
                ticker: Mutex::new(None),
                shut: AtomicBool::new(false),
                shutdown_lock: Mutex::new(()),
                runtime,
            }),
        };
        let configured = agent.inner.settings.lock().config.aggregations.clone();
        for (i, a) in configured.iter().enumerate() {
            let spec = a.spec(&format!("aggregations[{i}]"))?;
            match a.target {
                AggregationTarget::System => agent.aggregate(spec)?,
                AggregationTarget::Stream => agent
                    .aggregate_into(spec, AggregateSink::Stream(agent.inner.rec.hub.clone()))?,
            };
        }
        agent.start_ticker()?;
        agent.apply_polling()?;
        Ok(agent)
    }

    fn start_ticker(&self) -> Result<(), AgentError> {
        let set = Arc::downgrade(&self.inner.rec.aggregations);
        let stopped = Arc::new(Mutex::new(false));
        let task = self
            .inner
            .runtime
            .handle()
            .spawn(tick_loop(set, stopped.clone()));
        *self.inner.ticker.lock() = Some(Ticker { stopped, task });
        Ok(())
    }

    /// The tokio runtime the agent's background work runs on (the
    /// application's, or the one the agent started): where the builder
    /// starts the HTTP service and the history writer.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.inner.runtime.handle()
    }

    /// Whether the agent started its runtime itself (no multi-threaded
    /// runtime was current and none was given).
    pub fn owns_runtime(&self) -> bool {
        self.inner.runtime.is_owned()
    }

    /// Starts (or restarts, at the configured interval) the resource
    /// poller when polling is on.
    fn apply_polling(&self) -> Result<(), MetricsError> {
        let (on, interval) = {
            let s = self.inner.settings.lock();
            (
                s.config.system_polling,
                s.config.collection_interval_duration(),
            )
        };
        let Some(m) = &self.inner.monitor else {
            return Ok(());
        };
        m.stop_resource_monitoring();
        if on {
            m.start_resource_monitoring(interval)?;
        }
        Ok(())
    }

    /// The configuration in use (after [`initialize_metrics`](MetricsSystem::initialize_metrics)
    /// changes, if any).
    pub fn config(&self) -> AgentConfig {
        self.inner.settings.lock().config.clone()
    }

    /// Installs a `metrics` crate recorder over this agent's
    /// [`collector`](MetricsSystem::collector) for the whole process, so
    /// every `metrics::counter!`, `gauge!`, `histogram!` and `describe_*!`
    /// (yours and your dependencies') records here, beside the values
    /// recorded through the protocol. Returns the recorder for its
    /// [`stats`](metrics_bridge::Recorder::stats).
    ///
    /// The `metrics` crate allows one global recorder per process, for its
    /// lifetime: a second call (or another recorder installed before) is
    /// [`InstallError::AlreadyInstalled`](metrics_bridge::InstallError). For
    /// a scoped recorder (tests), use
    /// `metrics_bridge::Recorder::new(agent.collector()).in_scope(..)`.
    #[cfg(feature = "bridge")]
    pub fn install_metrics_recorder(
        &self,
    ) -> Result<metrics_bridge::Recorder, metrics_bridge::InstallError> {
        metrics_bridge::install(self.collector())
    }

    /// The in-memory backend, when configured: for queries the protocol
    /// does not have (range queries, rollups, read-back helpers).
    pub fn memory(&self) -> Option<&Arc<MemoryMetrics>> {
        self.inner.rec.memory.as_ref()
    }

    /// The exposition formats (Prometheus text, OpenMetrics, JSON, CSV)
    /// over the in-memory backend, with the configured `[exposition]`
    /// buckets; `None` with StatsD alone, which keeps nothing to read.
    pub fn exporter(&self) -> Option<&Exporter> {
        self.inner.exporter.as_ref()
    }

    /// Everything the in-memory backend holds, in `format`
    /// ([`MetricsError::Unsupported`] with StatsD alone).
    pub fn export(&self, format: ExportFormat) -> Result<String, MetricsError> {
        match self.exporter() {
            Some(x) => x.export(format),
            None => Err(MetricsError::Unsupported {
                operation: "export",
                backend: "statsd",
            }),
        }
    }

    /// The StatsD backend, when configured.
    pub fn statsd(&self) -> Option<&Arc<StatsdMetrics>> {
        self.inner.rec.statsd.as_ref()
    }

    /// The hub behind [`metrics_stream`](metrics_protocol::app::AsyncMetricsSystem::metrics_stream).
    pub fn streams(&self) -> &StreamHub {
        &self.inner.rec.hub
    }

    /// Adds a health check, run on every [`system_health`](MetricsSystem::system_health).
    pub fn register_health_check(&self, check: Arc<dyn HealthCheck>) {
        self.inner.checks.register(check);
    }

    /// Aggregates every sample of `spec.metric` recorded into this agent
    /// in tumbling batches; results (`<metric>.<function>` gauges, tagged
    /// with the group's tags) are recorded back into this agent below its
    /// tap, so they reach every backend and stream, and no aggregation.
    pub fn aggregate(&self, spec: AggregationSpec) -> Result<Arc<StreamAggregator>, AgentError> {
        let sink: Arc<dyn MetricCollector> = self.inner.rec.results.clone();
        self.aggregate_into(spec, AggregateSink::Collector(sink))
    }

    /// Aggregates every sample of `spec.metric` recorded into this agent,
    /// sending results to `sink`: any collector, or a stream hub.
    pub fn aggregate_into(
        &self,
        spec: AggregationSpec,
        sink: AggregateSink,
    ) -> Result<Arc<StreamAggregator>, AgentError> {
        if self.is_shut_down() {
            return Err(shut_down_error("aggregate").into());
        }
        let agg = Arc::new(StreamAggregator::new(
            spec,
            sink,
            self.inner.rec.clock.clone(),
        )?);
        self.inner.rec.aggregations.add(agg.clone());
        Ok(agg)
    }

    /// Whether [`shutdown_metrics`](MetricsSystem::shutdown_metrics) ran.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut.load(Ordering::SeqCst)
    }

    fn agent_health(&self, (ok, failed): (u64, u64)) -> BackendHealth {
        let timers = &self.inner.rec.timers;
        let mut h = BackendHealth::healthy("agent");
        h.dropped = timers.drops().snapshot();
        h.details
            .insert("running_timers".into(), timers.running() as f64);
        h.details.insert("window_successes".into(), ok as f64);
        h.details.insert("window_failures".into(), failed as f64);
        if self.is_shut_down() {
            h.message = Some("shut down".into());
        }
        h
    }

    fn monitor_health(&self) -> BackendHealth {
        let mut h = BackendHealth::healthy("system");
        let wanted = self.inner.settings.lock().config.system_polling;
        match &self.inner.monitor {
            None => {
                h.status = if wanted {
                    HealthStatus::Degraded
                } else {
                    HealthStatus::Healthy
                };
                h.message = self.inner.monitor_error.clone();
            }
            Some(m) => {
                let s = m.poll_counts();
                let running = m.is_monitoring();
                // These detail names are part of the health report served
                // over HTTP, so they keep their first spelling ("sample"
                // for a poll).
                h.details
                    .insert("sampling".into(), f64::from(u8::from(running)));
                h.details.insert("samples".into(), s.polls as f64);
                h.details
                    .insert("sample_failures".into(), s.failures as f64);
                h.details.insert("sample_panics".into(), s.panics as f64);
                if wanted && !running && !self.is_shut_down() {
                    h.status = HealthStatus::Degraded;
                    h.message = Some("resource polling is configured but not running".into());
                } else if s.panics > 0 {
                    h.status = HealthStatus::Degraded;
                    h.message = Some(format!("{} resource polls panicked", s.panics));
                }
            }
        }
        h
    }

    /// The `error_rate` check of a report, from the window's counts.
    fn error_rate_check(&self, (ok, failed): (u64, u64)) -> (f64, HealthCheckResult) {
        let started = Instant::now();
        let health = self.inner.settings.lock().config.health.clone();
        let total = ok + failed;
        let rate = crate::health::error_rate(ok, failed);
        let status = if total == 0 || rate <= health.error_rate_degraded {
            HealthStatus::Healthy
        } else if rate <= health.error_rate_unhealthy {
            HealthStatus::Degraded
        } else {
            HealthStatus::Unhealthy
        };
        let message = (total > 0).then(|| {
            format!(
                "{failed} of {total} operations failed ({:.1}%) in the last {}s",
                rate * 100.0,
                health.error_rate_window_secs
            )
        });
        (
            rate,
            HealthCheckResult {
                name: "error_rate".into(),
                status,
                message,
                duration: started.elapsed(),
            },
        )
    }
}

/// What the agent needs of its resource monitor beyond the protocol's
/// trait: the poll counts health reports and one poll on demand.
pub(crate) trait Polled: ResourceMonitor {
    /// Polls run, polls with a failed reading, polls that panicked.
    fn poll_counts(&self) -> PollCounts;
    /// Publishes one poll now.
    fn publish_once(&self) -> Result<(), MetricsError>;
}

/// [`Polled::poll_counts`].
pub(crate) struct PollCounts {
    pub polls: u64,
    pub failures: u64,
    pub panics: u64,
}

#[cfg(feature = "system")]
impl Polled for metrics_system::SystemMonitor {
    fn poll_counts(&self) -> PollCounts {
        let s = self.poll_stats();
        PollCounts {
            polls: s.polls,
            failures: s.failures,
            panics: s.panics,
        }
    }
    fn publish_once(&self) -> Result<(), MetricsError> {
        metrics_system::SystemMonitor::publish_once(self)
    }
}

/// The resource monitor publishing into `rec`, polling on `runtime`, or
/// why there is none.
#[cfg(feature = "system")]
fn start_monitor(
    rec: &Recording,
    runtime: &tokio::runtime::Handle,
) -> (Option<Arc<dyn Polled>>, Option<String>) {
    match metrics_system::SystemMonitor::with_metrics(rec.metrics()) {
        Ok(m) => {
            m.poll_on(runtime.clone());
            (Some(Arc::new(m)), None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "system resources cannot be read here");
            (None, Some(e.to_string()))
        }
    }
}

/// Without the `system` feature there is no resource monitor; health says
/// so when polling is asked for.
#[cfg(not(feature = "system"))]
fn start_monitor(
    _: &Recording,
    _: &tokio::runtime::Handle,
) -> (Option<Arc<dyn Polled>>, Option<String>) {
    (
        None,
        Some("built without resource polling (the `system` feature of metrics-sdk)".into()),
    )
}
