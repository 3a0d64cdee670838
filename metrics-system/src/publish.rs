//! Turns typed readings into gauges named in [`crate::names`].

use metrics_protocol::system::{CpuUsage, DiskUsage, MemoryUsage, NetworkStats, ProcessUsage};
use metrics_protocol::{MetricCollector, MetricType, MetricUnit};

use crate::names::*;

/// Describes the gauges that have a unit (bytes, seconds), so exporters
/// name them in base units (`process_memory_usage_bytes`); counts and
/// 0..1 ratios have none to give.
pub(crate) fn describe(c: &dyn MetricCollector) {
    use MetricUnit::{Bytes, Seconds};
    let described = [
        (MEMORY_USAGE, Bytes, "Memory in use or free"),
        (MEMORY_LIMIT, Bytes, "Installed memory"),
        (MEMORY_AVAILABLE, Bytes, "Memory available without swapping"),
        (PAGING_USAGE, Bytes, "Swap in use or free"),
        (FILESYSTEM_USAGE, Bytes, "File system space by state"),
        (NETWORK_IO, Bytes, "Network bytes since boot"),
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
}

/// Gauges of memory and swap.
pub(crate) fn memory(c: &dyn MetricCollector, m: &MemoryUsage) {
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
pub(crate) fn cpu(c: &dyn MetricCollector, u: &CpuUsage) {
    c.record_gauge(CPU_UTILIZATION, u.percent / 100.0, &[]);
    for (i, pct) in u.per_core_percent.iter().enumerate() {
        let core = i.to_string();
        c.record_gauge(CPU_UTILIZATION, pct / 100.0, &[(TAG_CPU, core.as_str())]);
    }
    c.record_gauge(CPU_LOGICAL_COUNT, u.logical_cores as f64, &[]);
    if let Some(n) = u.physical_cores {
        c.record_gauge(CPU_PHYSICAL_COUNT, n as f64, &[]);
    }
    if let Some(l) = u.load_average {
        c.record_gauge(CPU_LOAD_1M, l.one, &[]);
        c.record_gauge(CPU_LOAD_5M, l.five, &[]);
        c.record_gauge(CPU_LOAD_15M, l.fifteen, &[]);
    }
}

/// Gauges of each file system.
pub(crate) fn disks(c: &dyn MetricCollector, disks: &[DiskUsage]) {
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

/// Gauges of each network interface (running totals since boot).
pub(crate) fn network(c: &dyn MetricCollector, n: &NetworkStats) {
    for i in &n.interfaces {
        let dev = i.name.as_str();
        for (name, tx, rx) in [
            (NETWORK_IO, i.bytes_sent, i.bytes_received),
            (NETWORK_PACKETS, i.packets_sent, i.packets_received),
            (NETWORK_ERRORS, i.errors_out, i.errors_in),
        ] {
            c.record_gauge(
                name,
                tx as f64,
                &[(TAG_DEVICE, dev), (TAG_DIRECTION, DIRECTION_TRANSMIT)],
            );
            c.record_gauge(
                name,
                rx as f64,
                &[(TAG_DEVICE, dev), (TAG_DIRECTION, DIRECTION_RECEIVE)],
            );
        }
    }
}

/// Gauges of this process. `logical_cores` turns the per-core percent into
/// OpenTelemetry's whole-machine ratio; 0 means unknown (published per core).
pub(crate) fn process(c: &dyn MetricCollector, p: &ProcessUsage, logical_cores: usize) {
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
        c.record_gauge(PROCESS_THREAD_COUNT, t as f64, &[]);
    }
    c.record_gauge(PROCESS_UPTIME, p.uptime.as_secs_f64(), &[]);
}
