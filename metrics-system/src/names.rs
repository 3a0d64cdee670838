//! Names, units and tags of the published gauges and counters.
//!
//! Names follow the OpenTelemetry semantic conventions for system and process
//! metrics (and the OpenTelemetry Collector's `hostmetrics` receiver where the
//! conventions name nothing), so dashboards built for those names work.
//!
//! Units: sizes in bytes, counts as plain numbers, durations in seconds, and
//! every `*.utilization` a **ratio from 0 to 1** (as OpenTelemetry defines
//! it), unlike the typed readings, whose `percent` fields run from 0 to 100.
//! Sizes and durations are described to the collector with their unit when
//! the monitor is built, so exporters name them in base units
//! (`process_memory_usage_bytes`, `process_uptime_seconds`).
//!
//! Counters the OS keeps since boot (network bytes, packets, errors) are
//! published as **counters** (OpenTelemetry's `system.network.io` is one;
//! Prometheus exporters name it `system_network_io_bytes_total`): each
//! poll adds what the OS total grew by since the previous poll. The
//! first poll of an interface adds 0, so a counter holds the traffic
//! since monitoring began, and a rate over the first interval is not the
//! whole total since boot. When an OS total goes down (the interface was
//! removed and created again, or its counter was reset), the poll adds
//! the new total, the traffic since the reset, and the baseline restarts
//! there: a counter never decreases.

/// Memory in bytes, tagged [`TAG_STATE`] = [`STATE_USED`] or [`STATE_FREE`].
/// `used` is `total - available`; `free` is memory used for nothing at all.
pub const MEMORY_USAGE: &str = "system.memory.usage";
/// Installed memory in bytes (no tags).
pub const MEMORY_LIMIT: &str = "system.memory.limit";
/// Memory a new process could get without swapping, in bytes (no tags).
pub const MEMORY_AVAILABLE: &str = "system.linux.memory.available";
/// `used / total` as a ratio 0..1, tagged [`TAG_STATE`] = [`STATE_USED`].
pub const MEMORY_UTILIZATION: &str = "system.memory.utilization";
/// Swap in bytes, tagged [`TAG_STATE`] = [`STATE_USED`] or [`STATE_FREE`].
pub const PAGING_USAGE: &str = "system.paging.usage";
/// Swap `used / total` as a ratio 0..1, tagged [`TAG_STATE`] = [`STATE_USED`];
/// not published when the machine has no swap.
pub const PAGING_UTILIZATION: &str = "system.paging.utilization";

/// CPU busy time as a ratio 0..1. Untagged: all cores together; tagged
/// [`TAG_CPU`] = `"0"`, `"1"`, ...: one logical core.
pub const CPU_UTILIZATION: &str = "system.cpu.utilization";
/// Number of logical cores (hardware threads). Not OpenTelemetry's
/// `system.cpu.logical.count`, for the reason given at [`PROCESS_THREADS`].
pub const CPU_LOGICAL_CORES: &str = "system.cpu.logical_cores";
/// Number of physical cores; not published where the OS does not tell.
pub const CPU_PHYSICAL_CORES: &str = "system.cpu.physical_cores";
/// Load average over one minute (where the OS has one).
pub const CPU_LOAD_1M: &str = "system.cpu.load_average.1m";
/// Load average over five minutes (where the OS has one).
pub const CPU_LOAD_5M: &str = "system.cpu.load_average.5m";
/// Load average over fifteen minutes (where the OS has one).
pub const CPU_LOAD_15M: &str = "system.cpu.load_average.15m";

/// File system space in bytes, tagged [`TAG_DEVICE`], [`TAG_MOUNTPOINT`],
/// [`TAG_FS_TYPE`] and [`TAG_STATE`] = [`STATE_USED`], [`STATE_FREE`] (free
/// for unprivileged users) or [`STATE_RESERVED`] (free for root only).
pub const FILESYSTEM_USAGE: &str = "system.filesystem.usage";
/// `used / (used + free)` as a ratio 0..1 (what `df` shows), tagged
/// [`TAG_DEVICE`], [`TAG_MOUNTPOINT`] and [`TAG_FS_TYPE`].
pub const FILESYSTEM_UTILIZATION: &str = "system.filesystem.utilization";

