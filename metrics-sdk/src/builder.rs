//! Starting the composed system with the parts an application asks for:
//! [`Agent::builder`] gives a [`Builder`]; [`Builder::start`] gives a
//! [`Running`] system, with the HTTP service and the history store wired as
//! the main program wires them (range queries and history behind every API
//! path and the page).

#[cfg(feature = "http")]
use std::net::SocketAddr;
use std::sync::Arc;

use metrics_protocol::Metrics;
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
use metrics_store::{HistoryWriter, StoreUrl, WriterConfig, WriterStatus};

use crate::agent::Agent;
use crate::config::AgentConfig;
use crate::error::AgentError;

/// What [`Agent::builder`] returns: the configuration, then the parts to
/// start beside the agent. Every field of the configuration is honoured:
/// `listen` and `store` start the HTTP service and the history store (a
/// call to [`serve`](Self::serve) or [`store`](Self::store) takes
/// precedence), and a build without the feature a field needs refuses it
/// by name.
///
/// ```
/// # #[cfg(feature = "http")] {
/// use metrics_sdk::{Agent, AgentConfig};
///
/// let mut running = Agent::builder()
///     .config(AgentConfig::default())
///     .serve("127.0.0.1:0".parse().unwrap()) // any free port
///     .start()
///     .unwrap();
/// running.metrics().increment("jobs.done", &[("queue", "email")]);
/// let addr = running.http_addr().unwrap();
/// assert!(addr.ip().is_loopback());
/// running.shutdown().unwrap();
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until start() is called"]
pub struct Builder {
    config: AgentConfig,
    runtime: Option<tokio::runtime::Handle>,
    #[cfg(feature = "http")]
    serve: Option<SocketAddr>,
    #[cfg(feature = "http")]
    http: metrics_http::HttpConfig,
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    store: Option<StoreSetting>,
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    instance: Option<String>,
}

impl Agent {
    /// A [`Builder`] with the default configuration.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Builder {
    /// The configuration (defaults, a file, the environment: see
    /// [`AgentConfig::load`]).
    pub fn config(mut self, config: AgentConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs every background task (the HTTP service, the history writer,
    /// the resource poller, health checks, exports, the aggregation
    /// ticker) on `runtime`. Without it: on the multi-threaded runtime
    /// [`start`](Self::start) is called from, else on one runtime of a
    /// single worker thread that the system starts and stops with itself.
    /// Recording never waits on any of them.
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Serves `/metrics`, the JSON API and the page on `addr` (instead of
    /// the configuration's `listen`).
    #[cfg(feature = "http")]
    pub fn serve(mut self, addr: SocketAddr) -> Self {
        self.serve = Some(addr);
        self
    }

    /// The HTTP service's limits and token (default: [`HttpConfig::default`](metrics_http::HttpConfig)).
    #[cfg(feature = "http")]
    pub fn http_config(mut self, config: metrics_http::HttpConfig) -> Self {
        self.http = config;
        self
    }

    /// Keeps history in the store at `url` (`sqlite://PATH`, a path,
    /// `postgres://...`, or `off`) instead of the configuration's `store`.
    /// A URL that does not parse is an error of [`start`](Self::start)
    /// naming `store`.
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.store = Some(StoreSetting::Text(url.into()));
        self
    }

    /// [`store`](Self::store) with a URL already parsed.
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    pub fn store_url(mut self, url: StoreUrl) -> Self {
        self.store = Some(StoreSetting::Url(url));
        self
    }

    /// This instance's name in the rows it writes to a shared store
    /// (default: `METRICS_INSTANCE`, else the host name).
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// Starts the agent, then the history writer (with the memory
    /// backend), then the HTTP service. If a part cannot start, what was
    /// started is shut down and the error names the field or call at
    /// fault (an address in use is an error naming `listen`).
    pub fn start(self) -> Result<Running, AgentError> {
        let mut config = self.config;
        // Every field, `store` in a build without the feature included,
        // before any is taken out below.
        config.validate()?;
        #[cfg(feature = "http")]
        let listen = match self.serve {
            Some(addr) => Some(addr),
            None => match config.listen.as_deref() {
                Some(v) => crate::config::listen_addr("listen", v)?,
                None => None,
            },
        };
        #[cfg(not(feature = "http"))]
        if let Some(v) = config
            .listen
            .as_deref()
            .filter(|v| !crate::config::is_off(v))
        {
            return Err(AgentError::config(
                "listen",
                v,
                "this build has no HTTP service (the `http` feature of metrics-sdk)",
            ));
        }
        #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
        let store = match (self.store, config.store.as_deref()) {
            (Some(StoreSetting::Url(url)), _) => url,
            (Some(StoreSetting::Text(v)), _) => crate::config::store_url("store", &v)?,
            (None, Some(v)) => crate::config::store_url("store", v)?,
            (None, None) => StoreUrl::Off,
        };
        // Honoured here: the agent itself neither serves nor stores.
        config.listen = None;
        config.store = None;
        let agent = Agent::assemble(config, Arc::new(metrics_memory::SystemClock), self.runtime)?;
        #[cfg_attr(
            not(any(
                feature = "http",
                feature = "remote-write",
                any(feature = "store-sqlite", feature = "store-postgres")
            )),
            allow(unused_mut)
        )]
        let mut running = Running {
            agent,
            #[cfg(feature = "http")]
            server: None,
            #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
            history: None,
            #[cfg(feature = "remote-write")]
            remote_write: None,
        };
        #[cfg(feature = "remote-write")]
        if let Err(e) = running.start_remote_write() {
            let _ = running.shutdown();
            return Err(e);
        }
        #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
        if store != StoreUrl::Off {
            let instance = self.instance.unwrap_or_else(default_instance);
            if let Err(e) = running.start_history(store, instance) {
                let _ = running.shutdown();
                return Err(e);
            }
        }
        #[cfg(feature = "http")]
        if let Some(addr) = listen
            && let Err(e) = running.serve(addr, self.http)
        {
            let _ = running.shutdown();
            return Err(e);
        }
        Ok(running)
    }
}

