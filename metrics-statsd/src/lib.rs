//! The StatsD backend: sends what libraries record to a StatsD daemon
//! (Etsy StatsD, Datadog's agent, Telegraf) over UDP, without ever making the
//! recording thread wait.
//!
//! ```
//! use metrics_protocol::MetricCollector;
//! use metrics_statsd::{StatsdConfig, StatsdMetrics, TagFlavor};
//!
//! # let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! # let addr = receiver.local_addr().unwrap().to_string();
//! let statsd = StatsdMetrics::new(StatsdConfig {
//!     addr, // "127.0.0.1:8125"
//!     prefix: "api".into(),
//!     flavor: TagFlavor::DogStatsd,
//!     ..Default::default()
//! })?;
//! statsd.record_counter("http.requests", 1.0, &[("method", "GET")]);
//! statsd.shutdown()?; // flushes: every sample recorded before reaches the daemon
//! # let mut buf = [0u8; 1500];
//! # let n = receiver.recv(&mut buf).unwrap();
//! # assert_eq!(&buf[..n], b"api.http.requests:1|c|#method:GET");
//! # Ok::<(), metrics_protocol::MetricsError>(())
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
//! - **Tags** go on the wire in one canonical order (sorted by key), common
//!   tags merged in, a call's tag overriding a common tag of the same key.
//!   Names, keys and values are sanitised (`:`, `|`, `@`, `#`, `,`, `;`,
//!   `=`, whitespace and control characters become `_`): no input produces a
//!   second or a malformed line.
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
//! - **Queries** are not StatsD's job: every [`MetricsAggregator`] method and
//!   `get_timing_stats`/`get_success_rate` answer
//!   [`MetricsError::Unsupported`]; use a `Fanout` with `metrics-memory` for
//!   local queries.
//!
//! # Why cadence, and what is ours
//!
//! The socket side is cadence's `UdpMetricSink`. Batching, aggregation,
//! retries and pacing are ours: cadence's buffered sink cannot tell how many
//! lines a failed datagram held (every drop must be counted, and counter
//! totals put back), and it has no in-process aggregation, which is what
//! makes a counter a lookup and an atomic add.

#![deny(missing_docs)]

mod config;
mod format;
mod sender;
mod table;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use metrics_kit::{DropCounters, RunningTimers, with_outcome_counter};
use metrics_protocol::system::{ExportFormat, MetricSummary, MetricValue, MetricsAggregator};
use metrics_protocol::validate::{self, SortedTags};
use metrics_protocol::{
    BackendHealth, DropReason, HealthStatus, MetricCollector, MetricType, MetricsError,
    PerformanceTimer, SuccessFailureTracker, Tags, TimerId, TimingResult, TimingStats,
};
use parking_lot::Mutex;

pub use config::{StatsdConfig, TagFlavor};
pub use format::sanitize;
pub use table::OVERFLOW_NAME;

const BACKEND: &str = "statsd";
const MAX_RUNNING_TIMERS: usize = 10_000;

/// What a sample is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    GaugeDelta,
    Timer,
    Histogram,
}

