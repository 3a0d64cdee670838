//! The StatsD backend: sends what libraries record to a StatsD daemon
//! (Etsy StatsD, Datadog's agent, Telegraf) over UDP, without ever making the
//! recording thread wait.
//!
//! ```
//! use std::sync::Arc;
//! use metrics_protocol::Metrics;
//! use metrics_statsd::{StatsdConfig, StatsdMetrics, TagFlavor};
//!
//! # let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! # let addr = receiver.local_addr().unwrap().to_string();
//! let statsd = Arc::new(StatsdMetrics::new(StatsdConfig {
//!     addr, // "127.0.0.1:8125"
//!     prefix: "api".into(),
//!     flavor: TagFlavor::DogStatsd,
//!     ..Default::default()
//! })?);
//! let metrics = Metrics::new(statsd.clone()); // what libraries are handed
//! metrics.record_counter("http.requests", 1.0, &[("method", "GET")]);
//! statsd.shutdown()?; // flushes: every sample recorded before reaches the daemon
//! # let mut buf = [0u8; 1500];
//! # let n = receiver.recv(&mut buf).unwrap();
//! # assert_eq!(&buf[..n], b"api.http.requests:1|c|#method:GET");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Nothing blocks the caller.** Counters and gauges are aggregated in
//!   process between flushes (a map lookup and an atomic add, or a short
//!   per-series lock for gauges): one line per series per flush, with the
//!   exact total. Timers and histograms are queued per sample, pre-rendered,
//!   on a bounded queue (`queue_capacity`); when it is full the sample is
//!   dropped and counted as `queue_full`. One background thread drains the
//!   queue, packs lines into datagrams of at most `max_datagram_bytes`
//!   (default 1432) and sends them on size or every `flush_interval_ms`.
//! - **Memory**: the queue holds at most `queue_capacity` samples; the
//!   series table at most `max_series` series (default 100,000). Samples of
//!   new series past that are folded into one series per kind named
//!   [`OVERFLOW_NAME`] and counted (`series_overflowed_samples` and
//!   `overflowed_metrics` in health). A series with no sample for
//!   `idle_flushes` flushes is removed. A flush costs what changed since the
//!   last one (recording marks a series dirty once per flush), never a walk
//!   of the table, and the table is sharded so that a caller waits at most
//!   for a new series' insertion into one shard.
//! - **Series** are keyed on the fingerprint a
//!   [`Key`](metrics_protocol::Key) computed where the measurement was made:
//!   a name, tags or value are neither checked nor hashed again here (the
//!   protocol refused what breaks its rules before, and the refusal is
//!   counted in this backend's health). Tag order does not matter.
//! - **Tags** go on the wire in one canonical order (sorted by key), common
//!   tags merged in, a call's tag overriding a common tag of the same key.
//!   Names, keys and values are sanitised (`:`, `|`, `@`, `#`, `,`, `;`,
//!   `=`, whitespace and control characters become `_`): no input produces a
//!   second or a malformed line.
//! - **Outcomes** (successes and failures of an operation, from a timing
//!   guard or `record_success`/`record_failure`) are counters
//!   `<op>.success` and `<op>.failure`, the latter tagged `error_type`,
//!   aggregated like any counter. (Counted by hand under the same name as
//!   well, such a counter may go out as two lines a flush, which the daemon
//!   adds up.)
//! - **Bound handles** ([`Metrics::counter`](metrics_protocol::Metrics::counter)
//!   and the like) record into their series without a lookup; a series
//!   with a live handle is never evicted as idle.
//! - **Gauges** are absolute; a negative absolute value goes out as `0` then
//!   `-N`, since a daemon reads a lone `-N` as a relative change.
//!   `adjust_gauge` sends relative changes (`+N`/`-N`).
//! - **Histograms** are `|h` with the DogStatsD flavor. Plain StatsD has no
//!   histogram type (the Etsy daemon adds `h` lines up as a counter), so
//!   with the `etsy` and `none` flavors they go out as timers (`|ms`), whose
//!   percentiles the daemon computes; a negative value cannot be a timer
//!   there and is dropped, counted as `invalid_value`.
//! - **Daemon down**: the socket is connected, so the kernel reports a
//!   refused datagram as a pending socket error, read before each send (and
//!   on each flush). A counter or gauge aggregate in a refused datagram goes
//!   back to its series and out again with a later flush, at most
//!   `max_send_attempts` times and for `retry_max_age_ms`; then its samples
//!   are dropped and counted as `send_failed` (in samples: a lost counter
//!   line of 500 increments counts 500). A lost timer or histogram line is
//!   one sample, counted. Health reports dropped samples (`dropped`) apart
//!   from lost lines (`lost_lines`); `sent_lines` counts only lines the OS
//!   accepted and did not report lost. `reachable` is 0 after a refusal and
//!   1 again once a datagram goes through; the last error stays in the
//!   message, with its age, and the status is degraded only while drops or
//!   errors are recent (ten flush intervals).
//! - **Pacing**: a flush sends counters and gauges first, then queued
//!   samples, and at most `max_datagrams_per_sec` datagrams a second (bursts
//!   of 32), so that a shutdown with a full queue does not overflow the
//!   daemon's receive buffer, where losses are silent. When the daemon is
//!   on this host (a loopback address, Linux), the sender also reads the
//!   daemon socket's receive queue (`/proc/net/udp`) every few datagrams of
//!   a burst and waits (up to a second at a time) while it is more than half
//!   of the default buffer (`net.core.rmem_default`): a daemon slowed by a
//!   busy machine is waited for rather than overflowed.
//! - **Shutdown** ([`StatsdMetrics::shutdown`], also on drop) flushes the
//!   aggregates and the queue, sending until `shutdown_timeout_ms` (what is
//!   still queued then is counted), then waits up to `shutdown_probe_ms` for
//!   the kernel to report a refusal of the last datagram. Lines lost in the
//!   final flush are counted and make `shutdown` return an error. Samples
//!   recorded after shutdown are dropped and counted.
//! - **Timers by id**: [`PerformanceTimer`](metrics_protocol::PerformanceTimer)'s
//!   `start_timer`/`stop_timer` keep at most 10,000 running timers (the
//!   oldest is evicted, counted as `timer_evicted`); stopping one records
//!   its duration and outcome like a timing guard.
//! - **Write-only**: StatsD answers no query (it implements no reading
//!   trait); put it beside `metrics-memory` in `metrics-kit`'s `Fanout`
//!   for local queries.
//!
//! # Why cadence, and what is ours
//!
//! The socket side is cadence's `UdpMetricSink`. Batching, aggregation,
//! retries and pacing are ours: cadence's buffered sink cannot tell how many
//! lines a failed datagram held (every drop must be counted, and counter
//! totals put back), and it has no in-process aggregation, which is what
//! makes a counter a lookup and an atomic add.

