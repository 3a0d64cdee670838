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
//!   aggregation map one entry per series ever recorded.
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
//! - **Daemon down**: the socket is connected, so a closed port shows up as
//!   send errors (the kernel reports a lost datagram on the next send); the
//!   lost datagram's lines are counted as `send_failed`, `health()` reports
//!   the daemon unreachable, and sending resumes by itself when the daemon
//!   is back. UDP tells of a loss only on the next send, so the very last
//!   datagram before a shutdown can be lost uncounted.
//! - **Shutdown** ([`StatsdMetrics::shutdown`], also on drop) flushes the
//!   queue and the aggregates and waits, at most `shutdown_timeout_ms`, for
//!   the sender. Samples recorded after shutdown are dropped and counted.
//! - **Queries** are not StatsD's job: every [`MetricsAggregator`] method and
//!   `get_timing_stats`/`get_success_rate` answer
//!   [`MetricsError::Unsupported`]; use a `Fanout` with `metrics-memory` for
//!   local queries.
//!
//! # Why cadence, and what is ours
//!
//! The socket side is cadence's `UdpMetricSink`. Batching and aggregation
//! are ours: cadence's buffered sink cannot tell how many lines a failed
//! datagram held (every drop must be counted), and it has no in-process
//! aggregation, which is what makes a counter a lookup and an atomic add.

#![deny(missing_docs)]

mod config;
mod format;
mod sender;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use hashbrown::Equivalent;
use metrics_kit::{DropCounters, RunningTimers};
use metrics_protocol::system::{ExportFormat, MetricSummary, MetricValue, MetricsAggregator};
use metrics_protocol::validate::{self, SortedTags};
use metrics_protocol::{
    BackendHealth, DropReason, HealthStatus, MetricCollector, MetricType, MetricsError,
    PerformanceTimer, SuccessFailureTracker, Tags, TimerId, TimingResult, TimingStats,
};
use parking_lot::{Mutex, RwLock};

pub use config::{StatsdConfig, TagFlavor};
pub use format::sanitize;

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

#[derive(Debug, Default)]
pub(crate) struct GaugeAgg {
    set: Option<f64>,
    delta: f64,
    changed: bool,
}

/// One series: its rendered line parts and its aggregate.
#[derive(Debug)]
pub(crate) struct Entry {
    kind: Kind,
    rendered: format::Rendered,
    count: AtomicU64,
    /// f64 bits.
    sum: AtomicU64,
    gauge: Mutex<GaugeAgg>,
}

impl Entry {
    fn add_counter(&self, v: f64) {
        let mut cur = self.sum.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .sum
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(x) => cur = x,
            }
        }
        self.count.fetch_add(1, Ordering::Release);
    }

    /// Takes the counter's aggregate, leaving zero.
    fn take_counter(&self) -> (u64, f64) {
        let count = self.count.swap(0, Ordering::Acquire);
        if count == 0 {
            return (0, 0.0);
        }
        // Increments that land between the two swaps go to the next flush
        // (their count) or this one (their sum): the total stays exact.
        let sum = f64::from_bits(self.sum.swap(0f64.to_bits(), Ordering::AcqRel));
        (count, sum)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    kind: Kind,
    name: Box<str>,
    tags: Box<[(Box<str>, Box<str>)]>,
}

struct KeyRef<'a> {
    kind: Kind,
    name: &'a str,
    tags: &'a [(&'a str, &'a str)],
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.kind.hash(h);
        self.name.hash(h);
        h.write_usize(self.tags.len());
        for (k, v) in self.tags.iter() {
            k.hash(h);
            v.hash(h);
        }
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.kind.hash(h);
        self.name.hash(h);
        h.write_usize(self.tags.len());
        for (k, v) in self.tags {
            k.hash(h);
            v.hash(h);
        }
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.kind == key.kind
            && self.name == &*key.name
            && self.tags.len() == key.tags.len()
            && self
                .tags
                .iter()
                .zip(key.tags.iter())
                .all(|((a, b), (c, d))| *a == &**c && *b == &**d)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    datagrams: AtomicU64,
    lines: AtomicU64,
    send_errors: AtomicU64,
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// What the collector and the sender share.
pub(crate) struct Shared {
    config: StatsdConfig,
    series: RwLock<hashbrown::HashMap<Key, Arc<Entry>>>,
    drops: DropCounters,
    stats: Stats,
    closed: AtomicBool,
}

