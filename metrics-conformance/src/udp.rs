//! The suite against a backend that sends StatsD lines over UDP: a real
//! receiver on 127.0.0.1 ([`UdpReceiver`]: a socket, a thread that keeps
//! every line, a parser of the DogStatsD line format that folds lines into
//! series the way a daemon would), and [`UdpHarness`], which reads a
//! backend back through it.
//!
//! ```
//! use std::net::UdpSocket;
//! use std::time::Duration;
//! use metrics_conformance::udp::UdpReceiver;
//!
//! let receiver = UdpReceiver::start()?;
//! let socket = UdpSocket::bind("127.0.0.1:0")?;
//! socket.send_to(b"jobs:2|c|#queue:a\njobs:1|c|#queue:a", receiver.addr())?;
//! assert!(receiver.wait_for(Duration::from_secs(5), |lines| lines.len() == 2));
//! let key = ("jobs".to_owned(), vec![("queue".to_owned(), "a".to_owned())]);
//! assert_eq!(receiver.series().counters[&key], 3.0);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use metrics_protocol::{MetricCollector, Metrics, Tags};

use crate::Harness;

/// The lines received so far (a panicking reader leaves them consistent).
fn lock(lines: &Mutex<Vec<String>>) -> MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One parsed StatsD line: `name:value|type[|@rate][|#k:v,...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsdLine {
    /// Metric name (with any prefix).
    pub name: String,
    /// The value text as sent (`+3`, `-1`, `12.5`).
    pub value: String,
    /// Type: `c`, `g`, `ms`, `h`, `d`, `s`.
    pub kind: String,
    /// Sample rate, 1 when absent.
    pub rate: f64,
    /// DogStatsD tags, in the order sent.
    pub tags: Vec<(String, String)>,
}

impl StatsdLine {
    /// Parses one line; `None` if it is not a well-formed StatsD line.
    pub fn parse(line: &str) -> Option<StatsdLine> {
        let (name, rest) = line.split_once(':')?;
        let mut parts = rest.split('|');
        let value = parts.next()?.to_owned();
        let kind = parts.next()?.to_owned();
        if name.is_empty() || !["c", "g", "ms", "h", "d", "s"].contains(&kind.as_str()) {
            return None;
        }
        value.parse::<f64>().ok()?;
        let mut rate = 1.0;
        let mut tags = Vec::new();
        for part in parts {
            if let Some(r) = part.strip_prefix('@') {
                rate = r.parse().ok().filter(|r: &f64| *r > 0.0 && *r <= 1.0)?;
            } else if let Some(t) = part.strip_prefix('#') {
                for pair in t.split(',') {
                    let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
                    tags.push((k.to_owned(), v.to_owned()));
                }
            } else {
                return None;
            }
        }
        Some(StatsdLine {
            name: name.to_owned(),
            value,
            kind,
            rate,
            tags,
        })
    }
}

/// A UDP receiver bound to an ephemeral port of 127.0.0.1.
pub struct UdpReceiver {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    datagrams: Arc<AtomicU64>,
    /// The last sync marker the receiving thread has read ([`sync`](UdpReceiver::sync)).
    synced: Arc<AtomicU64>,
    syncs: AtomicU64,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What a sync marker datagram starts with: no StatsD line does (a NUL
/// byte), so a marker is never taken for a measurement.
const SYNC_MARKER: &[u8] = b"\0sync:";

impl UdpReceiver {
    /// Binds an ephemeral port of 127.0.0.1 and starts receiving.
    pub fn start() -> std::io::Result<UdpReceiver> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Binds `addr` (for a receiver that comes up late on a known port).
    pub fn start_on(addr: SocketAddr) -> std::io::Result<UdpReceiver> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let addr = socket.local_addr()?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let datagrams = Arc::new(AtomicU64::new(0));
        let synced = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, d, s) = (lines.clone(), datagrams.clone(), stop.clone());
        let y = synced.clone();
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    if let Some(marker) = buf[..n].strip_prefix(SYNC_MARKER) {
                        let n = std::str::from_utf8(marker)
                            .ok()
                            .and_then(|m| m.parse().ok());
                        y.fetch_max(n.unwrap_or(0), Ordering::AcqRel);
                        continue;
                    }
                    d.fetch_add(1, Ordering::Relaxed);
                    let text = String::from_utf8_lossy(&buf[..n]);
                    lock(&l).extend(
                        text.split('\n')
                            .filter(|x| !x.is_empty())
                            .map(str::to_owned),
                    );
                }
            }
        });
        Ok(UdpReceiver {
            addr,
            lines,
            datagrams,
            synced,
            syncs: AtomicU64::new(0),
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every line received so far (a copy).
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// Datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.datagrams.load(Ordering::Relaxed)
    }

    /// Waits until the receiving thread has read every datagram sent to it
    /// before this call, at most `limit`; returns whether it has. Sends a
    /// marker datagram from a socket of its own and waits for the thread to
    /// read it: on loopback a datagram is queued at the receiver when its
    /// send returns, so what a backend sent before (a flush that returned)
    /// is queued ahead of the marker. Unlike [`wait_quiet`](Self::wait_quiet),
    /// a receiving thread the machine is slow to schedule cannot end the
    /// wait early. The marker is not a line and is not counted.
    pub fn sync(&self, limit: Duration) -> bool {
        let n = self.syncs.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(socket) = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))) else {
            return false;
        };
        let mut marker = SYNC_MARKER.to_vec();
        marker.extend_from_slice(n.to_string().as_bytes());
        let deadline = Instant::now() + limit;
        // Sent again every 100 ms in case the receive queue was full.
        let mut sent_at: Option<Instant> = None;
        loop {
            if sent_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                let _ = socket.send_to(&marker, self.addr);
                sent_at = Some(Instant::now());
            }
            if self.synced.load(Ordering::Acquire) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until no new datagram arrived for `quiet`, at most `limit`.
    pub fn wait_quiet(&self, quiet: Duration, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut last = self.datagrams();
        let mut since = Instant::now();
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
            let now = self.datagrams();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return;
            }
        }
    }

    /// Waits until `pred(lines)` holds, at most `limit`; returns whether it did.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if pred(&lock(&self.lines)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Folds every line into series as a daemon would: counters summed
    /// (scaled by 1/rate), gauges set or adjusted (`+N`/`-N`), timers and
    /// histograms counted. Unparseable lines are returned as `bad`.
    pub fn series(&self) -> Series {
        let mut out = Series::default();
        for raw in self.lines() {
            let Some(line) = StatsdLine::parse(&raw) else {
                out.bad.push(raw);
                continue;
            };
            let mut tags = line.tags.clone();
            tags.sort();
            let key = (line.name.clone(), tags);
            let v: f64 = line.value.parse().unwrap_or(f64::NAN);
            match line.kind.as_str() {
                "c" => *out.counters.entry(key).or_insert(0.0) += v / line.rate,
                "g" if line.value.starts_with(['+', '-']) => {
                    *out.gauges.entry(key).or_insert(0.0) += v;
                }
                "g" => {
                    out.gauges.insert(key, v);
                }
                _ => *out.samples.entry(key).or_insert(0) += 1,
            }
        }
        out
    }
}

impl fmt::Debug for UdpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpReceiver")
            .field("addr", &self.addr)
            .field("datagrams", &self.datagrams())
            .finish_non_exhaustive()
    }
}

impl Drop for UdpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A series key: name and sorted tags.
pub type SeriesKey = (String, Vec<(String, String)>);

/// The key of the series `name`/`tags` (tags sorted, owned).
pub fn series_key(name: &str, tags: Tags<'_>) -> SeriesKey {
    let mut tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tags.sort();
    (name.to_owned(), tags)
}

/// What a [`UdpReceiver`] saw, folded into series.
#[derive(Debug, Default)]
pub struct Series {
    /// Counter totals.
    pub counters: BTreeMap<SeriesKey, f64>,
    /// Gauge values.
    pub gauges: BTreeMap<SeriesKey, f64>,
    /// Timer and histogram sample counts.
    pub samples: BTreeMap<SeriesKey, u64>,
    /// Lines that did not parse.
    pub bad: Vec<String>,
}

impl Series {
    /// Number of distinct series (a name and tags seen as a counter and as
    /// something else counts twice, as in a daemon).
    pub fn len(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.samples.len()
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Harness`] over a backend that sends StatsD lines (DogStatsD tags)
/// to a [`UdpReceiver`]: recording goes through the backend's
/// [`Metrics`], reading back through what the receiver folded.
///
/// [`settle`](Harness::settle) flushes the backend, waits until no
/// datagram arrived for 100 ms (at most 5 s), and fails the check if any
/// line received so far does not parse. Outcomes are read back as the
/// counters `<operation>.success` and `<operation>.failure`; drops from the
/// backend's health.
///
/// ```
/// use std::sync::Arc;
/// use metrics_conformance::Harness;
/// use metrics_conformance::udp::{UdpHarness, UdpReceiver};
/// use metrics_protocol::backend::Measurement;
/// use metrics_protocol::{MetricCollector, Metrics};
///
/// /// A tiny StatsD-like backend: one datagram per counter increment.
/// struct Lines(std::net::UdpSocket);
/// impl MetricCollector for Lines {
///     fn record(&self, m: &Measurement<'_>) {
///         let line = format!("{}:{}|c", m.key().name(), m.value().as_f64());
///         let _ = self.0.send(line.as_bytes());
///     }
/// }
///
/// let receiver = UdpReceiver::start()?;
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// socket.connect(receiver.addr())?;
/// let harness = UdpHarness::new(Metrics::new(Arc::new(Lines(socket))), receiver);
/// harness.metrics().increment("jobs", &[]);
/// harness.metrics().record_counter("jobs", 2.0, &[]);
/// harness.settle();
/// assert_eq!(harness.counter("jobs", &[]), Some(3.0));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpHarness {
    metrics: Metrics,
    receiver: UdpReceiver,
}