#![deny(missing_docs)]

mod collector;
mod config;
mod error;
mod format;
mod record;
mod sender;
mod table;

use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use metrics_kit::{DropCounters, RunningTimers};
use metrics_protocol::backend::DropReason;
use metrics_protocol::{MetricType, MetricsError};
use parking_lot::Mutex;

pub use config::{StatsdConfig, TagFlavor};
pub use error::{ConfigError, StartError};
pub use format::sanitize;
pub use table::OVERFLOW_NAME;

const BACKEND: &str = "statsd";
const MAX_RUNNING_TIMERS: usize = 10_000;

/// The wire type of a series of `kind`. Plain StatsD has no histogram
/// type (the Etsy daemon adds `h` lines up as a counter), so outside
/// DogStatsD a histogram sample goes out as a timer, whose percentiles the
/// daemon computes. No measurement has the kind `Rate`; it would be a
/// counter.
pub(crate) fn wire(kind: MetricType, flavor: TagFlavor) -> &'static str {
    match kind {
        MetricType::Counter | MetricType::Rate => "c",
        MetricType::Gauge => "g",
        MetricType::Timer => "ms",
        MetricType::Histogram if flavor == TagFlavor::DogStatsd => "h",
        MetricType::Histogram => "ms",
    }
}

/// Send statistics, shared with the sender.
#[derive(Debug, Default)]
pub(crate) struct SendStats {
    datagrams: AtomicU64,
    /// Lines the OS accepted and did not later report lost.
    lines: AtomicU64,
    /// Lines in datagrams known lost (their counter and gauge values may
    /// have gone out again later).
    lost_lines: AtomicU64,
    send_errors: AtomicU64,
    reachable: AtomicBool,
    /// Samples waiting in series backlogs for another try.
    retry_pending: AtomicU64,
    last_error: Mutex<Option<(String, Instant)>>,
}

impl SendStats {
    fn error(&self, e: &std::io::Error) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some((e.to_string(), Instant::now()));
    }
}