/// The StatsD backend (see the crate docs).
pub struct StatsdMetrics {
    shared: Arc<Shared>,
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
        let (queue, rx) = crossbeam_channel::bounded(config.queue_capacity);
        let (ctrl, ctrl_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            config,
            series: RwLock::new(hashbrown::HashMap::new()),
            drops: DropCounters::new(),
            stats: Stats::default(),
            closed: AtomicBool::new(false),
        });
        shared.stats.reachable.store(true, Ordering::Relaxed);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("metrics-statsd-sender".into())
            .spawn(move || sender::run(s, socket, rx, ctrl_rx))
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
    /// `shutdown_timeout_ms`. Idempotent; later samples are dropped and counted.
    pub fn shutdown(&self) -> Result<(), MetricsError> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = self.ctrl.send(sender::Ctrl::Shutdown(tx));
        let timeout = Duration::from_millis(self.shared.config.shutdown_timeout_ms);
        match rx.recv_timeout(timeout) {
            Ok(()) => {
                if let Some(t) = self.thread.lock().take() {
                    let _ = t.join();
                }
                Ok(())
            }
            Err(_) => Err(MetricsError::io(
                "shutting down the StatsD sender",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                ),
            )),
        }
    }

    /// Samples dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.shared.drops.get(reason)
    }

    fn entry(&self, kind: Kind, name: &str, tags: &SortedTags<'_>) -> Arc<Entry> {
        let key = KeyRef {
            kind,
            name,
            tags: tags.as_slice(),
        };
        if let Some(e) = self.shared.series.read().get(&key) {
            return e.clone();
        }
        let c = &self.shared.config;
        let rendered = format::render(
            &c.prefix,
            name,
            tags.as_slice(),
            &c.common_tags,
            c.flavor,
            c.fold_tags_into_name,
        );
        self.shared
            .series
            .write()
            .entry(Key {
                kind,
                name: name.into(),
                tags: tags
                    .as_slice()
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            })
            .or_insert_with(|| {
                Arc::new(Entry {
                    kind,
                    rendered,
                    count: AtomicU64::new(0),
                    sum: AtomicU64::new(0f64.to_bits()),
                    gauge: Mutex::new(GaugeAgg::default()),
                })
            })
            .clone()
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
            let aggregate = self.shared.config.aggregate;
            // Counters and gauges: aggregate in place, under the map's read lock.
            if aggregate && matches!(kind, Kind::Counter | Kind::Gauge | Kind::GaugeDelta) {
                let key = KeyRef {
                    kind: series_kind,
                    name,
                    tags: sorted.as_slice(),
                };
                let found = self.shared.series.read().get(&key).cloned();
                let e = found.unwrap_or_else(|| self.entry(series_kind, name, &sorted));
                match kind {
                    Kind::Counter => e.add_counter(value),
                    Kind::Gauge => {
                        let mut g = e.gauge.lock();
                        (g.set, g.delta, g.changed) = (Some(value), 0.0, true);
                    }
                    _ => {
                        let mut g = e.gauge.lock();
                        g.delta += value;
                        g.changed = true;
                    }
                }
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
            let series = self.entry(series_kind, name, &sorted);
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
        let st = &self.shared.stats;
        let mut h = BackendHealth::healthy(BACKEND);
        h.dropped = self.shared.drops.snapshot();
        let reachable = st.reachable.load(Ordering::Relaxed);
        let alive = self
            .thread
            .lock()
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        for (k, v) in [
            ("queue_depth", self.queue.len() as f64),
            ("queue_capacity", self.shared.config.queue_capacity as f64),
            (
                "sent_datagrams",
                st.datagrams.load(Ordering::Relaxed) as f64,
            ),
            ("sent_lines", st.lines.load(Ordering::Relaxed) as f64),
            ("send_errors", st.send_errors.load(Ordering::Relaxed) as f64),
            ("reachable", f64::from(u8::from(reachable))),
            ("sender_alive", f64::from(u8::from(alive))),
        ] {
            h.details.insert(k.into(), v);
        }
        h.message = st.last_error.lock().clone();
        h.status = if !alive && !self.shared.closed.load(Ordering::Relaxed) || !reachable {
            HealthStatus::Unhealthy
        } else if h.total_dropped() > 0 {
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
        self.record(
            Kind::Counter,
            &format!("{operation}.success"),
            1.0,
            metadata,
        );
    }

    fn record_failure<'a>(&self, operation: &'a str, error_type: &'a str, metadata: Tags<'a>) {
        let mut tags: Vec<(&str, &str)> = metadata
            .iter()
            .filter(|(k, _)| *k != "error_type")
            .copied()
            .collect();
        tags.push(("error_type", error_type));
        self.record(Kind::Counter, &format!("{operation}.failure"), 1.0, &tags);
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
