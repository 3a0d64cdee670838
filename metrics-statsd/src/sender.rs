//! The background sender: takes the series that changed, drains the queue,
//! packs lines into datagrams, paces and sends them, and accounts for every
//! datagram the daemon refused.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cadence::{MetricSink, UdpMetricSink};
use crossbeam_channel::{Receiver, Sender, select};
use metrics_protocol::MetricType;
use metrics_protocol::backend::{DropReason, Value};

use crate::format;
use crate::table::{self, Agg, Backlog, Entry};
use crate::{SharedState, wire};

/// Datagrams sent back to back at most before pacing applies.
const BURST: f64 = 32.0;

/// One timer or histogram sample (or, with aggregation off, any counter
/// or gauge sample; an outcome is a counter sample by then).
pub(crate) struct Sample {
    pub series: Arc<Entry>,
    /// What the sample does (a gauge series also carries relative changes).
    pub value: Value,
    pub rate: f64,
}

/// Requests to the sender; each carries a channel to answer on.
pub(crate) enum Ctrl {
    Flush(Sender<()>),
    Shutdown {
        reply: Sender<ShutdownReport>,
        /// When to stop sending what is still queued (it is counted instead).
        deadline: Instant,
    },
}

/// What the final flush lost.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShutdownReport {
    pub lost_lines: u64,
    pub dropped_samples: u64,
}

/// Everything the sender thread owns.
pub(crate) struct Channels {
    pub shared: Arc<SharedState>,
    pub socket: UdpSocket,
    /// The same socket, for reading a pending error without sending.
    pub probe: UdpSocket,
    pub samples: Receiver<Sample>,
    pub ctrl: Receiver<Ctrl>,
    pub dirty: Receiver<Arc<Entry>>,
    pub dirty_tx: Sender<Arc<Entry>>,
}

/// A counter or gauge aggregate in a datagram: put back if it is lost.
struct Item {
    entry: Arc<Entry>,
    agg: Agg,
    attempts: u32,
    since: Instant,
}

/// What one datagram carries.
#[derive(Default)]
struct Datagram {
    lines: u64,
    /// Samples of lines that are not retried (timers, histograms).
    samples: u64,
    items: Vec<Item>,
}

/// A token bucket: at most `rate` datagrams a second, bursts of [`BURST`].
struct Pacer {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Pacer {
    fn wait(&mut self) {
        if self.rate <= 0.0 {
            return;
        }
        loop {
            let now = Instant::now();
            let dt = now.saturating_duration_since(self.at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(BURST);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            std::thread::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate));
        }
    }
}

/// The receive queue of the daemon's socket when the daemon is on this
/// host (Linux: `/proc/net/udp`), read during bursts so that the sender
/// waits while the daemon is behind, instead of overflowing its buffer.
struct PeerQueue {
    /// `:PPPP`, the port as `/proc/net/udp` writes it.
    port: String,
    table: &'static str,
    /// Half the default receive buffer (`net.core.rmem_default`).
    threshold: u64,
    since_check: u32,
}

impl PeerQueue {
    /// Datagrams sent between two reads of the queue during a burst.
    const EVERY: u32 = 4;
    /// The longest wait for the daemon before sending anyway.
    const MAX_WAIT: Duration = Duration::from_secs(1);

    fn new(peer: std::net::SocketAddr) -> Option<PeerQueue> {
        if !cfg!(target_os = "linux") || !peer.ip().is_loopback() {
            return None;
        }
        let rmem: u64 = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let q = PeerQueue {
            port: format!(":{:04X}", peer.port()),
            table: if peer.is_ipv6() {
                "/proc/net/udp6"
            } else {
                "/proc/net/udp"
            },
            threshold: rmem / 2,
            since_check: 0,
        };
        // Only when the table is readable here.
        std::fs::metadata(q.table).ok().map(|_| q)
    }