/// A store asked for by [`Builder::store`] or [`Builder::store_url`].
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
#[derive(Debug)]
enum StoreSetting {
    Text(String),
    Url(StoreUrl),
}

/// A system started by [`Builder::start`]: the [`Agent`], and the HTTP
/// service and history writer asked for. [`shutdown`](Self::shutdown)
/// (or dropping it) stops them in order: the agent first (partial batches
/// land, StatsD is flushed), then the HTTP service, then the history
/// writer, which writes everything recorded, the open bin included.
#[derive(Debug)]
pub struct Running {
    agent: Agent,
    #[cfg(feature = "http")]
    server: Option<metrics_http::Server>,
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    history: Option<Arc<HistoryWriter>>,
    #[cfg(feature = "remote-write")]
    remote_write: Option<Arc<metrics_push::RemoteWriter>>,
}

impl Running {
    /// The agent (cheap to clone): queries, health, streams, aggregations.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The handle to record with.
    pub fn metrics(&self) -> Metrics {
        metrics_protocol::app::MetricsSystem::metrics(&self.agent)
    }

    /// Starts the HTTP service on `addr` (when the builder did not): what
    /// the main program does after start-up, to go on without HTTP when
    /// its default port is taken. An address that cannot be bound is an
    /// error naming `listen`; a second call replaces nothing (error).
    #[cfg(feature = "http")]
    pub fn serve(
        &mut self,
        addr: SocketAddr,
        config: metrics_http::HttpConfig,
    ) -> Result<SocketAddr, AgentError> {
        if let Some(s) = &self.server {
            return Err(AgentError::config(
                "listen",
                addr.to_string(),
                format!("already serving on {}", s.local_addr()),
            ));
        }
        let server =
            metrics_http::Server::start_on(self.agent.runtime(), addr, self.http_source(), config)
                .map_err(|e| AgentError::config("listen", addr.to_string(), e.to_string()))?;
        let local = server.local_addr();
        self.server = Some(server);
        Ok(local)
    }

