//! Typed readings on sysinfo: what each call refreshes, and the CPU baselines.
//!
//! Two sysinfo `System`s are kept apart on purpose: refreshing a process's CPU
//! time makes sysinfo refresh the global CPU times too, which would eat the
//! span the global and per-core utilisation are computed over.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use metrics_protocol::MetricsError;
use metrics_protocol::app::{
    CpuUsage, DiskUsage, InterfaceStats, LoadAverage, MemoryUsage, NetworkStats, ProcessUsage,
};
use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

use crate::disk::{self, Mount, Space};

/// The shortest span a CPU utilisation is computed over (sysinfo's minimum).
pub(crate) const CPU_MIN_SPAN: Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

/// How many processes' CPU baselines are kept before they are forgotten.
const MAX_PROCESS_BASELINES: usize = 64;

/// CPU time of one process at one instant, and the last utilisation computed.
#[derive(Debug, Clone, Copy)]
struct ProcessBaseline {
    start_time: u64,
    cpu_ms: u64,
    at: Instant,
    last_percent: Option<f64>,
}

/// Everything sysinfo keeps between calls. Guarded by one mutex in the monitor.
pub(crate) struct Readings {
    /// Memory and CPUs.
    system: System,
    /// Processes only (see the module docs).
    procs: System,
    networks: Networks,
    disks: Disks,
    /// When the CPU times were last read (the baseline at first).
    cpu_read_at: Instant,
    /// Whether a utilisation over at least [`CPU_MIN_SPAN`] exists.
    cpu_valid: bool,
    self_pid: u32,
    baselines: HashMap<u32, ProcessBaseline>,
}

fn sys_err(what: &str, err: sysinfo::Error) -> MetricsError {
    MetricsError::io(what.to_owned(), io::Error::other(err.to_string()))
}

/// NaN or out-of-range percentages from the OS become 0..=100.
fn clamp_percent(value: f64) -> f64 {
    if value.is_finite() {
        value.clamp(0.0, 100.0)
    } else {
        0.0
    }
}

fn ratio_percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        clamp_percent(part as f64 / whole as f64 * 100.0)
    }
}

impl Readings {
    /// Takes the CPU baselines (global, per core, this process).
    pub(crate) fn new() -> Result<Readings, MetricsError> {
        let mut system = System::new().map_err(|e| sys_err("initialising sysinfo", e))?;
        let procs = System::new().map_err(|e| sys_err("initialising sysinfo", e))?;
        let networks = Networks::new().map_err(|e| sys_err("initialising sysinfo networks", e))?;
        let disks = Disks::new().map_err(|e| sys_err("initialising sysinfo disks", e))?;
        let self_pid = std::process::id();
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        let mut readings = Readings {
            system,
            procs,
            networks,
            disks,
            cpu_read_at: Instant::now(),
            cpu_valid: false,
            self_pid,
            baselines: HashMap::new(),
        };
        // Seeds this process's CPU baseline; a failure here only means the
        // first process reading has no CPU percent.
        if let Err(err) = readings.process(self_pid) {
            tracing::debug!(%err, "no CPU baseline for this process");
        }
        Ok(readings)
    }

    /// The id of this process.
    pub(crate) fn self_pid(&self) -> u32 {
        self.self_pid
    }

    /// Refreshes RAM and swap only.
    pub(crate) fn memory(&mut self) -> MemoryUsage {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let s = &self.system;
        let total = s.total_memory();
        let available = s.available_memory().min(total);
        let used = total - available;
        let swap_total = s.total_swap();
        MemoryUsage {
            total_bytes: total,
            used_bytes: used,
            available_bytes: available,
            free_bytes: s.free_memory().min(total),
            percent: ratio_percent(used, total),
            swap_total_bytes: swap_total,
            swap_used_bytes: s.used_swap().min(swap_total),
        }
    }

    /// Refreshes CPU times if the last read is at least [`CPU_MIN_SPAN`] old;
    /// the first call within [`CPU_MIN_SPAN`] of the baseline waits the rest.
    pub(crate) fn cpu(&mut self) -> Result<CpuUsage, MetricsError> {
        let since = self.cpu_read_at.elapsed();
        if since < CPU_MIN_SPAN && !self.cpu_valid {
            std::thread::sleep(CPU_MIN_SPAN - since);
        }
        if since >= CPU_MIN_SPAN || !self.cpu_valid {
            self.system
                .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            self.cpu_read_at = Instant::now();
            self.cpu_valid = true;
        }
        let cpus = self.system.cpus();
        if cpus.is_empty() {
            return Err(MetricsError::Unsupported {
                operation: "cpu_usage (the OS lists no CPU)",
                backend: "system",
            });
        }
        Ok(CpuUsage {
            percent: clamp_percent(f64::from(self.system.global_cpu_usage())),
            per_core_percent: cpus
                .iter()
                .map(|c| clamp_percent(f64::from(c.usage())))
                .collect(),
            logical_cores: cpus.len(),
            physical_cores: System::physical_core_count().ok().filter(|&n| n > 0),
            load_average: System::load_average().ok().map(|l| LoadAverage {
                one: l.one,
                five: l.five,
                fifteen: l.fifteen,
            }),
        })
    }