impl fmt::Debug for UdpHarness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpHarness")
            .field("receiver", &self.receiver)
            .finish_non_exhaustive()
    }
}

impl UdpHarness {
    /// A harness recording through `metrics` (a backend sending to
    /// `receiver`) and reading back from `receiver`.
    pub fn new(metrics: Metrics, receiver: UdpReceiver) -> Self {
        UdpHarness { metrics, receiver }
    }

    /// The receiver the backend sends to.
    pub fn receiver(&self) -> &UdpReceiver {
        &self.receiver
    }
}

impl Harness for UdpHarness {
    fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// # Panics
    ///
    /// When the backend's flush fails or a line received does not parse:
    /// either fails the check.
    fn settle(&self) {
        if let Err(e) = self.metrics.flush() {
            panic!("the backend failed to flush: {e}");
        }
        assert!(
            self.receiver.sync(Duration::from_secs(60)),
            "the receiver did not read what was sent within 60 s"
        );
        let bad = self.receiver.series().bad;
        assert!(bad.is_empty(), "malformed lines: {bad:?}");
    }

    fn counter(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.receiver
            .series()
            .counters
            .get(&series_key(name, tags))
            .copied()
    }

    fn gauge(&self, name: &str, tags: Tags<'_>) -> Option<f64> {
        self.receiver
            .series()
            .gauges
            .get(&series_key(name, tags))
            .copied()
    }