    /// Where the HTTP service listens, if it runs.
    #[cfg(feature = "http")]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(metrics_http::Server::local_addr)
    }

    /// The system as the HTTP service serves it, range queries and history
    /// wired: for [`metrics_http::router`] in an application's own axum
    /// app, beside its routes.
    #[cfg(feature = "http")]
    pub fn http_source(&self) -> metrics_http::Source {
        let mut source = metrics_http::Source::from_system(Arc::new(self.agent.clone()));
        if let Some(exporter) = self.agent.exporter() {
            source = source.with_exporter(exporter.clone());
        }
        let Some(memory) = self.agent.memory() else {
            return source;
        };
        #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
        if let Some(writer) = &self.history {
            let ranges = crate::history::HistoryRanges::new(memory.clone(), writer.clone())
                .with_store_timeout(self.agent.config().store_query_timeout());
            return source.with_ranges(Arc::new(ranges));
        }
        source.with_ranges(memory.clone())
    }

    /// The history writer's state (written, pending, dropped, the last
    /// error), when a store is kept.
    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    pub fn history_status(&self) -> Option<WriterStatus> {
        self.history.as_ref().map(|w| w.status())
    }

    #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
    fn start_history(&mut self, url: StoreUrl, instance: String) -> Result<(), AgentError> {
        let Some(memory) = self.agent.memory() else {
            return Err(AgentError::config(
                "store",
                url.to_string(),
                "history is kept from the memory backend: choose backend memory or both",
            ));
        };
        let shown = url.to_string();
        let mut config = WriterConfig::new(url, instance);
        config.rings = self.agent.config().store_rings()?;
        let writer = HistoryWriter::start(memory.clone(), config, self.agent.runtime().clone())
            .map_err(|e| AgentError::config("store", shown, e.to_string()))?;
        let writer = Arc::new(writer);
        let w = writer.clone();
        self.agent
            .register_health_check(Arc::new(crate::health::FnCheck::new("store", move || {
                crate::history::store_health(&w.status())
            })));
        self.history = Some(writer);
        Ok(())
    }

    /// The remote write pusher's state (queue depth, sent, failed
    /// attempts, dropped samples), when `remote_write.url` is set.
    #[cfg(feature = "remote-write")]
    pub fn remote_write_status(&self) -> Option<metrics_push::PushStatus> {
        self.remote_write.as_ref().map(|w| w.status())
    }

    /// Starts pushing to `remote_write.url`, if set: the memory backend's
    /// series, named as `/metrics` names them, stamped on its recording
    /// timeline; a `remote_write` health check reports on it.
    #[cfg(feature = "remote-write")]
    fn start_remote_write(&mut self) -> Result<(), AgentError> {
        let settings = &self.agent.config().remote_write;
        let Some(url) = settings.enabled_url() else {
            return Ok(());
        };
        let Some(memory) = self.agent.memory() else {
            return Err(AgentError::config(
                "remote_write.url",
                url,
                "pushes read the memory backend: choose backend memory or both",
            ));
        };
        let clock_source = memory.clone();
        let writer = metrics_push::RemoteWriter::with_clock(
            memory.clone(),
            self.agent.config().exposition.clone(),
            settings.push_config(url),
            self.agent.runtime().clone(),
            Arc::new(move || clock_source.clock_ms()),
        )
        .map_err(|e| AgentError::config(format!("remote_write.{}", e.field), e.value, e.reason))?;
        let writer = Arc::new(writer);
        let w = writer.clone();
        self.agent
            .register_health_check(Arc::new(crate::health::FnCheck::new(
                "remote_write",
                move || remote_write_health(&w.status()),
            )));
        self.remote_write = Some(writer);
        Ok(())
    }

    /// Stops everything, in order (see [`Running`]); the first error is
    /// returned, every step runs anyway, and a second call does nothing.
    /// The agent still answers queries from memory afterwards, and
    /// [`history_status`](Self::history_status) tells what reached the
    /// store.
    pub fn shutdown(&mut self) -> Result<(), AgentError> {
        let agent = metrics_protocol::app::MetricsSystem::shutdown_metrics(&self.agent)
            .map_err(AgentError::from);
        #[cfg(feature = "http")]
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        // One last push of everything recorded.
        #[cfg(feature = "remote-write")]
        if let Some(w) = &self.remote_write {
            w.shutdown();
        }
        #[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
        if let Some(w) = &self.history {
            w.shutdown();
        }
        agent
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "metrics shutdown on drop failed");
        }
    }
}

/// The `remote_write` health check: unhealthy while pushes fail, degraded
/// once samples were dropped; its message always has the numbers (queue
/// depth, sent, failed attempts, dropped samples).
#[cfg(feature = "remote-write")]
pub fn remote_write_health(s: &metrics_push::PushStatus) -> crate::health::CheckOutcome {
    use crate::health::CheckOutcome;
    let numbers = format!(
        "{} queued ({} samples), {} sent ({} samples), {} failed attempts, {} samples dropped",
        s.queued, s.queued_samples, s.sent, s.sent_samples, s.failed_attempts, s.dropped_samples
    );
    if !s.healthy() {
        CheckOutcome::unhealthy(format!(
            "remote write to {}: {} ({} failures in a row); {numbers}",
            s.url,
            s.last_error.as_deref().unwrap_or("failing"),
            s.consecutive_failures,
        ))
    } else if s.dropped_samples > 0 {
        CheckOutcome::degraded(format!(
            "remote write to {}: samples dropped; {numbers}",
            s.url
        ))
    } else {
        CheckOutcome {
            status: metrics_protocol::backend::HealthStatus::Healthy,
            message: Some(format!("remote write to {}: {numbers}", s.url)),
        }
    }
}

/// `METRICS_INSTANCE`, else the host name, else `local`.
#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
pub(crate) fn default_instance() -> String {
    std::env::var("METRICS_INSTANCE")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".into())
}
