//! Turns typed readings into gauges and counters named in [`crate::names`].

use std::collections::HashMap;

use metrics_protocol::app::{CpuUsage, DiskUsage, MemoryUsage, NetworkStats, ProcessUsage};
use metrics_protocol::{MetricType, MetricUnit, Metrics};

use crate::names::*;

/// Describes the gauges that have a unit (bytes, seconds), so exporters
/// name them in base units (`process_memory_usage_bytes`); counts and
/// 0..1 ratios have none to give.
pub(crate) fn describe(c: &Metrics) {
    use MetricUnit::{Bytes, Seconds};
    let described = [
        (MEMORY_USAGE, Bytes, "Memory in use or free"),
        (MEMORY_LIMIT, Bytes, "Installed memory"),
        (MEMORY_AVAILABLE, Bytes, "Memory available without swapping"),
        (PAGING_USAGE, Bytes, "Swap in use or free"),
        (FILESYSTEM_USAGE, Bytes, "File system space by state"),
        (
            PROCESS_MEMORY_USAGE,
            Bytes,
            "Resident set size of this process",
        ),
        (
            PROCESS_MEMORY_VIRTUAL,
            Bytes,
            "Virtual memory size of this process",
        ),
        (PROCESS_UPTIME, Seconds, "Time since this process started"),
    ];
    for (name, unit, text) in described {
        c.describe(name, MetricType::Gauge, Some(unit), text);
    }
    let counters = [
        (NETWORK_IO, Some(Bytes), "Network bytes sent or received"),
        (NETWORK_PACKETS, None, "Network packets sent or received"),
        (NETWORK_ERRORS, None, "Network errors sending or receiving"),
    ];
    for (name, unit, text) in counters {
        c.describe(name, MetricType::Counter, unit, text);
    }
    let counts = [
        (PROCESS_THREADS, "Threads of this process"),
        (CPU_LOGICAL_CORES, "Logical cores (hardware threads)"),
        (CPU_PHYSICAL_CORES, "Physical cores"),
    ];
    for (name, text) in counts {
        c.describe(name, MetricType::Gauge, None, text);
    }
}

/// Gauges of memory and swap.
pub(crate) fn memory(c: &Metrics, m: &MemoryUsage) {
    c.record_gauge(
        MEMORY_USAGE,
        m.used_bytes as f64,
        &[(TAG_STATE, STATE_USED)],
    );
    c.record_gauge(
        MEMORY_USAGE,
        m.free_bytes as f64,
        &[(TAG_STATE, STATE_FREE)],
    );
    c.record_gauge(MEMORY_LIMIT, m.total_bytes as f64, &[]);
    c.record_gauge(MEMORY_AVAILABLE, m.available_bytes as f64, &[]);
    c.record_gauge(
        MEMORY_UTILIZATION,
        m.percent / 100.0,
        &[(TAG_STATE, STATE_USED)],
    );
    let swap_free = m.swap_total_bytes.saturating_sub(m.swap_used_bytes);
    c.record_gauge(
        PAGING_USAGE,
        m.swap_used_bytes as f64,
        &[(TAG_STATE, STATE_USED)],
    );
    c.record_gauge(PAGING_USAGE, swap_free as f64, &[(TAG_STATE, STATE_FREE)]);
    if m.swap_total_bytes > 0 {
        c.record_gauge(
            PAGING_UTILIZATION,
            m.swap_used_bytes as f64 / m.swap_total_bytes as f64,
            &[(TAG_STATE, STATE_USED)],
        );
    }
}

/// Gauges of CPU utilisation, core counts and load.
pub(crate) fn cpu(c: &Metrics, u: &CpuUsage) {
    c.record_gauge(CPU_UTILIZATION, u.percent / 100.0, &[]);
    for (i, pct) in u.per_core_percent.iter().enumerate() {
        let core = i.to_string();
        c.record_gauge(CPU_UTILIZATION, pct / 100.0, &[(TAG_CPU, core.as_str())]);
    }
    c.record_gauge(CPU_LOGICAL_CORES, u.logical_cores as f64, &[]);
    if let Some(n) = u.physical_cores {
        c.record_gauge(CPU_PHYSICAL_CORES, n as f64, &[]);
    }
    if let Some(l) = u.load_average {
        c.record_gauge(CPU_LOAD_1M, l.one, &[]);
        c.record_gauge(CPU_LOAD_5M, l.five, &[]);
        c.record_gauge(CPU_LOAD_15M, l.fifteen, &[]);
    }
}

