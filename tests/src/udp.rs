//! A StatsD receiver on 127.0.0.1 for tests: a real UDP socket, a thread
//! that keeps every line, and a parser of the DogStatsD line format that
//! folds lines into series the way a daemon would.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpReceiver {
    /// Binds and starts receiving.
    pub fn start() -> std::io::Result<UdpReceiver> {
        Self::start_on("127.0.0.1:0".parse().expect("literal address"))
    }

    /// Binds `addr` (for a receiver that comes up late on a known port).
    pub fn start_on(addr: SocketAddr) -> std::io::Result<UdpReceiver> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let addr = socket.local_addr()?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let datagrams = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, d, s) = (lines.clone(), datagrams.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    d.fetch_add(1, Ordering::Relaxed);
                    let text = String::from_utf8_lossy(&buf[..n]);
                    l.lock().extend(
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
        self.lines.lock().clone()
    }

    /// Datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.datagrams.load(Ordering::Relaxed)
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
            if pred(&self.lines.lock()) {
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
