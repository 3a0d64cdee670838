//! The one tokio runtime the composed system's background work runs on:
//! the aggregation ticker, the resource poller, health checks, exports,
//! the HTTP service and the history writer are tasks (blocking work on its
//! blocking pool), never threads of their own.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::error::AgentError;

/// How long an idle thread of an owned runtime's blocking pool lingers.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

/// The most threads an owned runtime's blocking pool starts: health checks,
/// exports and resource polls, plus the HTTP service's query and scrape
/// lanes when it runs here.
const MAX_BLOCKING: usize = 64;

/// Where the system's tasks run: the application's multi-threaded runtime,
/// or one the system started (one worker) and shuts down with it.
#[derive(Clone)]
pub(crate) struct SystemRuntime {
    handle: Handle,
    owned: Option<Arc<Owned>>,
}

/// A runtime the system started, dropped without waiting (so that the
/// last owner may go away anywhere, even on one of its own threads).
struct Owned(Mutex<Option<Runtime>>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(rt) = self.0.lock().take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for SystemRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemRuntime")
            .field("owned", &self.owned.is_some())
            .finish()
    }
}

impl SystemRuntime {
    /// `handle` if given; else the runtime this is called from, when it is
    /// multi-threaded (a current-thread runtime runs tasks only while its
    /// one thread awaits, which a recording application cannot promise);
    /// else a new runtime of one worker thread named `metrics-runtime`.
    pub(crate) fn pick(handle: Option<Handle>) -> Result<SystemRuntime, AgentError> {
        let current = handle.or_else(|| {
            Handle::try_current()
                .ok()
                .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
        });
        if let Some(handle) = current {
            return Ok(SystemRuntime {
                handle,
                owned: None,
            });
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(MAX_BLOCKING)
            .thread_keep_alive(BLOCKING_KEEP_ALIVE)
            .thread_name("metrics-runtime")
            .enable_all()
            .build()
            .map_err(|e| AgentError::io("starting the metrics runtime", e))?;
        Ok(SystemRuntime {
            handle: rt.handle().clone(),
            owned: Some(Arc::new(Owned(Mutex::new(Some(rt))))),
        })
    }

    /// The runtime's handle.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the system started this runtime itself.
    pub(crate) fn is_owned(&self) -> bool {
        self.owned.is_some()
    }
}