/// Gauges of each file system.
pub(crate) fn disks(c: &Metrics, disks: &[DiskUsage]) {
    for d in disks {
        let device = d.device.as_deref().unwrap_or("");
        let fs = d.file_system.as_deref().unwrap_or("");
        let mp = d.mount_point.as_str();
        let reserved = d
            .total_bytes
            .saturating_sub(d.used_bytes)
            .saturating_sub(d.free_bytes);
        for (state, value) in [
            (STATE_USED, d.used_bytes),
            (STATE_FREE, d.free_bytes),
            (STATE_RESERVED, reserved),
        ] {
            c.record_gauge(
                FILESYSTEM_USAGE,
                value as f64,
                &[
                    (TAG_DEVICE, device),
                    (TAG_MOUNTPOINT, mp),
                    (TAG_FS_TYPE, fs),
                    (TAG_STATE, state),
                ],
            );
        }
        c.record_gauge(
            FILESYSTEM_UTILIZATION,
            d.percent / 100.0,
            &[
                (TAG_DEVICE, device),
                (TAG_MOUNTPOINT, mp),
                (TAG_FS_TYPE, fs),
            ],
        );
    }
}

/// Most interfaces whose last totals are kept. Past it, the totals of
/// interfaces absent from the newest reading are forgotten (one that comes
/// back starts again from 0, like a new one).
pub(crate) const MAX_INTERFACES: usize = 1024;

/// The last OS totals of each interface: turns the running totals since
/// boot into amounts added to counters (see [`crate::names`] for the rules).
#[derive(Debug, Default)]
pub(crate) struct NetworkCounters {
    /// Per interface: bytes, packets, errors, each sent then received.
    last: HashMap<String, [u64; 6]>,
    /// Totals seen going down (counter resets), for tests and logs.
    pub(crate) resets: u64,
}

impl NetworkCounters {
    /// Adds to the network counters what each interface's totals grew by
    /// since the previous call.
    pub(crate) fn publish(&mut self, c: &Metrics, n: &NetworkStats) {
        let new = n
            .interfaces
            .iter()
            .filter(|i| !self.last.contains_key(&i.name))
            .count();
        if self.last.len() + new > MAX_INTERFACES {
            self.last
                .retain(|name, _| n.interfaces.iter().any(|i| &i.name == name));
        }
        for i in &n.interfaces {
            let now = [
                i.bytes_sent,
                i.bytes_received,
                i.packets_sent,
                i.packets_received,
                i.errors_out,
                i.errors_in,
            ];
            let prev = if self.last.len() < MAX_INTERFACES || self.last.contains_key(&i.name) {
                self.last.insert(i.name.clone(), now)
            } else {
                // No room to track it: it adds 0 rather than a total since boot.
                Some(now)
            };
            let dev = i.name.as_str();
            for (k, name) in [NETWORK_IO, NETWORK_PACKETS, NETWORK_ERRORS]
                .into_iter()
                .enumerate()
            {
                for (j, dir) in [DIRECTION_TRANSMIT, DIRECTION_RECEIVE]
                    .into_iter()
                    .enumerate()
                {
                    let at = 2 * k + j;
                    let added = match prev {
                        // The first reading is the baseline.
                        None => 0,
                        Some(p) if now[at] >= p[at] => now[at] - p[at],
                        // The OS counter restarted from 0: what it holds
                        // now came after the restart.
                        Some(p) => {
                            self.resets += 1;
                            tracing::debug!(
                                interface = dev,
                                metric = name,
                                direction = dir,
                                before = p[at],
                                now = now[at],
                                "network counter went down: counting from its reset"
                            );
                            now[at]
                        }
                    };
                    c.record_counter(
                        name,
                        added as f64,
                        &[(TAG_DEVICE, dev), (TAG_DIRECTION, dir)],
                    );
                }
            }
        }
    }
}

/// Gauges of this process. `logical_cores` turns the per-core percent into
/// OpenTelemetry's whole-machine ratio; 0 means unknown (published per core).
pub(crate) fn process(c: &Metrics, p: &ProcessUsage, logical_cores: usize) {
    c.record_gauge(PROCESS_MEMORY_USAGE, p.rss_bytes as f64, &[]);
    c.record_gauge(PROCESS_MEMORY_VIRTUAL, p.virtual_bytes as f64, &[]);
    if let Some(pct) = p.cpu_percent {
        c.record_gauge(
            PROCESS_CPU_UTILIZATION,
            pct / 100.0 / logical_cores.max(1) as f64,
            &[],
        );
    }
    if let Some(t) = p.threads {
        c.record_gauge(PROCESS_THREADS, t as f64, &[]);
    }
    c.record_gauge(PROCESS_UPTIME, p.uptime.as_secs_f64(), &[]);
}

