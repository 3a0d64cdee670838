//! Typed readings of system resources, returned by [`crate::ResourceMonitor`].
//!
//! Sizes are in bytes, percentages run from 0 to 100. (Gauges that backends
//! publish under OpenTelemetry's `*.utilization` names are 0–1 ratios
//! instead, as those conventions define them.)

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Memory and swap of the machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Installed memory.
    pub total_bytes: u64,
    /// In use: `total - available` (the definition psutil and sysinfo share).
    pub used_bytes: u64,
    /// Can be given to a new process without swapping (includes reclaimable cache).
    pub available_bytes: u64,
    /// Not used for anything, not even cache.
    pub free_bytes: u64,
    /// `used / total * 100`.
    pub percent: f64,
    /// Swap space.
    pub swap_total_bytes: u64,
    /// Swap in use.
    pub swap_used_bytes: u64,
}

/// System load averages over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadAverage {
    /// Last minute.
    pub one: f64,
    /// Last 5 minutes.
    pub five: f64,
    /// Last 15 minutes.
    pub fifteen: f64,
}

/// CPU utilisation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Utilisation of all cores together, 0 to 100.
    pub percent: f64,
    /// Utilisation of each logical core, 0 to 100.
    pub per_core_percent: Vec<f64>,
    /// Logical cores (hardware threads).
    pub logical_cores: usize,
    /// Physical cores, where the OS tells.
    pub physical_cores: Option<usize>,
    /// Load averages, where the OS has them.
    pub load_average: Option<LoadAverage>,
}

/// Usage of the file system holding a path, or of one mounted disk.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Mount point of the file system.
    pub mount_point: String,
    /// Device or source name, where known.
    pub device: Option<String>,
    /// File system type (`ext4`, ...), where known.
    pub file_system: Option<String>,
    /// Size of the file system.
    pub total_bytes: u64,
    /// Blocks in use, as `df` and psutil count them: the blocks reserved for
    /// root are neither used nor free, so `used + free` may be less than
    /// `total`.
    pub used_bytes: u64,
    /// Available to unprivileged users.
    pub free_bytes: u64,
    /// `used / (used + free) * 100`, as `df` and psutil compute it.
    pub percent: f64,
}

/// Traffic counters of one network interface, totals since boot.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InterfaceStats {
    /// Interface name (`eth0`, `lo`, ...).
    pub name: String,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Errors while sending.
    pub errors_out: u64,
    /// Errors while receiving.
    pub errors_in: u64,
}

/// Network traffic: totals over every interface, and each interface.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkStats {
    /// Bytes sent, all interfaces.
    pub bytes_sent: u64,
    /// Bytes received, all interfaces.
    pub bytes_received: u64,
    /// Packets sent, all interfaces.
    pub packets_sent: u64,
    /// Packets received, all interfaces.
    pub packets_received: u64,
    /// Send errors, all interfaces.
    pub errors_out: u64,
    /// Receive errors, all interfaces.
    pub errors_in: u64,
    /// Each interface.
    pub interfaces: Vec<InterfaceStats>,
}

/// Resource usage of one process (by default, this one).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// Process id.
    pub pid: u32,
    /// Resident set size.
    pub rss_bytes: u64,
    /// Virtual memory size.
    pub virtual_bytes: u64,
    /// CPU utilisation since the previous reading, 100 = one full core;
    /// `None` until two readings far enough apart exist.
    pub cpu_percent: Option<f64>,
    /// Number of threads, where the OS tells.
    pub threads: Option<u64>,
    /// Time since the process started (serialised as seconds).
    #[serde(with = "duration_secs")]
    pub uptime: Duration,
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
