//! System resources (memory, CPU, disks, network, this process) read with
//! [sysinfo](https://docs.rs/sysinfo), as typed readings and as gauges
//! published into any [`MetricCollector`](metrics_protocol::MetricCollector).
//!
//! ```
//! use std::path::Path;
//! use metrics_protocol::app::ResourceMonitor;
//! use metrics_system::SystemMonitor;
//!
//! let monitor = SystemMonitor::new()?;
//! let memory = monitor.memory_usage()?;
//! assert!(memory.used_bytes <= memory.total_bytes);
//! let root = monitor.disk_usage(Path::new("/"))?;
//! assert!(root.total_bytes > 0);
//! let cpu = monitor.cpu_usage()?; // the first call may wait up to 200 ms, see below
//! assert!((0.0..=100.0).contains(&cpu.percent));
//! # Ok::<(), metrics_protocol::MetricsError>(())
//! ```
//!
//! # What it is for
//!
//! An application hands a [`SystemMonitor`] the collector it chose
//! (`metrics-memory`, StatsD, a [`Fanout`](metrics_kit::layers::Fanout) of both)
//! and starts the poller; dashboards then get the numbers node_exporter,
//! psutil or the OpenTelemetry Collector's host metrics give, under
//! OpenTelemetry's names:
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use metrics_protocol::{MetricCollector, NoopMetrics};
//! use metrics_protocol::app::ResourceMonitor;
//! use metrics_system::SystemMonitor;
//!
//! let backend: Arc<dyn MetricCollector> = Arc::new(NoopMetrics); // your backend
//! let monitor = SystemMonitor::with_collector(backend)?;
//! monitor.start_resource_monitoring(Duration::from_secs(10))?;
//! // ... the application runs; dropping `monitor` stops the poller.
//! # Ok::<(), metrics_protocol::MetricsError>(())
//! ```
//!
//! # CPU utilisation and the first call
//!
//! A utilisation is the busy share of the time between two readings of the
//! CPU counters, and a span shorter than sysinfo's minimum (200 ms on Linux)
//! is noise. So the constructor reads the counters once (the baseline), and:
//!
//! - the first [`cpu_usage`](metrics_protocol::app::ResourceMonitor::cpu_usage)
//!   (or snapshot, or poll) within 200 ms of the constructor **waits the
//!   rest of the 200 ms**, then reports the utilisation since the baseline:
//!   never sysinfo's meaningless first value;
//! - later, each call reports the utilisation since the previous reading; a
//!   call within 200 ms of the previous one returns that previous value
//!   without waiting.
//!
//! This process's CPU percent works the same way (from its CPU time over
//! wall time, 100 = one full core, as psutil and `top` count it). For another
//! process ([`SystemMonitor::process_usage_of`]) the first reading has
//! `cpu_percent: None`.
//!
//! # What each call refreshes
//!
//! Each call refreshes only what it returns: memory reads RAM and swap; CPU
//! the CPU times; disks the mount list and one `statvfs` per mount; network
//! every interface's counters (the largest part of a poll); the process
//! reading that one process, never the whole process table. Calls share one
//! lock. What a call and a whole poll ([`SystemMonitor::publish_once`])
//! cost is measured in the project's `BENCHMARKS.md`.
//!
//! # Definitions (and where they differ from psutil)
//!
//! - **Memory**: `used = total - available` (as psutil and `free`'s
//!   "available" column imply); `free` is memory used for nothing, not even
//!   cache; `percent = used / total * 100`.
//! - **Disk**: numbers come from `statvfs` on Unix, as `df` and psutil's
//!   `disk_usage` compute them: `used` is blocks in use (it excludes the
//!   blocks reserved for root), `free_bytes` is what an unprivileged user can
//!   still write, and `percent = used / (used + free) * 100`. So on a file
//!   system with reserved blocks, `used + free < total`: the protocol's
//!   `used = total - free` does **not** hold; it would count the reserve as
//!   used. [`disk_usage`](metrics_protocol::app::ResourceMonitor::disk_usage)
//!   names the file system by the mount whose mount point is the longest
//!   prefix of the canonical path; [`all_disk_usage`](metrics_protocol::app::ResourceMonitor::all_disk_usage)
//!   lists sysinfo's disks, which leave out pseudo file systems (`proc`,
//!   `tmpfs`, `cgroup`, ...) and network mounts (whose `statvfs` can hang).
//! - **Network**: totals since boot summed over **every** interface,
//!   loopback included, as psutil's `net_io_counters()`. Interfaces that
//!   appear or vanish are picked up on the next call.
//! - **Process**: RSS and virtual size as the kernel reports them; threads
//!   from `/proc/<pid>/status` (Linux only, `None` elsewhere); uptime in
//!   whole seconds.
//! - **Load average**: `None` where the OS has none.
//!
//! # Published gauges and counters
//!
//! [`publish_once`](SystemMonitor::publish_once) and the poller record
//! gauges, and counters for the network, named in [`names`]. Sizes are
//! bytes, durations seconds, and every `*.utilization` is a **0–1 ratio**
//! as OpenTelemetry defines it (the typed readings' `percent` fields run
//! 0–100). The network counters add what the OS totals grew by between two
//! polls: they start at 0 with the first poll, and a total that goes
//! down (an interface created again) adds its new value, never a negative
//! one (details in [`names`]).
//!
//! | name | unit | tags |
//! | --- | --- | --- |
//! | `system.memory.usage` | bytes | `state`: `used`, `free` |
//! | `system.memory.limit` | bytes | |
//! | `system.linux.memory.available` | bytes | |
//! | `system.memory.utilization` | ratio | `state`: `used` |
//! | `system.paging.usage` | bytes | `state`: `used`, `free` |
//! | `system.paging.utilization` | ratio (only with swap) | `state`: `used` |
//! | `system.cpu.utilization` | ratio | none (all cores), or `cpu`: `0`, `1`, ... |
//! | `system.cpu.logical_cores`, `system.cpu.physical_cores` | count | |
//! | `system.cpu.load_average.1m`, `.5m`, `.15m` | load | |
//! | `system.filesystem.usage` | bytes | `device`, `mountpoint`, `type`, `state`: `used`, `free`, `reserved` |
//! | `system.filesystem.utilization` | ratio `used / (used + free)` | `device`, `mountpoint`, `type` |
//! | `system.network.io`, `.packets`, `.errors` (counters) | bytes, packets, errors since the first poll | `device`, `direction`: `transmit`, `receive` |
//! | `process.memory.usage`, `process.memory.virtual` | bytes | |
//! | `process.cpu.utilization` | ratio of the whole machine (percent / 100 / logical cores) | |
//! | `process.threads` | count (Linux) | |
//! | `process.uptime` | seconds | |
//!
//! # The poller
//!
//! [`start_resource_monitoring`](metrics_protocol::app::ResourceMonitor::start_resource_monitoring)
//! spawns one thread (`metrics-poller`) that polls at once, then every
//! interval (at least [`MIN_INTERVAL`]); starting again while it runs does
//! nothing. [`stop_resource_monitoring`](metrics_protocol::app::ResourceMonitor::stop_resource_monitoring)
//! and drop wake it at once and join it. A poll that panics (in sysinfo or
//! in the collector) is caught, logged with `tracing` and counted in
//! [`SystemMonitor::poll_stats`]; the next poll runs as usual. Nothing
//! here prints; OS data that is missing (no swap, no load average, a
//! vanished interface) is left out, never a panic.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

mod disk;
mod monitor;
pub mod names;
mod poller;
mod publish;
mod readings;

pub use monitor::{MIN_INTERVAL, SystemMonitor, SystemSnapshot};
pub use poller::PollStats;

#[cfg(test)]
mod tests;