#[cfg(test)]
mod tests {
    use metrics_protocol::app::InterfaceStats;
    use metrics_protocol::testing::Capture;

    use super::*;

    fn iface(name: &str, sent: u64, received: u64) -> InterfaceStats {
        InterfaceStats {
            name: name.to_owned(),
            bytes_sent: sent,
            bytes_received: received,
            packets_sent: sent / 100,
            packets_received: received / 100,
            ..InterfaceStats::default()
        }
    }

    fn stats(interfaces: Vec<InterfaceStats>) -> NetworkStats {
        NetworkStats {
            interfaces,
            ..NetworkStats::default()
        }
    }

    fn bytes(c: &Capture, dev: &str, dir: &str) -> f64 {
        c.counter(NETWORK_IO, &[(TAG_DEVICE, dev), (TAG_DIRECTION, dir)])
    }

    #[test]
    fn network_counters_add_the_growth_of_the_os_totals_from_a_zero_baseline() {
        let c = Capture::new();
        let m = c.metrics();
        let mut n = NetworkCounters::default();
        n.publish(&m, &stats(vec![iface("eth0", 5_000, 9_000)]));
        assert_eq!(bytes(&c, "eth0", DIRECTION_TRANSMIT), 0.0);
        assert_eq!(bytes(&c, "eth0", DIRECTION_RECEIVE), 0.0);
        n.publish(&m, &stats(vec![iface("eth0", 5_700, 9_000)]));
        n.publish(&m, &stats(vec![iface("eth0", 6_000, 10_500)]));
        assert_eq!(bytes(&c, "eth0", DIRECTION_TRANSMIT), 1_000.0);
        assert_eq!(bytes(&c, "eth0", DIRECTION_RECEIVE), 1_500.0);
        let packets = c.counter(
            NETWORK_PACKETS,
            &[(TAG_DEVICE, "eth0"), (TAG_DIRECTION, DIRECTION_RECEIVE)],
        );
        assert_eq!(packets, 15.0);
        assert_eq!(n.resets, 0);
    }

    #[test]
    fn a_total_that_goes_down_restarts_the_baseline_without_adding_a_negative_value() {
        let c = Capture::new();
        let m = c.metrics();
        let mut n = NetworkCounters::default();
        n.publish(&m, &stats(vec![iface("veth1", 800, 800)]));
        n.publish(&m, &stats(vec![iface("veth1", 1_000, 1_000)]));
        // The interface vanishes, then comes back created anew.
        n.publish(&m, &stats(vec![]));
        n.publish(&m, &stats(vec![iface("veth1", 300, 1_200)]));
        // 200 before; then the 300 sent since the reset; received kept
        // growing (1,000 to 1,200), so it adds 200, not 1,200.
        assert_eq!(bytes(&c, "veth1", DIRECTION_TRANSMIT), 500.0);
        assert_eq!(bytes(&c, "veth1", DIRECTION_RECEIVE), 400.0);
        n.publish(&m, &stats(vec![iface("veth1", 350, 1_200)]));
        assert_eq!(bytes(&c, "veth1", DIRECTION_TRANSMIT), 550.0);
        assert!(n.resets >= 1);
        let dropped = c.dropped(metrics_protocol::backend::DropReason::NegativeCounter);
        assert_eq!(dropped, 0, "a negative value was recorded");
    }

    #[test]
    fn the_kept_totals_are_bounded() {
        let c = Capture::new();
        let m = c.metrics();
        let mut n = NetworkCounters::default();
        let many = |base: u64| {
            stats(
                (0..MAX_INTERFACES + 10)
                    .map(|i| iface(&format!("if{i}"), base, base))
                    .collect(),
            )
        };
        n.publish(&m, &many(100));
        assert!(n.last.len() <= MAX_INTERFACES);
        n.publish(&m, &many(150));
        assert!(n.last.len() <= MAX_INTERFACES);
        // A tracked interface counts its growth; an untracked one adds 0
        // (never its total since boot).
        assert_eq!(bytes(&c, "if0", DIRECTION_TRANSMIT), 50.0);
        let last = format!("if{}", MAX_INTERFACES + 9);
        assert_eq!(bytes(&c, &last, DIRECTION_TRANSMIT), 0.0);
        // Vanished interfaces are forgotten when new ones need the room.
        n.publish(&m, &stats(vec![iface("new0", 7, 7)]));
        n.publish(&m, &stats(vec![iface("new0", 9, 7)]));
        assert_eq!(bytes(&c, "new0", DIRECTION_TRANSMIT), 2.0);
    }
}