impl Kind {
    /// The wire type. Plain StatsD has no histogram type (the Etsy daemon
    /// adds `h` lines up as a counter), so outside DogStatsD a histogram
    /// sample goes out as a timer, whose percentiles the daemon computes.
    fn wire(self, flavor: TagFlavor) -> &'static str {
        match self {
            Kind::Counter => "c",
            Kind::Gauge | Kind::GaugeDelta => "g",
            Kind::Timer => "ms",
            Kind::Histogram if flavor == TagFlavor::DogStatsd => "h",
            Kind::Histogram => "ms",
        }
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
    pub fn new(config: StatsdConfig) -> Result<Self, MetricsError> {
        config.validate()?;
        let addr = config
            .addr
            .to_socket_addrs()
            .map_err(|e| MetricsError::config("addr", &config.addr, e.to_string()))?
            .next()
            .ok_or_else(|| MetricsError::config("addr", &config.addr, "resolves to no address"))?;
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket =
            UdpSocket::bind(bind).map_err(|e| MetricsError::io("binding the StatsD socket", e))?;
        socket
            .connect(addr)
            .map_err(|e| MetricsError::io(format!("connecting to {addr}"), e))?;
        let probe = socket
            .try_clone()
            .map_err(|e| MetricsError::io("cloning the StatsD socket", e))?;
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
            .map_err(|e| MetricsError::io("starting the StatsD sender thread", e))?;
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
    /// their samples are counted as `send_failed` in [`MetricCollector::health`].
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

    fn render(&self, name: &str, tags: &[(&str, &str)]) -> format::Rendered {
        let c = &self.shared.config;
        format::render(
            &c.prefix,
            name,
            tags,
            &c.common_tags,
            c.flavor,
            c.fold_tags_into_name,
        )
    }

    fn record(&self, kind: Kind, name: &str, value: f64, tags: Tags<'_>) {
        let outcome = (|| {
            if self.shared.closed.load(Ordering::Relaxed) {
                return Err(DropReason::SendFailed);
            }
            validate::check_name(name)?;
            if kind == Kind::Counter {
                validate::check_counter_increment(value)?;
            } else {
                validate::check_value(value)?;
            }
            // A timer line must not be negative (the daemon rejects it);
            // the wire type decides what goes out as one.
            if value < 0.0 && kind.wire(self.shared.config.flavor) == "ms" {
                return Err(DropReason::InvalidValue);
            }
            let sorted = SortedTags::new(tags)?;
            let series_kind = if kind == Kind::GaugeDelta {
                Kind::Gauge
            } else {
                kind
            };
            let table = &self.shared.table;
            let render = |n: &str, t: &[(&str, &str)]| self.render(n, t);
            // Counters and gauges: aggregate in place, under the shard's read lock.
            if self.shared.config.combine_counters
                && matches!(kind, Kind::Counter | Kind::Gauge | Kind::GaugeDelta)
            {
                table.with(series_kind, name, sorted.as_slice(), render, |f| {
                    match kind {
                        Kind::Counter => f.entry.add_counter(value),
                        Kind::Gauge => f.entry.set_gauge(value),
                        _ => f.entry.adjust_gauge(value),
                    }
                    f.mark_dirty();
                });
                return Ok(());
            }
            let rate = match kind {
                Kind::Timer => self.shared.config.timer_sample_rate,
                Kind::Histogram => self.shared.config.histogram_sample_rate,
                _ => 1.0,
            };
            if rate < 1.0 && !sampled(rate) {
                return Ok(()); // sampled out: the daemon scales by 1/rate
            }
            let series = table.with(series_kind, name, sorted.as_slice(), render, |f| {
                f.entry.clone()
            });
            match self.queue.try_send(sender::Sample {
                series,
                value,
                rate,
                op: kind,
            }) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(DropReason::QueueFull),
                Err(TrySendError::Disconnected(_)) => Err(DropReason::SendFailed),
            }
        })();
        if let Err(reason) = outcome {
            self.shared.drops.record(reason);
        }
    }
}

/// A cheap per-thread random draw for sample rates.
fn sampled(rate: f64) -> bool {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::thread::current().id().hash(&mut h);
            Instant::now().hash(&mut h);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < rate
    })
}

impl Drop for StatsdMetrics {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "StatsD backend dropped without a clean shutdown");
        }
    }
}

fn unsupported(operation: &'static str) -> MetricsError {
    MetricsError::Unsupported {
        operation,
        backend: BACKEND,
    }
}

