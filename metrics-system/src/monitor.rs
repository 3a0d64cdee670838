//! [`SystemMonitor`]: the [`ResourceMonitor`] of this crate, and its snapshot.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use metrics_protocol::app::{
    CpuUsage, DiskUsage, MemoryUsage, NetworkStats, ProcessUsage, ResourceMonitor,
};
use metrics_protocol::{MetricCollector, Metrics, MetricsError, NoopMetrics};
use parking_lot::Mutex;
use serde::Serialize;

use crate::poller::{PollStats, Poller, StatCounters};
use crate::publish;
use crate::readings::Readings;

/// The shortest polling interval [`ResourceMonitor::start_resource_monitoring`]
/// accepts: 200 ms, sysinfo's minimum CPU update interval on Linux (a CPU
/// utilisation over a shorter span is mostly noise).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Every reading at one moment; the JSON the `snapshot` example prints.
///
/// Sizes in bytes, percentages 0 to 100 (see the crate docs for each
/// definition).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemSnapshot {
    /// Memory and swap.
    pub memory: MemoryUsage,
    /// CPU utilisation, core counts, load average.
    pub cpu: CpuUsage,
    /// The file system holding `/` (`None` where it cannot be read).
    pub disk: Option<DiskUsage>,
    /// Every mounted disk (pseudo and network file systems left out).
    pub disks: Vec<DiskUsage>,
    /// Network totals and each interface.
    pub network: NetworkStats,
    /// This process.
    pub process: ProcessUsage,
}

/// State shared by the monitor and its poller thread.
pub(crate) struct Shared {
    readings: Mutex<Readings>,
    /// The network totals of the previous poll (under the readings lock).
    network: Mutex<publish::NetworkCounters>,
    metrics: Metrics,
    pub(crate) stats: StatCounters,
}

impl Shared {
    /// Reads everything and publishes what could be read; returns the first
    /// error, if any reading failed.
    pub(crate) fn publish_once(&self) -> Result<(), MetricsError> {
        let c = &self.metrics;
        let mut first_err = None;
        let mut r = self.readings.lock();
        publish::memory(c, &r.memory());
        let mut cores = 0;
        match r.cpu() {
            Ok(cpu) => {
                cores = cpu.logical_cores;
                publish::cpu(c, &cpu);
            }
            Err(e) => first_err = first_err.or(Some(e)),
        }
        publish::disks(c, &r.all_disks());
        self.network.lock().publish(c, &r.network());
        let pid = r.self_pid();
        match r.process(pid) {
            Ok(p) => publish::process(c, &p, cores),
            Err(e) => first_err = first_err.or(Some(e)),
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Reads memory, CPU, disks, network and this process with sysinfo, and
/// polls them on a background thread, publishing the readings into a
/// [`MetricCollector`].
///
/// See the [crate docs](crate) for what each call refreshes, the first-call
/// behaviour of CPU utilisation, and the published names. Calls are
/// serialised by one internal lock; the monitor is `Send + Sync`, so share it
/// in an `Arc`.
pub struct SystemMonitor {
    shared: Arc<Shared>,
    poller: Mutex<Option<Poller>>,
    #[cfg(feature = "tokio")]
    runtime: Mutex<Option<tokio::runtime::Handle>>,
}

impl std::fmt::Debug for SystemMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemMonitor")
            .field("monitoring", &self.is_monitoring())
            .field("stats", &self.poll_stats())
            .finish_non_exhaustive()
    }
}

impl SystemMonitor {
    /// A monitor that publishes nowhere ([`NoopMetrics`]): for its readings
    /// only. Takes the CPU baselines (a few hundred microseconds).
    pub fn new() -> Result<SystemMonitor, MetricsError> {
        SystemMonitor::with_collector(Arc::new(NoopMetrics))
    }

    /// A monitor whose poller (and [`publish_once`](Self::publish_once))
    /// publishes into `collector`. Takes the CPU baselines.
    pub fn with_collector(
        collector: Arc<dyn MetricCollector>,
    ) -> Result<SystemMonitor, MetricsError> {
        SystemMonitor::with_metrics(Metrics::from_dyn(collector))
    }

    /// A monitor whose poller (and [`publish_once`](Self::publish_once))
    /// publishes through `metrics`, the handle an application already holds.
    /// Takes the CPU baselines.
    pub fn with_metrics(metrics: Metrics) -> Result<SystemMonitor, MetricsError> {
        publish::describe(&metrics);
        Ok(SystemMonitor {
            shared: Arc::new(Shared {
                readings: Mutex::new(Readings::new()?),
                network: Mutex::new(publish::NetworkCounters::default()),
                metrics,
                stats: StatCounters::default(),
            }),
            poller: Mutex::new(None),
            #[cfg(feature = "tokio")]
            runtime: Mutex::new(None),
        })
    }

    /// Polls as a task on `runtime` (each poll on its blocking pool)
    /// instead of on a thread of the monitor's own, from the next
    /// [`start_resource_monitoring`](ResourceMonitor::start_resource_monitoring)
    /// on: for an application (or a composed system) that runs one tokio
    /// runtime for all its background work. A poller already running
    /// keeps running where it is.
    #[cfg(feature = "tokio")]
    pub fn poll_on(&self, runtime: tokio::runtime::Handle) {
        *self.runtime.lock() = Some(runtime);
    }