/// What the collector and the sender share.
pub(crate) struct SharedState {
    config: StatsdConfig,
    table: table::Table,
    drops: DropCounters,
    stats: SendStats,
    closed: AtomicBool,
    /// Total drops at the last health report, and when that total changed.
    drops_seen: Mutex<(u64, Option<Instant>)>,
}

/// The StatsD backend (see the crate docs).
pub struct StatsdMetrics {
    shared: Arc<SharedState>,
    queue: Sender<sender::Sample>,
    ctrl: Sender<sender::Ctrl>,
    thread: Mutex<Option<JoinHandle<()>>>,
    timers: RunningTimers,
}

impl std::fmt::Debug for StatsdMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsdMetrics")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl StatsdMetrics {
    /// Connects a UDP socket to `config.addr` (no packet is sent) and starts
    /// the sender thread. Errors name the field that is wrong.
    pub fn new(config: StatsdConfig) -> Result<Self, StartError> {
        config.validate()?;
        let addr = config
            .addr
            .to_socket_addrs()
            .map_err(|e| ConfigError::new("addr", &config.addr, e.to_string()))?
            .next()
            .ok_or_else(|| ConfigError::new("addr", &config.addr, "resolves to no address"))?;
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket =
            UdpSocket::bind(bind).map_err(|e| StartError::io("binding the StatsD socket", e))?;
        socket
            .connect(addr)
            .map_err(|e| StartError::io(format!("connecting to {addr}"), e))?;
        let probe = socket
            .try_clone()
            .map_err(|e| StartError::io("cloning the StatsD socket", e))?;
        let (queue, rx) = crossbeam_channel::bounded(config.queue_capacity);
        let (ctrl, ctrl_rx) = crossbeam_channel::unbounded();
        let (dirty, dirty_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(SharedState {
            table: table::Table::new(config.max_series, dirty.clone()),
            config,
            drops: DropCounters::new(),
            stats: SendStats::default(),
            closed: AtomicBool::new(false),
            drops_seen: Mutex::new((0, None)),
        });
        shared.stats.reachable.store(true, Ordering::Relaxed);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("metrics-statsd-sender".into())
            .spawn(move || {
                sender::run(sender::Channels {
                    shared: s,
                    socket,
                    probe,
                    samples: rx,
                    ctrl: ctrl_rx,
                    dirty: dirty_rx,
                    dirty_tx: dirty,
                })
            })
            .map_err(|e| StartError::io("starting the StatsD sender thread", e))?;
        Ok(StatsdMetrics {
            shared,
            queue,
            ctrl,
            thread: Mutex::new(Some(thread)),
            timers: RunningTimers::new(MAX_RUNNING_TIMERS),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &StatsdConfig {
        &self.shared.config
    }

    /// Flushes everything and stops the sender, waiting at most
    /// `shutdown_timeout_ms` (plus the loss probe). Idempotent; later samples
    /// are dropped and counted.
    ///
    /// Errors when the sender did not finish in time, or when lines of the
    /// final flush were lost (the daemon refused them, or the time ran out):
    /// their samples are counted as `send_failed` in [`MetricCollector::health`](metrics_protocol::MetricCollector::health).
    pub fn shutdown(&self) -> Result<(), MetricsError> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let c = &self.shared.config;
        let timeout = Duration::from_millis(c.shutdown_timeout_ms);
        let _ = self.ctrl.send(sender::Ctrl::Shutdown {
            reply: tx,
            deadline: Instant::now() + timeout,
        });
        // The sender stops sending at the deadline, then probes for a loss.
        let grace = Duration::from_millis(c.shutdown_probe_ms) + Duration::from_secs(1);
        match rx.recv_timeout(timeout + grace) {
            Ok(report) => {
                if let Some(t) = self.thread.lock().take() {
                    let _ = t.join();
                }
                if report.lost_lines > 0 || report.dropped_samples > 0 {
                    return Err(MetricsError::io(
                        "the final StatsD flush",
                        std::io::Error::other(format!(
                            "{} line(s) lost, {} sample(s) dropped (daemon unreachable or shutdown timeout)",
                            report.lost_lines, report.dropped_samples
                        )),
                    ));
                }
                Ok(())
            }
            Err(_) => Err(MetricsError::io(
                "shutting down the StatsD sender",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", timeout + grace),
                ),
            )),
        }
    }

    /// Samples dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.shared.drops.get(reason)
    }
}

impl Drop for StatsdMetrics {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "StatsD backend dropped without a clean shutdown");
        }
    }
}

#[cfg(test)]
mod tests;
