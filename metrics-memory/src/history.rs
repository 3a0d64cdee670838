//! Sealed bins for durable history: what a store (`metrics-store`) persists.
//!
//! A writer asks periodically for the bins that ended since its last call
//! ([`MemoryMetrics::sealed_bins`]) and keeps a watermark; each bin is
//! handed out once. Reading takes each series' lock briefly, like a range
//! query, and never waits on anything else.

use metrics_protocol::MetricType;

use crate::MemoryMetrics;
use crate::window::BinData;

/// One bin of one series, ready to persist.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedBin {
    /// Metric name.
    pub name: String,
    /// Tags, in the order the series was created with.
    pub tags: Vec<(String, String)>,
    /// Kind of the series.
    pub kind: MetricType,
    /// Start of the bin, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Width of the bin (the ring it came from), milliseconds.
    pub width_ms: i64,
    /// Samples in the bin.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// For a distribution's finest bin: its quantile sketch in the compact
    /// encoding, to merge with
    /// [`QuantileSketch::merge_bin`](crate::QuantileSketch::merge_bin).
    pub sketch: Option<Vec<u8>>,
}

impl MemoryMetrics {
    /// Now on the backend's clock, milliseconds since the epoch (what
    /// [`sealed_bins`](Self::sealed_bins) ranges are measured against).
    pub fn clock_ms(&self) -> i64 {
        self.now_ms()
    }

    /// The width of the finest bin, milliseconds.
    pub fn finest_bin_ms(&self) -> i64 {
        self.config
            .windows
            .first()
            .map_or(1, |w| (w.bin.as_millis() as i64).max(1))
    }

    /// Every non-empty bin that starts at or after `from_ms` and ends at or
    /// before `to_ms`, of every series. With `to_ms` past the open bin's
    /// start (a final flush at shutdown), the open bin is included as it is
    /// now.
    ///
    /// A writer calling with `from_ms` = the previous call's `to_ms` gets
    /// each finest bin once while it is still in the finest ring (5 minutes
    /// with the default windows); a bin that already cascaded into a coarser
    /// ring is handed out whole when that coarser bin lies inside the range
    /// (without a sketch), else not at all.
    pub fn sealed_bins(&self, from_ms: i64, to_ms: i64) -> Vec<SealedBin> {
        let now = self.now_ms().max(to_ms);
        let finest = self.finest_bin_ms();
        let mut out = Vec::new();
        let mut found: Vec<(i64, i64, crate::stats::Exact)> = Vec::new();
        for s in self.registry.all() {
            found.clear();
            s.for_each_bin(from_ms, now, |start, width, b| {
                if b.count > 0 && start >= from_ms && start.saturating_add(width) <= to_ms {
                    found.push((start, width, *b));
                }
            });
            if found.is_empty() {
                continue;
            }
            // Several entries for one finest bin (a live counter slot beside
            // the bin it spilled into) merge into one.
            found.sort_by_key(|(start, width, _)| (*start, *width));
            found.dedup_by(|b, a| {
                if a.0 == b.0 && a.1 == b.1 {
                    a.2.merge_from(&b.2);
                    true
                } else {
                    false
                }
            });
            let tags: Vec<(String, String)> = s
                .tag_pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let st = s.state.lock();
            for (start, width, b) in &found {
                let sketch = st.quantiles.as_ref().and_then(|q| {
                    let mut buf = Vec::new();
                    (*width == finest && q.finest_encoding(*start, &mut buf)).then_some(buf)
                });
                out.push(SealedBin {
                    name: s.name.to_string(),
                    tags: tags.clone(),
                    kind: s.kind,
                    start_ms: *start,
                    width_ms: *width,
                    count: b.count,
                    sum: b.sum,
                    min: b.min,
                    max: b.max,
                    sketch,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use metrics_protocol::MetricCollector;

    use crate::{ManualClock, MemoryConfig, MemoryMetrics, QuantileSketch};

    #[test]
    fn each_bin_is_handed_out_once_with_its_sketch() {
        let clock = Arc::new(ManualClock::new(1_000_000_000));
        let m = MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap();
        for v in 1..=100 {
            m.record_histogram("lat", f64::from(v), &[("route", "/a")]);
        }
        m.record_counter("hits", 2.0, &[]);
        m.record_counter("hits", 3.0, &[]);
        // Nothing has ended yet.
        assert!(m.sealed_bins(0, 1_000_000_000).is_empty());
        clock.advance(std::time::Duration::from_secs(10));
        m.record_counter("hits", 7.0, &[]);
        let bins = m.sealed_bins(0, 1_000_010_000);
        assert_eq!(bins.len(), 2, "{bins:?}");
        let hits = bins.iter().find(|b| b.name == "hits").unwrap();
        assert_eq!(
            (hits.count, hits.sum, hits.start_ms),
            (2, 5.0, 1_000_000_000)
        );
        let lat = bins.iter().find(|b| b.name == "lat").unwrap();
        assert_eq!(lat.tags, vec![("route".to_owned(), "/a".to_owned())]);
        assert_eq!((lat.count, lat.min, lat.max), (100, 1.0, 100.0));
        let mut q = QuantileSketch::windowed();
        assert!(q.merge_bin(lat.sketch.as_deref().unwrap(), lat.min, lat.max));
        let p50 = q.quantile(0.5).unwrap();
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        // The next range starts where this one ended: nothing twice.
        assert!(m.sealed_bins(1_000_010_000, 1_000_010_000).is_empty());
        // A final flush takes the open bin as it is.
        let last = m.sealed_bins(1_000_010_000, 1_000_020_000);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].sum, 7.0);
    }

    #[test]
    fn bad_sketch_bytes_are_refused_whole() {
        let mut q = QuantileSketch::windowed();
        assert!(!q.merge_bin(&[0xff; 3], 1.0, 2.0));
        assert!(!q.merge_bin(&[], 1.0, 2.0));
        assert_eq!(q.count(), 0);
        // Only a windowed sketch takes bins (the accuracies differ).
        let mut s = QuantileSketch::windowed();
        s.add(5.0);
        let mut buf = Vec::new();
        assert!(s.encode_bin(&mut buf));
        assert!(!QuantileSketch::new().merge_bin(&buf, 5.0, 5.0));
        assert!(!QuantileSketch::new().encode_bin(&mut Vec::new()));
        assert!(q.merge_bin(&buf, 5.0, 5.0));
        assert_eq!((q.count(), q.quantile(0.5)), (1, Some(5.0)));
    }

    /// Stored bytes come from a database: any bytes are refused or merged,
    /// never a panic.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..50_000 {
            let len = (next() % 48) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut q = QuantileSketch::windowed();
            if q.merge_bin(&bytes, -1.0, 1.0) {
                let _ = q.quantile(0.5);
            }
        }
        // A genuine encoding reaching the extremes of both signs passes;
        // every one-byte change of it is refused or merged without a panic.
        let mut s = QuantileSketch::windowed();
        for v in [
            1e-300,
            1e300,
            -1e-300,
            -1e300,
            0.0,
            1.0,
            f64::MAX,
            -f64::MAX,
        ] {
            s.add(v);
        }
        let mut good = Vec::new();
        assert!(s.encode_bin(&mut good));
        assert!(QuantileSketch::windowed().merge_bin(&good, -f64::MAX, f64::MAX));
        for i in 0..good.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff, good[i] ^ 1] {
                let mut bad = good.clone();
                bad[i] = b;
                let mut q = QuantileSketch::windowed();
                if q.merge_bin(&bad, -1.0, 1.0) {
                    let _ = q.quantile(0.99);
                }
            }
        }
    }
}