    /// Reads everything once and publishes it (gauges, and the network
    /// counters) into the collector, on the caller's thread: what the
    /// poller does every interval.
    ///
    /// A reading that fails (an OS without CPU statistics, ...) is left out
    /// and the rest is still published; the first such error is returned.
    pub fn publish_once(&self) -> Result<(), MetricsError> {
        self.shared.publish_once()
    }

    /// Every reading, under one lock: memory, CPU, the file system holding
    /// `/`, every disk, network, and this process.
    pub fn snapshot(&self) -> Result<SystemSnapshot, MetricsError> {
        let mut r = self.shared.readings.lock();
        let pid = r.self_pid();
        Ok(SystemSnapshot {
            memory: r.memory(),
            cpu: r.cpu()?,
            disk: r
                .disk(Path::new("/"))
                .inspect_err(|err| tracing::debug!(%err, "no usage for `/`"))
                .ok(),
            disks: r.all_disks(),
            network: r.network(),
            process: r.process(pid)?,
        })
    }

    /// Usage of any process by id. Its `cpu_percent` is `None` on the first
    /// reading of that process, then covers the time since the previous
    /// reading. A process that does not exist is [`MetricsError::NotFound`].
    pub fn process_usage_of(&self, pid: u32) -> Result<ProcessUsage, MetricsError> {
        self.shared.readings.lock().process(pid)
    }

    /// Owners of the shared state: the monitor, plus one per poller thread.
    #[cfg(test)]
    pub(crate) fn shared_owners(&self) -> usize {
        Arc::strong_count(&self.shared)
    }

    /// What the poller did so far (polls, failures, caught panics).
    pub fn poll_stats(&self) -> PollStats {
        self.shared.stats.get()
    }
}

impl ResourceMonitor for SystemMonitor {
    /// Refreshes RAM and swap only.
    fn memory_usage(&self) -> Result<MemoryUsage, MetricsError> {
        Ok(self.shared.readings.lock().memory())
    }

    /// Refreshes the CPU times only. See the crate docs: the first call
    /// within 200 ms of construction waits the rest; a later call within
    /// 200 ms of the previous one returns the previous utilisation.
    fn cpu_usage(&self) -> Result<CpuUsage, MetricsError> {
        self.shared.readings.lock().cpu()
    }

    /// `statvfs` of the canonical path, and the mount table to name its file
    /// system. A path that does not exist is [`MetricsError::NotFound`].
    fn disk_usage(&self, path: &Path) -> Result<DiskUsage, MetricsError> {
        self.shared.readings.lock().disk(path)
    }

    /// Re-reads the list of mounts, then the space of each.
    fn all_disk_usage(&self) -> Result<Vec<DiskUsage>, MetricsError> {
        Ok(self.shared.readings.lock().all_disks())
    }

    /// Re-reads the interfaces and their counters.
    fn network_stats(&self) -> Result<NetworkStats, MetricsError> {
        Ok(self.shared.readings.lock().network())
    }

    /// Refreshes this one process, not the process table.
    fn process_usage(&self) -> Result<ProcessUsage, MetricsError> {
        let mut r = self.shared.readings.lock();
        let pid = r.self_pid();
        r.process(pid)
    }

    /// Below [`MIN_INTERVAL`] is [`MetricsError::InvalidArgument`]. When a
    /// poller already runs, this does nothing (the running interval stays).
    fn start_resource_monitoring(&self, interval: Duration) -> Result<(), MetricsError> {
        if interval < MIN_INTERVAL {
            return Err(MetricsError::InvalidArgument(format!(
                "resource polling interval {interval:?} is below the minimum of {MIN_INTERVAL:?}"
            )));
        }
        let mut slot = self.poller.lock();
        if let Some(running) = slot.as_ref() {
            if running.is_running() {
                tracing::debug!("resource poller already running; start ignored");
                return Ok(());
            }
            if let Some(dead) = slot.take() {
                dead.stop();
            }
        }
        #[cfg(feature = "tokio")]
        if let Some(runtime) = self.runtime.lock().as_ref() {
            *slot = Some(Poller::spawn_on(
                runtime,
                Arc::clone(&self.shared),
                interval,
            ));
            return Ok(());
        }
        *slot = Some(Poller::spawn(Arc::clone(&self.shared), interval)?);
        Ok(())
    }

    /// Wakes the poller at once (it does not finish its sleep) and joins it.
    fn stop_resource_monitoring(&self) {
        let poller = self.poller.lock().take();
        if let Some(s) = poller {
            s.stop();
        }
    }

    fn is_monitoring(&self) -> bool {
        self.poller.lock().as_ref().is_some_and(Poller::is_running)
    }
}

impl Drop for SystemMonitor {
    /// Stops and joins the poller.
    fn drop(&mut self) {
        self.stop_resource_monitoring();
    }
}