/// Counter of bytes sent or received, tagged [`TAG_DEVICE`] (interface) and
/// [`TAG_DIRECTION`].
pub const NETWORK_IO: &str = "system.network.io";
/// Counter of packets, tagged [`TAG_DEVICE`] and [`TAG_DIRECTION`].
pub const NETWORK_PACKETS: &str = "system.network.packets";
/// Counter of errors, tagged [`TAG_DEVICE`] and [`TAG_DIRECTION`].
pub const NETWORK_ERRORS: &str = "system.network.errors";

/// Resident set size of this process, in bytes.
pub const PROCESS_MEMORY_USAGE: &str = "process.memory.usage";
/// Virtual memory size of this process, in bytes.
pub const PROCESS_MEMORY_VIRTUAL: &str = "process.memory.virtual";
/// CPU time of this process over wall time, divided by the number of logical
/// cores: a ratio 0..1 of the whole machine (OpenTelemetry's definition).
/// The typed [`ProcessUsage::cpu_percent`](metrics_protocol::app::ProcessUsage::cpu_percent)
/// instead counts 100 per fully used core, as psutil and `top` do.
pub const PROCESS_CPU_UTILIZATION: &str = "process.cpu.utilization";
/// Threads of this process (where the OS tells). Not OpenTelemetry's
/// `process.thread.count`: a gauge whose name ends in `_count` breaks
/// Prometheus' naming rules (`promtool check metrics`), so it is
/// `process_threads`, as Go's `go_threads`.
pub const PROCESS_THREADS: &str = "process.threads";
/// Seconds since this process started.
pub const PROCESS_UPTIME: &str = "process.uptime";

/// Tag key: the state a quantity of memory, swap or disk space is in.
pub const TAG_STATE: &str = "state";
/// Tag key: the logical core number.
pub const TAG_CPU: &str = "cpu";
/// Tag key: a block device or a network interface.
pub const TAG_DEVICE: &str = "device";
/// Tag key: where a file system is mounted.
pub const TAG_MOUNTPOINT: &str = "mountpoint";
/// Tag key: the file system type (`ext4`, ...).
pub const TAG_FS_TYPE: &str = "type";
/// Tag key: [`DIRECTION_TRANSMIT`] or [`DIRECTION_RECEIVE`].
pub const TAG_DIRECTION: &str = "direction";

/// Tag value of [`TAG_STATE`]: in use.
pub const STATE_USED: &str = "used";
/// Tag value of [`TAG_STATE`]: not in use.
pub const STATE_FREE: &str = "free";
/// Tag value of [`TAG_STATE`]: disk space kept for the super-user.
pub const STATE_RESERVED: &str = "reserved";
/// Tag value of [`TAG_DIRECTION`]: sent.
pub const DIRECTION_TRANSMIT: &str = "transmit";
/// Tag value of [`TAG_DIRECTION`]: received.
pub const DIRECTION_RECEIVE: &str = "receive";

/// Every metric name this crate may publish.
pub const ALL: [&str; 22] = [
    MEMORY_USAGE,
    MEMORY_LIMIT,
    MEMORY_AVAILABLE,
    MEMORY_UTILIZATION,
    PAGING_USAGE,
    PAGING_UTILIZATION,
    CPU_UTILIZATION,
    CPU_LOGICAL_CORES,
    CPU_PHYSICAL_CORES,
    CPU_LOAD_1M,
    CPU_LOAD_5M,
    CPU_LOAD_15M,
    FILESYSTEM_USAGE,
    FILESYSTEM_UTILIZATION,
    NETWORK_IO,
    NETWORK_PACKETS,
    NETWORK_ERRORS,
    PROCESS_MEMORY_USAGE,
    PROCESS_MEMORY_VIRTUAL,
    PROCESS_CPU_UTILIZATION,
    PROCESS_THREADS,
    PROCESS_UPTIME,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_passes_the_protocols_validation_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for name in ALL {
            assert_eq!(
                metrics_protocol::backend::validate::check_name(name),
                Ok(()),
                "{name}"
            );
            assert!(seen.insert(name), "{name} listed twice");
        }
    }
}