impl MetricCollector for StatsdMetrics {
    fn record_counter<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(Kind::Counter, name, value, tags);
    }
    fn record_gauge<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(Kind::Gauge, name, value, tags);
    }
    fn adjust_gauge<'a>(&self, name: &'a str, delta: f64, tags: Tags<'a>) {
        self.record(Kind::GaugeDelta, name, delta, tags);
    }
    fn record_histogram<'a>(&self, name: &'a str, value: f64, tags: Tags<'a>) {
        self.record(Kind::Histogram, name, value, tags);
    }
    fn record_timer<'a>(&self, name: &'a str, duration: Duration, tags: Tags<'a>) {
        self.record(Kind::Timer, name, duration.as_secs_f64() * 1e3, tags);
    }

    fn flush(&self) -> Result<(), MetricsError> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = self.ctrl.send(sender::Ctrl::Flush(tx));
        rx.recv_timeout(Duration::from_millis(
            self.shared.config.shutdown_timeout_ms,
        ))
        .map_err(|_| {
            MetricsError::io(
                "flushing the StatsD sender",
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the sender did not answer"),
            )
        })
    }

    fn health(&self) -> Vec<BackendHealth> {
        let sh = &self.shared;
        let st = &sh.stats;
        let mut h = BackendHealth::healthy(BACKEND);
        h.dropped = sh.drops.snapshot();
        let reachable = st.reachable.load(Ordering::Relaxed);
        let alive = self
            .thread
            .lock()
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        let now = Instant::now();
        let last_error = st.last_error.lock().clone();
        for (k, v) in [
            ("series", sh.table.len() as f64),
            ("series_max", sh.config.max_series as f64),
            (
                "series_overflowed_samples",
                sh.table.overflowed.load(Ordering::Relaxed) as f64,
            ),
            (
                "series_evicted",
                sh.table.evicted.load(Ordering::Relaxed) as f64,
            ),
            ("queue_depth", self.queue.len() as f64),
            ("queue_capacity", sh.config.queue_capacity as f64),
            (
                "sent_datagrams",
                st.datagrams.load(Ordering::Relaxed) as f64,
            ),
            ("sent_lines", st.lines.load(Ordering::Relaxed) as f64),
            ("lost_lines", st.lost_lines.load(Ordering::Relaxed) as f64),
            (
                "retry_pending_samples",
                st.retry_pending.load(Ordering::Relaxed) as f64,
            ),
            ("send_errors", st.send_errors.load(Ordering::Relaxed) as f64),
            ("reachable", f64::from(u8::from(reachable))),
            ("sender_alive", f64::from(u8::from(alive))),
        ] {
            h.details.insert(k.into(), v);
        }
        h.overflowed_metrics = sh.table.overflow_names();
        if let Some((msg, at)) = &last_error {
            let age = now.saturating_duration_since(*at).as_secs_f64();
            h.details.insert("last_error_age_s".into(), age);
            h.message = Some(format!("last send error {age:.1} s ago: {msg}"));
        }
        // Degraded while drops, losses or errors are recent (the last ten
        // flush intervals); history stays in the counters and the message.
        let window = Duration::from_millis(sh.config.flush_interval_ms.saturating_mul(10));
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < window);
        let total = h.total_dropped() + st.lost_lines.load(Ordering::Relaxed);
        let drops_at = {
            let mut seen = sh.drops_seen.lock();
            if seen.0 != total {
                *seen = (total, Some(now));
            }
            seen.1
        };
        h.status = if !alive && !sh.closed.load(Ordering::Relaxed) || !reachable {
            HealthStatus::Unhealthy
        } else if recent(drops_at) || recent(last_error.map(|e| e.1)) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        vec![h]
    }
}

impl PerformanceTimer for StatsdMetrics {
    fn start_timer<'a>(&self, operation_name: &'a str, metadata: Tags<'a>) -> TimerId {
        self.timers
            .start_counted(operation_name, metadata, &self.shared.drops)
    }

    fn stop_timer(&self, timer_id: TimerId, success: bool) -> Result<TimingResult, MetricsError> {
        self.timers.stop_into(self, timer_id, success)
    }

    fn get_timing_stats(
        &self,
        _name: &str,
        _window: Option<Duration>,
    ) -> Result<TimingStats, MetricsError> {
        Err(unsupported("get_timing_stats"))
    }
}

impl SuccessFailureTracker for StatsdMetrics {
    fn record_success<'a>(&self, operation: &'a str, metadata: Tags<'a>) {
        with_outcome_counter(operation, None, metadata, |name, tags| {
            self.record(Kind::Counter, name, 1.0, tags)
        });
    }

    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        with_outcome_counter(operation, Some(error_type), metadata, |name, tags| {
            self.record(Kind::Counter, name, 1.0, tags)
        });
    }

    fn get_success_rate(&self, _op: &str, _w: Option<Duration>) -> Result<f64, MetricsError> {
        Err(unsupported("get_success_rate"))
    }

    fn get_failure_breakdown(
        &self,
        _op: &str,
        _w: Option<Duration>,
    ) -> Result<BTreeMap<String, u64>, MetricsError> {
        Err(unsupported("get_failure_breakdown"))
    }
}

impl MetricsAggregator for StatsdMetrics {
    fn get_metric_summary(
        &self,
        _name: &str,
        _w: Option<Duration>,
    ) -> Result<MetricSummary, MetricsError> {
        Err(unsupported("get_metric_summary"))
    }
    fn get_metrics_by_tag<'a>(&self, _filter: Tags<'a>) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("get_metrics_by_tag"))
    }
    fn export_metrics(&self, _format: ExportFormat) -> Result<String, MetricsError> {
        Err(unsupported("export_metrics"))
    }
    fn get_top_metrics(
        &self,
        _t: MetricType,
        _limit: usize,
    ) -> Result<Vec<MetricValue>, MetricsError> {
        Err(unsupported("get_top_metrics"))
    }
}

#[cfg(test)]
mod tests;