    /// Bytes waiting in the receive queue of the socket bound to the
    /// daemon's port, if there is one.
    fn queued(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.table).ok()?;
        text.lines().skip(1).find_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            if !local.ends_with(&self.port) {
                return None;
            }
            let queues = fields.nth(2)?; // tx_queue:rx_queue
            u64::from_str_radix(queues.split(':').nth(1)?, 16).ok()
        })
    }

    /// During a burst, every few datagrams: waits (at most [`Self::MAX_WAIT`])
    /// while the daemon's queue is more than half full.
    fn wait(&mut self, in_burst: bool) {
        self.since_check += 1;
        if !in_burst || self.since_check < Self::EVERY {
            return;
        }
        self.since_check = 0;
        let until = Instant::now() + Self::MAX_WAIT;
        while self.queued().is_some_and(|q| q > self.threshold) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct Flusher {
    shared: Arc<SharedState>,
    sink: UdpMetricSink,
    probe: UdpSocket,
    samples: Receiver<Sample>,
    dirty: Receiver<Arc<Entry>>,
    dirty_tx: Sender<Arc<Entry>>,
    buf: String,
    line: String,
    cur: Datagram,
    /// The last datagram the OS accepted: a later error reports its loss.
    last: Option<Datagram>,
    /// Flushes so far; series remember the last one they were active in.
    epoch: u64,
    /// Tracked series, bucketed by a flush they were active in.
    idle: BTreeMap<u64, Vec<Arc<Entry>>>,
    pacer: Pacer,
    peer_queue: Option<PeerQueue>,
    /// Set during the final flush: a loss is then final, and reported.
    final_report: Option<ShutdownReport>,
}

pub(crate) fn run(ch: Channels) {
    let (sink, peer_queue) = match ch.socket.peer_addr() {
        Ok(peer) => match UdpMetricSink::from(peer, ch.socket) {
            Ok(s) => (s, PeerQueue::new(peer)),
            Err(e) => {
                tracing::error!(error = %e, "StatsD sender could not start");
                return;
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "StatsD sender could not start");
            return;
        }
    };
    let c = &ch.shared.config;
    let interval = Duration::from_millis(c.flush_interval_ms);
    let mut f = Flusher {
        buf: String::with_capacity(c.max_datagram_bytes),
        line: String::with_capacity(128),
        cur: Datagram::default(),
        last: None,
        epoch: 1,
        idle: BTreeMap::new(),
        pacer: Pacer {
            rate: c.max_datagrams_per_sec as f64,
            tokens: BURST,
            at: Instant::now(),
        },
        final_report: None,
        peer_queue,
        sink,
        probe: ch.probe,
        samples: ch.samples,
        dirty: ch.dirty,
        dirty_tx: ch.dirty_tx,
        shared: ch.shared,
    };
    let ctrl = ch.ctrl;
    let mut next_flush = Instant::now() + interval;
    loop {
        // Checked here too: under a steady stream of samples the select
        // below always has one ready, and its timeout never fires.
        let now = Instant::now();
        if now >= next_flush {
            f.flush_aggregates();
            f.send();
            f.evict_idle();
            next_flush = Instant::now() + interval;
            continue;
        }
        let wait = next_flush.saturating_duration_since(now);
        select! {
            recv(f.samples) -> s => match s {
                Ok(s) => f.emit_sample(&s),
                Err(_) => {
                    f.flush_all(None);
                    return;
                }
            },
            recv(ctrl) -> c => match c {
                Ok(Ctrl::Flush(reply)) => {
                    f.flush_all(None);
                    let _ = reply.send(());
                }
                Ok(Ctrl::Shutdown { reply, deadline }) => {
                    let report = f.shutdown(deadline);
                    let _ = reply.send(report);
                    return;
                }
                Err(_) => return,
            },
            default(wait) => {} // the flush is due: done at the top
        }
    }
}

impl Flusher {
    /// The final flush, then a wait for the kernel to report whether the
    /// last datagram was refused (UDP reports it only after the fact).
    fn shutdown(&mut self, deadline: Instant) -> ShutdownReport {
        // A datagram lost before shutdown still gets its values into the
        // final flush; only what that flush loses is final.
        self.check_refused();
        self.final_report = Some(ShutdownReport::default());
        self.flush_all(Some(deadline));
        if self.last.is_some() {
            let probe_until =
                Instant::now() + Duration::from_millis(self.shared.config.shutdown_probe_ms);
            while !self.check_refused() && Instant::now() < probe_until {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        self.final_report.take().unwrap_or_default()
    }

    /// Counters and gauges first, then everything queued, then a send.
    /// Past `deadline`, queued samples are dropped and counted.
    fn flush_all(&mut self, deadline: Option<Instant>) {
        self.flush_aggregates();
        while let Ok(s) = self.samples.try_recv() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let left = 1 + self.samples.try_iter().count() as u64;
                self.shared.drops.add(DropReason::SendFailed, left);
                if let Some(r) = &mut self.final_report {
                    r.dropped_samples += left;
                }
                tracing::warn!(samples = left, "StatsD shutdown timed out; samples dropped");
                break;
            }
            self.emit_sample(&s);
        }
        self.send();
        if deadline.is_none() {
            self.evict_idle();
        }
    }

    /// Takes every series that changed since the last flush (not the whole
    /// table) and packs its line.
    fn flush_aggregates(&mut self) {
        self.check_refused();
        self.epoch += 1;
        let n = self.dirty.len();
        let entries: Vec<Arc<Entry>> = self.dirty.try_iter().take(n).collect();
        let now = Instant::now();
        for e in entries {
            e.dirty.store(false, Ordering::SeqCst);
            self.active(&e);
            let Some((agg, backlog)) = e.take() else {
                continue;
            };
            let (attempts, since) = match backlog {
                Some(b) => {
                    self.shared
                        .stats
                        .retry_pending
                        .fetch_sub(b.agg.samples, Ordering::Relaxed);
                    (b.attempts, b.since)
                }
                None => (0, now),
            };
            self.push_item(Item {
                entry: e,
                agg,
                attempts,
                since,
            });
        }
    }

    /// Notes that a series had something in this flush; a series not yet
    /// tracked (`last_epoch` 0) joins the bucket of this flush.
    fn active(&mut self, e: &Arc<Entry>) {
        if e.last_epoch.swap(self.epoch, Ordering::Relaxed) == 0 {
            self.idle.entry(self.epoch).or_default().push(e.clone());
        }
    }

    /// Removes the series that had nothing for `idle_flushes` flushes.
    ///
    /// Each tracked series sits in one bucket, that of a flush it was active
    /// in. When a bucket is `idle_flushes` old, each of its series is either
    /// idle since (removed) or moved to the bucket of its latest flush. So a
    /// pass costs about the series active in the last `idle_flushes` flushes
    /// divided by that number, never the table's size, and the buckets never
    /// hold more than the table.
    fn evict_idle(&mut self) {
        let n = u64::from(self.shared.config.idle_flushes);
        while let Some(bucket) = self.idle.first_entry() {
            if *bucket.key() + n > self.epoch {
                break;
            }
            for e in bucket.remove() {
                let last = e.last_epoch.load(Ordering::Relaxed);
                if last + n > self.epoch {
                    self.idle.entry(last).or_default().push(e);
                } else if self.shared.table.evict(&e) {
                    e.last_epoch.store(0, Ordering::Relaxed);
                } else {
                    // Recorded into or waiting for a resend: look again later.
                    self.idle.entry(self.epoch).or_default().push(e);
                }
            }
        }
    }

    fn push_item(&mut self, item: Item) {
        self.line.clear();
        let r = &item.entry.rendered;
        let Agg { set, delta, .. } = item.agg;
        let lines = match (item.entry.kind, set) {
            (MetricType::Counter, _) => {
                format::line(&mut self.line, r, &format::number(delta), "c", 1.0);
                1
            }
            (_, Some(v)) => gauge_lines(&mut self.line, r, v + delta),
            (_, None) => {
                format::line(&mut self.line, r, &signed(delta), "g", 1.0);
                1
            }
        };
        let text = std::mem::take(&mut self.line);
        self.push(&text, lines, 0, Some(item));
        self.line = text;
    }

    fn emit_sample(&mut self, s: &Sample) {
        self.active(&s.series);
        self.line.clear();
        let r = &s.series.rendered;
        let lines = match s.value {
            Value::Gauge(v) => gauge_lines(&mut self.line, r, v),
            Value::GaugeDelta(d) => {
                format::line(&mut self.line, r, &signed(d), "g", 1.0);
                1
            }
            v => {
                let wire = wire(v.kind(), self.shared.config.flavor);
                format::line(&mut self.line, r, &format::number(v.as_f64()), wire, s.rate);
                1
            }
        };
        let text = std::mem::take(&mut self.line);
        self.push(&text, lines, 1, None);
        self.line = text;
    }

    /// Adds lines (one sample or one aggregate) to the datagram being built;
    /// they never straddle two datagrams.
    fn push(&mut self, text: &str, lines: u64, samples: u64, item: Option<Item>) {
        let max = self.shared.config.max_datagram_bytes;
        if !self.buf.is_empty() && self.buf.len() + 1 + text.len() > max {
            self.send();
        }
        if !self.buf.is_empty() {
            self.buf.push('\n');
        }
        self.buf.push_str(text);
        self.cur.lines += lines;
        self.cur.samples += samples;
        self.cur.items.extend(item);
        if self.buf.len() >= max {
            self.send();
        }
    }

    /// Reads (and clears) a pending socket error without sending: on a
    /// connected UDP socket it is the refusal of the last datagram sent.
    fn check_refused(&mut self) -> bool {
        match self.probe.take_error() {
            Ok(Some(e)) => {
                self.shared.stats.error(&e);
                tracing::debug!(error = %e, "StatsD daemon refused the last datagram");
                self.lost_last();
                self.shared.stats.reachable.store(false, Ordering::Relaxed);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "reading the StatsD socket's error failed");
                false
            }
        }
    }

    fn lost_last(&mut self) {
        if let Some(d) = self.last.take() {
            let st = &self.shared.stats;
            st.lines.fetch_sub(d.lines, Ordering::Relaxed);
            self.lost(d);
        }
    }

    /// Accounts for a lost datagram: its counter and gauge aggregates go
    /// back to their series (within the attempt and age limits), every
    /// other sample is counted as dropped.
    fn lost(&mut self, d: Datagram) {
        let sh = &self.shared;
        let c = &sh.config;
        sh.stats.lost_lines.fetch_add(d.lines, Ordering::Relaxed);
        let mut dropped = d.samples;
        let max_age = Duration::from_millis(c.retry_max_age_ms);
        for it in d.items {
            let attempts = it.attempts + 1;
            let samples = it.agg.samples;
            if self.final_report.is_some()
                || attempts >= c.max_send_attempts
                || it.since.elapsed() >= max_age
            {
                dropped += samples;
            } else {
                sh.stats.retry_pending.fetch_add(samples, Ordering::Relaxed);
                it.entry.restore(Backlog {
                    agg: it.agg,
                    attempts,
                    since: it.since,
                });
                table::mark_dirty(&it.entry, &self.dirty_tx);
            }
        }
        sh.drops.add(DropReason::SendFailed, dropped);
        if let Some(r) = &mut self.final_report {
            r.lost_lines += d.lines;
            r.dropped_samples += dropped;
        }
    }

    /// Sends the datagram being built, paced.
    ///
    /// A pending error on the socket (read first, without sending) or a
    /// refused send means the *previous* datagram was lost; a refused send
    /// did not send this one, so it is tried once more.
    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        self.pacer.wait();
        if let Some(q) = &mut self.peer_queue {
            q.wait(self.pacer.rate <= 0.0 || self.pacer.tokens < BURST / 2.0);
        }
        let d = std::mem::take(&mut self.cur);
        let had_last = self.last.is_some();
        let mut refused = self.check_refused();
        let mut result = self.sink.emit(&self.buf);
        if let Err(e) = &result
            && e.kind() == std::io::ErrorKind::ConnectionRefused
        {
            self.shared.stats.error(e);
            refused = true;
            self.lost_last();
            result = self.sink.emit(&self.buf);
        }
        let shared = self.shared.clone();
        let st = &shared.stats;
        match result {
            Ok(_) => {
                st.datagrams.fetch_add(1, Ordering::Relaxed);
                st.lines.fetch_add(d.lines, Ordering::Relaxed);
                self.last = Some(d);
            }
            Err(e) => {
                st.error(&e);
                self.lost(d);
            }
        }
        // A refusal says the daemon is gone; a datagram that drew none by
        // the next send says it is there.
        if refused {
            st.reachable.store(false, Ordering::Relaxed);
        } else if had_last {
            st.reachable.store(true, Ordering::Relaxed);
        }
        self.buf.clear();
    }
}

/// An absolute gauge value; a negative one goes out as `0` then `-N`, since
/// a lone `-N` is read as a relative change. Returns the line count.
fn gauge_lines(out: &mut String, r: &format::Rendered, v: f64) -> u64 {
    if v < 0.0 {
        format::line(out, r, "0", "g", 1.0);
        out.push('\n');
        format::line(out, r, &format::number(v), "g", 1.0);
        2
    } else {
        format::line(out, r, &format::number(v), "g", 1.0);
        1
    }
}

/// A relative gauge change, always signed (`+N` or `-N`).
fn signed(d: f64) -> String {
    if d >= 0.0 {
        format!("+{}", format::number(d))
    } else {
        format::number(d)
    }
}