    fn samples(&self, name: &str, tags: Tags<'_>) -> Option<u64> {
        self.receiver
            .series()
            .samples
            .get(&series_key(name, tags))
            .copied()
    }

    fn series_count(&self) -> usize {
        self.receiver.series().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dogstatsd_lines_and_rejects_broken_ones() {
        let l = StatsdLine::parse("api.hits:3|c|@0.5|#b:2,a:1").unwrap();
        assert_eq!(l.name, "api.hits");
        assert_eq!(l.rate, 0.5);
        assert_eq!(
            l.tags,
            vec![("b".into(), "2".into()), ("a".into(), "1".into())]
        );
        for bad in [
            "nocolon",
            "x:1",
            "x:abc|c",
            "x:1|q",
            ":1|c",
            "x:1|c|@2",
            "x:1|c|junk",
        ] {
            assert!(StatsdLine::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn receiver_folds_lines_like_a_daemon() {
        let r = UdpReceiver::start().unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(
            b"c:1|c|#k:v\nc:2|c|@0.5|#k:v\ng:5|g\ng:-2|g\nt:3|ms\nbroken",
            r.addr(),
        )
        .unwrap();
        assert!(r.wait_for(Duration::from_secs(5), |l| l.len() == 6));
        let series = r.series();
        let key = |n: &str, t: &[(&str, &str)]| {
            (
                n.to_owned(),
                t.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            )
        };
        assert_eq!(series.counters[&key("c", &[("k", "v")])], 5.0);
        assert_eq!(series.gauges[&key("g", &[])], 3.0);
        assert_eq!(series.samples[&key("t", &[])], 1);
        assert_eq!(series.bad, vec!["broken".to_owned()]);
    }
}