    /// Refreshes the interface list and counters.
    pub(crate) fn network(&mut self) -> NetworkStats {
        self.networks.refresh(true);
        let mut interfaces: Vec<InterfaceStats> = self
            .networks
            .iter()
            .map(|(name, data)| InterfaceStats {
                name: name.to_string_lossy().into_owned(),
                bytes_sent: data.total_transmitted(),
                bytes_received: data.total_received(),
                packets_sent: data.total_packets_transmitted(),
                packets_received: data.total_packets_received(),
                errors_out: data.total_errors_on_transmitted(),
                errors_in: data.total_errors_on_received(),
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        let mut total = NetworkStats::default();
        for i in &interfaces {
            total.bytes_sent = total.bytes_sent.saturating_add(i.bytes_sent);
            total.bytes_received = total.bytes_received.saturating_add(i.bytes_received);
            total.packets_sent = total.packets_sent.saturating_add(i.packets_sent);
            total.packets_received = total.packets_received.saturating_add(i.packets_received);
            total.errors_out = total.errors_out.saturating_add(i.errors_out);
            total.errors_in = total.errors_in.saturating_add(i.errors_in);
        }
        total.interfaces = interfaces;
        total
    }

    /// Re-reads the list of mounted disks (sysinfo's list, which leaves out
    /// pseudo and network file systems), then the space of each.
    pub(crate) fn all_disks(&mut self) -> Vec<DiskUsage> {
        // On Unix the space comes from our own statvfs, so sysinfo only lists.
        let kind = if cfg!(unix) {
            DiskRefreshKind::nothing()
        } else {
            DiskRefreshKind::nothing().with_storage()
        };
        self.disks.refresh_specifics(true, kind);
        let mut out: Vec<DiskUsage> = self
            .disks
            .iter()
            .filter_map(|d| {
                let mount = Mount {
                    mount_point: d.mount_point().to_path_buf(),
                    device: Some(d.name().to_string_lossy().into_owned()),
                    file_system: Some(d.file_system().to_string_lossy().into_owned()),
                };
                let space = match disk::space_of(&mount.mount_point) {
                    Ok(space) => space,
                    Err(_) if !cfg!(unix) => {
                        Space::from_total_available(d.total_space(), d.available_space())
                    }
                    Err(err) => {
                        tracing::debug!(%err, mount = %mount.mount_point.display(), "skipping a disk statvfs cannot read");
                        return None;
                    }
                };
                Some(disk::usage(&mount, space))
            })
            .collect();
        out.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        out
    }

    /// The file system holding `path`: the mount table entry with the
    /// longest mount point prefix of the canonical path, and `statvfs` of
    /// the path itself.
    pub(crate) fn disk(&mut self, path: &Path) -> Result<DiskUsage, MetricsError> {
        let canonical = disk::canonical(path)?;
        let mut mounts = disk::mount_table();
        if mounts.is_empty() {
            self.disks
                .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
            mounts = self
                .disks
                .iter()
                .map(|d| Mount {
                    mount_point: d.mount_point().to_path_buf(),
                    device: Some(d.name().to_string_lossy().into_owned()),
                    file_system: Some(d.file_system().to_string_lossy().into_owned()),
                })
                .collect();
        }
        let mount = disk::holding_mount(&mounts, &canonical)
            .cloned()
            .ok_or_else(|| {
                MetricsError::NotFound(format!(
                    "no mounted file system holds path `{}`",
                    path.display()
                ))
            })?;
        let space = match disk::space_of(&canonical) {
            Ok(space) => space,
            Err(err) if err.kind() == io::ErrorKind::Unsupported => self
                .disks
                .iter()
                .find(|d| d.mount_point() == mount.mount_point)
                .map(|d| Space::from_total_available(d.total_space(), d.available_space()))
                .unwrap_or_default(),
            Err(err) => {
                return Err(MetricsError::io(
                    format!("statvfs of `{}`", canonical.display()),
                    err,
                ));
            }
        };
        Ok(disk::usage(&mount, space))
    }

    /// Refreshes one process (memory and CPU time, no threads as tasks).
    /// CPU percent: see [`Readings::process_cpu`]. For this process, the
    /// first call within [`CPU_MIN_SPAN`] of the baseline waits the rest.
    pub(crate) fn process(&mut self, pid: u32) -> Result<ProcessUsage, MetricsError> {
        if pid == self.self_pid
            && let Some(b) = self.baselines.get(&pid)
            && b.last_percent.is_none()
        {
            let since = b.at.elapsed();
            if since < CPU_MIN_SPAN {
                std::thread::sleep(CPU_MIN_SPAN - since);
            }
        }
        let spid = Pid::from_u32(pid);
        self.procs.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[spid]),
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu()
                .without_tasks(),
        );
        let Some(p) = self.procs.process(spid) else {
            self.baselines.remove(&pid);
            return Err(MetricsError::NotFound(format!("process {pid}")));
        };
        let (rss, virt, cpu_ms, start, run) = (
            p.memory(),
            p.virtual_memory(),
            p.accumulated_cpu_time(),
            p.start_time(),
            p.run_time(),
        );
        let cpu_percent = self.process_cpu(pid, start, cpu_ms);
        Ok(ProcessUsage {
            pid,
            rss_bytes: rss,
            virtual_bytes: virt,
            cpu_percent,
            threads: thread_count(pid),
            uptime: Duration::from_secs(run),
        })
    }

