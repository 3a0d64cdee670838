//! [`ResourceMonitor`]: readings of memory, CPU, disks, network and this process.

use std::path::Path;
use std::time::Duration;

use crate::app::{CpuUsage, DiskUsage, MemoryUsage, NetworkStats, ProcessUsage};
use crate::error::MetricsError;

/// Reads host resources, and polls them periodically into a collector.
///
/// ```
/// use metrics_protocol::NoopMetrics;
/// use metrics_protocol::app::ResourceMonitor;
///
/// fn report(monitor: &dyn ResourceMonitor) -> String {
///     match monitor.memory_usage() {
///         Ok(m) => format!("{} of {} bytes used", m.used_bytes, m.total_bytes),
///         Err(e) => format!("memory unknown: {e}"),
///     }
/// }
/// assert!(report(&NoopMetrics).starts_with("memory unknown"));
/// ```
///
/// # For implementors
///
/// Refresh only what a call needs. CPU percentages need two readings some
/// time apart: never report a meaningless first value, and document what
/// the first call does.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait ResourceMonitor: Send + Sync {
    /// Memory and swap.
    fn memory_usage(&self) -> Result<MemoryUsage, MetricsError>;

    /// CPU utilisation, core counts and load average.
    fn cpu_usage(&self) -> Result<CpuUsage, MetricsError>;

    /// Usage of the file system holding `path`. A path that does not exist
    /// is [`MetricsError::NotFound`] naming the path.
    fn disk_usage(&self, path: &Path) -> Result<DiskUsage, MetricsError>;

    /// Usage of every mounted disk.
    fn all_disk_usage(&self) -> Result<Vec<DiskUsage>, MetricsError>;

    /// Network traffic, in total and per interface.
    fn network_stats(&self) -> Result<NetworkStats, MetricsError>;

    /// Resource usage of this process.
    fn process_usage(&self) -> Result<ProcessUsage, MetricsError>;

    /// Starts one background poller that publishes readings as gauges every
    /// `interval`. Starting an already running monitor does nothing; an
    /// interval below the backend's minimum is [`MetricsError::InvalidArgument`].
    fn start_resource_monitoring(&self, interval: Duration) -> Result<(), MetricsError>;

    /// Stops the poller and waits for it (within one interval). Does
    /// nothing when it is not running.
    fn stop_resource_monitoring(&self);

    /// Whether the poller is running.
    fn is_monitoring(&self) -> bool;
}