    /// CPU time used since the previous reading of `pid` over the wall time
    /// between them (100 = one core). `None` on the first reading of a
    /// process; within [`CPU_MIN_SPAN`] of the previous reading, the previous
    /// value.
    fn process_cpu(&mut self, pid: u32, start_time: u64, cpu_ms: u64) -> Option<f64> {
        let now = Instant::now();
        let fresh = ProcessBaseline {
            start_time,
            cpu_ms,
            at: now,
            last_percent: None,
        };
        match self.baselines.get_mut(&pid) {
            // Same pid, same process (not a reused pid).
            Some(b) if b.start_time == start_time => {
                let dt = now.duration_since(b.at);
                if dt >= CPU_MIN_SPAN {
                    let used = cpu_ms.saturating_sub(b.cpu_ms) as f64;
                    let pct = used / (dt.as_secs_f64() * 1e3) * 100.0;
                    let pct = if pct.is_finite() { pct.max(0.0) } else { 0.0 };
                    *b = ProcessBaseline {
                        last_percent: Some(pct),
                        ..fresh
                    };
                }
                b.last_percent
            }
            _ => {
                if self.baselines.len() >= MAX_PROCESS_BASELINES {
                    // Forget other processes, in sysinfo too, so watching
                    // many short-lived pids cannot grow memory without bound.
                    let own = self.baselines.get(&self.self_pid).copied();
                    self.baselines.clear();
                    if let Some(own) = own {
                        self.baselines.insert(self.self_pid, own);
                    }
                    if let Ok(fresh_sys) = System::new() {
                        self.procs = fresh_sys;
                    }
                }
                self.baselines.insert(pid, fresh);
                None
            }
        }
    }
}

/// Threads of `pid`, from `/proc/<pid>/status` on Linux.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn thread_count(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_threads(&status)
}

/// Threads of `pid`: not known on this OS.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn thread_count(_pid: u32) -> Option<u64> {
    None
}

#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
fn parse_threads(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_helpers_never_produce_nan_or_out_of_range() {
        assert_eq!(ratio_percent(1, 0), 0.0);
        assert_eq!(ratio_percent(5, 4), 100.0);
        assert_eq!(clamp_percent(f64::NAN), 0.0);
        assert_eq!(clamp_percent(-3.0), 0.0);
        assert_eq!(ratio_percent(1, 4), 25.0);
    }

    #[test]
    fn threads_line_is_parsed() {
        assert_eq!(parse_threads("Name:\tx\nThreads:\t7\nFoo: 1\n"), Some(7));
        assert_eq!(parse_threads("Name:\tx\n"), None);
        assert_eq!(parse_threads("Threads:\tmany\n"), None);
    }

    #[test]
    fn a_process_that_does_not_exist_is_not_found() {
        let mut r = Readings::new().expect("sysinfo");
        // Above the kernel's pid_max limit (4194304 at most).
        let err = r.process(u32::MAX - 1).unwrap_err();
        assert!(matches!(&err, MetricsError::NotFound(m) if m.contains("process")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn first_process_reading_of_another_pid_has_no_cpu_percent_the_second_has_one() {
        let mut r = Readings::new().expect("sysinfo");
        // pid 1 exists in every Linux pid namespace.
        let first = r.process(1).expect("pid 1");
        assert_eq!(first.cpu_percent, None);
        std::thread::sleep(CPU_MIN_SPAN);
        let second = r.process(1).expect("pid 1 again");
        assert!(second.cpu_percent.is_some_and(|p| p >= 0.0));
    }
}
