//! Rings of fixed bins, cascading from fine to coarse: what every window
//! of a series is answered from.
//!
//! Only the finest ring is written when a sample is recorded. When a fine
//! bin ages out of its ring, it is merged whole into the next ring's bin
//! that covers it, and so on; the last ring's bins are dropped when they
//! age out (retention). Every statistic of a bin (count, sum, min, max,
//! quantiles) moves together, so every windowed statistic covers exactly
//! the same samples: one rotation rule for all.
//!
//! A query for the last `w` merges every bin, of any ring, whose start is
//! within `w` of now; a bin is in exactly one ring at a time, so nothing is
//! counted twice. The window's edge is as precise as the coarsest ring the
//! window reaches into (10 s for 5 minutes, 1 min for 1 h, 15 min for 24 h
//! with the defaults).
//!
//! A finest bin that a history reader has not had yet ([`HistoryMark`]) is
//! held in the finest ring when it ages out (for at most one more span of
//! that ring), so a reader that comes late, after the timeline jumped
//! forward past the finest ring, still finds it whole.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sketch::{Key, Sketch, merge_encodings};

/// One ring: `span / bin` bins of width `bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// How far back the ring reaches (serialised as seconds; read as
    /// seconds or a duration, `"5m"`).
    #[serde(with = "secs")]
    pub span: Duration,
    /// Width of one bin (serialised as seconds; read as seconds or a
    /// duration, `"10s"`).
    #[serde(with = "secs")]
    pub bin: Duration,
}

mod secs {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        metrics_kit::duration::duration_secs(d)
    }
}

impl WindowSpec {
    /// A ring reaching back `span` in bins of `bin`.
    pub const fn new(span: Duration, bin: Duration) -> Self {
        WindowSpec { span, bin }
    }

    /// The defaults of the reference services: 5 m @ 10 s, 1 h @ 1 min, 24 h @ 15 min.
    pub fn defaults() -> Vec<WindowSpec> {
        vec![
            WindowSpec::new(Duration::from_secs(300), Duration::from_secs(10)),
            WindowSpec::new(Duration::from_secs(3600), Duration::from_secs(60)),
            WindowSpec::new(Duration::from_secs(86_400), Duration::from_secs(900)),
        ]
    }
}

/// Checks a ring list: non-empty, whole milliseconds, each span a multiple of
/// its bin, each bin a multiple of the previous one, spans growing.
pub fn validate_specs(specs: &[WindowSpec]) -> Result<(), String> {
    if specs.is_empty() {
        return Err("at least one window is needed".into());
    }
    let mut prev: Option<WindowSpec> = None;
    for s in specs {
        let (span, bin) = (s.span.as_millis(), s.bin.as_millis());
        if bin == 0 || span == 0 || span % bin != 0 {
            return Err(format!(
                "window {:?} @ {:?}: span must be a positive multiple of the bin",
                s.span, s.bin
            ));
        }
        if span / bin > 10_000 {
            return Err(format!(
                "window {:?} @ {:?}: more than 10000 bins",
                s.span, s.bin
            ));
        }
        if let Some(p) = prev
            && (bin % p.bin.as_millis() != 0 || span <= p.span.as_millis())
        {
            return Err(format!(
                "window {:?} @ {:?} must have a longer span and a bin that is a multiple of {:?}",
                s.span, s.bin, p.bin
            ));
        }
        prev = Some(*s);
    }
    Ok(())
}

/// Where a history reader's hand-outs end
/// ([`MemoryMetrics::sealed_bins`](crate::MemoryMetrics::sealed_bins)):
/// finest bins starting at or after it have not been handed out, so the
/// rings hold them in the finest ring until they are.
#[derive(Debug)]
pub(crate) struct HistoryMark(AtomicI64);

impl HistoryMark {
    /// No reader yet: nothing is held.
    pub(crate) fn new() -> Self {
        HistoryMark(AtomicI64::new(i64::MIN))
    }

    /// A reader has had every bin ending at or before `to_ms`.
    pub(crate) fn handed_out(&self, to_ms: i64) {
        self.0.fetch_max(to_ms, Ordering::Relaxed);
    }

    /// Finest bins starting at or after this are held (`i64::MAX`: no
    /// reader, none is).
    fn held_from(hold: Option<&Arc<HistoryMark>>) -> i64 {
        match hold.map(|h| h.0.load(Ordering::Relaxed)) {
            None | Some(i64::MIN) => i64::MAX,
            Some(t) => t,
        }
    }
}

/// Whether the oldest bin `idx` of the finest ring `ring`, aged out, stays
/// there for a history reader: it was not handed out yet, and the ring
/// holds at most one extra span of bins.
fn held<B>(ring: &Ring<B>, idx: i64, held_from: i64) -> bool {
    idx.saturating_mul(ring.bin_ms) >= held_from && (ring.bins.len() as i64) <= 2 * ring.bins_kept
}

/// What a bin holds: anything that merges.
pub trait BinData: Default {
    /// Adds `other` into `self`.
    fn merge_from(&mut self, other: &Self);
    /// Empties, keeping allocations for reuse.
    fn reset(&mut self);
}

#[derive(Debug)]
struct Ring<B> {
    bin_ms: i64,
    bins_kept: i64,
    /// (bin index = start_ms / bin_ms, data), oldest first.
    bins: VecDeque<(i64, B)>,
}

impl<B> Ring<B> {
    /// An empty ring for `spec`: nothing allocated until its first bin.
    fn new(spec: &WindowSpec) -> Self {
        let bin_ms = spec.bin.as_millis().max(1) as i64;
        Ring {
            bin_ms,
            bins_kept: (spec.span.as_millis() as i64 / bin_ms).max(1),
            bins: VecDeque::new(),
        }
    }

    /// Allocates the ring's whole buffer on first use (a ring holds at most
    /// `bins_kept` bins plus one not yet cascaded), so it never regrows.
    fn reserve(&mut self) {
        if self.bins.capacity() == 0 {
            self.bins.reserve_exact(self.bins_kept as usize + 1);
        }
    }
}

/// Cascading rings of bins for one series.
#[derive(Debug)]
pub struct Rings<B> {
    rings: Vec<Ring<B>>,
    spare: Vec<B>,
    /// The latest finest-bin index [`advance`](Self::advance) ran for:
    /// every ring's bin is a multiple of the finest, so nothing ages out
    /// before the next finest bin starts.
    advanced_to: i64,
    /// Finest bins not handed out to this mark's reader yet are held.
    hold: Option<Arc<HistoryMark>>,
}

impl<B: BinData> Rings<B> {
    /// Empty rings for `specs` (checked with [`validate_specs`]). Nothing is
    /// allocated until the first sample.
    pub fn new(specs: &[WindowSpec]) -> Self {
        Rings {
            rings: specs.iter().map(Ring::new).collect(),
            spare: Vec::new(),
            advanced_to: i64::MIN,
            hold: None,
        }
    }

    /// [`new`](Self::new), holding finest bins for `hold`'s reader.
    pub(crate) fn with_hold(specs: &[WindowSpec], hold: Arc<HistoryMark>) -> Self {
        Rings {
            hold: Some(hold),
            ..Self::new(specs)
        }
    }

    /// Records into the finest bin covering `now_ms`.
    ///
    /// A sample older than the newest fine bin goes into the newest bin
    /// rather than rewriting history. The backend's timeline never runs
    /// backwards, so that is only a thread whose reading was taken just
    /// before another thread opened the bin.
    #[inline]
    pub fn record(&mut self, now_ms: i64, f: impl FnOnce(&mut B)) {
        let Some(finest) = self.rings.first() else {
            return;
        };
        let idx = now_ms.div_euclid(finest.bin_ms);
        if idx > self.advanced_to {
            self.advance(now_ms);
        }
        let Some(ring) = self.rings.first_mut() else {
            return;
        };
        match ring.bins.back_mut() {
            Some((i, data)) if *i >= idx => f(data),
            _ => {
                let mut data = self.spare.pop().unwrap_or_default();
                f(&mut data);
                ring.reserve();
                ring.bins.push_back((idx, data));
            }
        }
    }

    /// Merges a whole finest-ring bin that starts at `start_ms` (a bin kept
    /// elsewhere until now, such as a counter's atomic slot). It lands in
    /// the finest ring that still covers it (the finest ring too when a
    /// history reader has not had it); a bin older than every ring is
    /// dropped.
    pub fn merge_bin(&mut self, now_ms: i64, start_ms: i64, data: &B) {
        self.advance(now_ms);
        let held_from = HistoryMark::held_from(self.hold.as_ref());
        for (level, ring) in self.rings.iter_mut().enumerate() {
            let idx = start_ms.div_euclid(ring.bin_ms);
            let oldest_kept = now_ms.div_euclid(ring.bin_ms) - ring.bins_kept + 1;
            if idx < oldest_kept && !(level == 0 && held(ring, idx, held_from)) {
                continue;
            }
            match ring.bins.iter_mut().rev().find(|(i, _)| *i == idx) {
                Some((_, target)) => target.merge_from(data),
                None => {
                    let pos = ring.bins.partition_point(|(i, _)| *i < idx);
                    let mut fresh = self.spare.pop().unwrap_or_default();
                    fresh.merge_from(data);
                    ring.reserve();
                    ring.bins.insert(pos, (idx, fresh));
                }
            }
            return;
        }
    }

    /// How far back the last ring reaches, in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        self.rings.last().map_or(0, |r| r.bin_ms * r.bins_kept)
    }

    /// Finest bins starting at or after this are held for a history reader
    /// that has not had them (`i64::MAX`: none is): they count however old
    /// they are.
    pub(crate) fn held_from(&self) -> i64 {
        HistoryMark::held_from(self.hold.as_ref())
    }

    /// Moves bins that aged out of a ring into the next one; drops what ages
    /// out of the last ring.
    pub fn advance(&mut self, now_ms: i64) {
        let Some(finest) = self.rings.first() else {
            return;
        };
        // Within the finest bin advanced last (or earlier: a reading older
        // than another thread's), no bin of any ring has aged out since.
        let idx = now_ms.div_euclid(finest.bin_ms);
        if idx <= self.advanced_to {
            return;
        }
        self.advanced_to = idx;
        let held_from = HistoryMark::held_from(self.hold.as_ref());
        for level in 0..self.rings.len() {
            let (done, rest) = self.rings.split_at_mut(level + 1);
            let Some(ring) = done.last_mut() else {
                continue;
            };
            let current = now_ms.div_euclid(ring.bin_ms);
            let oldest_kept = current - ring.bins_kept + 1;
            // One bin at a time: no temporary list, so no allocation. A
            // held bin stops the loop: every bin after it is newer.
            while ring.bins.front().is_some_and(|(i, _)| {
                *i < oldest_kept && !(level == 0 && held(ring, *i, held_from))
            }) {
                let Some((idx, mut data)) = ring.bins.pop_front() else {
                    break;
                };
                if let Some(next) = rest.first_mut() {
                    let start = idx * ring.bin_ms;
                    let nidx = start.div_euclid(next.bin_ms);
                    match next.bins.iter_mut().rev().find(|(i, _)| *i == nidx) {
                        Some((_, target)) => target.merge_from(&data),
                        None => {
                            // Keep the ring ordered by index.
                            let pos = next.bins.partition_point(|(i, _)| *i < nidx);
                            let mut fresh = self.spare.pop().unwrap_or_default();
                            fresh.merge_from(&data);
                            next.reserve();
                            next.bins.insert(pos, (nidx, fresh));
                        }
                    }
                }
                data.reset();
                if self.spare.len() < 4 {
                    self.spare.push(data);
                }
            }
        }
    }

    /// Calls `f(bin_start_ms, bin_width_ms, data)` for every bin whose start
    /// is at or after `since_ms` (and at or before `now_ms`).
    pub fn for_each_since(&self, since_ms: i64, now_ms: i64, mut f: impl FnMut(i64, i64, &B)) {
        // A bin is in exactly one ring; one that aged out of its ring but was
        // not cascaded yet (cascading is lazy) still counts, until it is
        // older than the last ring's retention. A bin newer than `now` (opened
        // by a reading later than the caller's) counts too: what was
        // recorded is never left out of a window that reaches the present.
        // A finest bin held for a history reader counts however old it is
        // (the timeline jumped forward past every ring): the reader has
        // not had it yet.
        let oldest = now_ms.saturating_sub(self.retention_ms());
        let held_from = self.held_from();
        for (level, ring) in self.rings.iter().enumerate() {
            for (idx, data) in &ring.bins {
                let start = idx * ring.bin_ms;
                if start >= since_ms && (start >= oldest || (level == 0 && start >= held_from)) {
                    f(start, ring.bin_ms, data);
                }
            }
        }
    }

    #[cfg(test)]
    /// Number of bins held in all rings.
    pub fn bins(&self) -> usize {
        self.rings.iter().map(|r| r.bins.len()).sum()
    }
}

/// Blocks of quantile sketches per ring, at most this many per ring
/// beyond the finest (see [`sketch_specs`]).
pub const SKETCH_BLOCKS: i64 = 4;

/// The rings of quantile-sketch blocks for `specs`: the finest ring keeps
/// one sketch per bin; every other ring keeps at most [`SKETCH_BLOCKS`]
/// sketches, each covering several of its bins (the smallest whole number
/// of bins that gets there and is a multiple of the previous ring's block).
/// With the defaults: 10 s for the last 5 minutes, 15 min blocks for the
/// hour, 6 h blocks for the day.
pub fn sketch_specs(specs: &[WindowSpec]) -> Vec<WindowSpec> {
    let mut out: Vec<WindowSpec> = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let (span, bin) = (s.span.as_millis() as i64, (s.bin.as_millis() as i64).max(1));
        let n = (span / bin).max(1);
        let prev = out.last().map_or(1, |p| p.bin.as_millis() as i64);
        let d = if i == 0 {
            Some(1)
        } else {
            (1..=n).find(|d| n % d == 0 && n / d <= SKETCH_BLOCKS && (bin * d) % prev == 0)
        };
        match d {
            Some(d) => out.push(WindowSpec::new(
                s.span,
                Duration::from_millis((bin * d) as u64),
            )),
            // No coarser block fits this ring list: keep every bin.
            None => return specs.to_vec(),
        }
    }
    out
}

/// Quantile sketches of a distribution series over time: the open finest
/// bin's first [`PENDING`] samples as a short list of keys and the rest in
/// a dense [`Sketch`] (level 1), so a bin of few samples never holds bucket
/// arrays; sealed bins and blocks as compact encodings
/// ([`Sketch::encode`]), cascading from ring to ring as the exact bins do.
///
/// Buffers are recycled, so a series in steady state allocates nothing
/// when it opens a bin: a sealed bin takes the buffer of a bin merged away
/// earlier; a merge writes into one scratch buffer and copies the result
/// back into the block's own buffer; a new block takes the buffer of the
/// block of its ring that aged out last (blocks of one ring reach about the
/// same size). Only a block larger than any before it allocates.
#[derive(Debug)]
pub struct SketchRings {
    /// Finest-bin index of `open`, `i64::MIN` before the first sample.
    open_idx: i64,
    /// The open bin's first samples (packed keys, [`Key::pack`]), at most
    /// [`PENDING`]; what follows them goes to `open`.
    pending: Vec<i32>,
    open: Sketch,
    rings: Vec<Ring<Vec<u8>>>,
    /// Where the open bin is encoded before it is copied into a buffer of
    /// its size.
    enc: Vec<u8>,
    spare: Vec<Vec<u8>>,
    /// Where two encodings are merged before the result is copied back.
    scratch: Vec<u8>,
    /// Per ring, the buffer of its block that aged out last, for its next
    /// block (empty: none).
    block_spare: Vec<Vec<u8>>,
    /// Finest bins not handed out to this mark's reader yet are held.
    hold: Option<Arc<HistoryMark>>,
    /// Samples of sealed bins that the open bin's sketch far-merged (see
    /// [`far_merged`](Self::far_merged)).
    far_merged: u64,
}

/// A sealed bin's or block's encoding, or the open bin's sketch and its
/// pending keys.
enum Piece<'a> {
    Sealed(&'a [u8]),
    Open(&'a Sketch, &'a [i32]),
}

/// Whether `[start, start + width)` overlaps `[from, to)`.
fn overlaps((from, to): (i64, i64), start: i64, width: i64) -> bool {
    start < to && start.saturating_add(width) > from
}

/// Samples of the open bin kept as keys before the dense sketch takes the
/// rest: 512 bytes, where a bin's bucket arrays over a wide range take
/// several KiB.
pub const PENDING: usize = 128;
/// Spare encoded buffers kept for reuse.
const SPARES: usize = 2;
/// Extra bytes asked for when a block outgrows its buffer (or the merge
/// scratch buffer a block).
const MERGE_HEADROOM: usize = 32;
/// Extra bytes asked for a sealed bin, so the next bin, a little larger,
/// can reuse its buffer.
const SEAL_HEADROOM: usize = 16;
/// Larger buffers are freed rather than kept as spares.
const MAX_SPARE_BYTES: usize = 2048;

impl SketchRings {
    /// Empty rings for sketch `specs` (from [`sketch_specs`]).
    pub fn new(specs: &[WindowSpec]) -> Self {
        SketchRings {
            open_idx: i64::MIN,
            pending: Vec::new(),
            open: Sketch::new(1),
            // Past the finest ring, one more block than the span needs: the
            // block straddling a window's start (see `merged`).
            rings: specs
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let mut ring = Ring::new(spec);
                    ring.bins_kept += i64::from(i > 0);
                    ring
                })
                .collect(),
            enc: Vec::new(),
            spare: Vec::new(),
            scratch: Vec::new(),
            block_spare: specs.iter().map(|_| Vec::new()).collect(),
            hold: None,
            far_merged: 0,
        }
    }

    /// [`new`](Self::new), holding finest bins for `hold`'s reader.
    pub(crate) fn with_hold(specs: &[WindowSpec], hold: Arc<HistoryMark>) -> Self {
        SketchRings {
            hold: Some(hold),
            ..Self::new(specs)
        }
    }

    /// Samples recorded into a bin whose sketch reported them at a
    /// neighbouring far bucket's value ([`Sketch::far_merged`]), over the
    /// series' life: every window answer holding them may be off by more
    /// than the stated accuracy for them.
    pub fn far_merged(&self) -> u64 {
        self.far_merged.saturating_add(self.open.far_merged())
    }

    fn finest_ms(&self) -> i64 {
        self.rings.first().map_or(1, |r| r.bin_ms)
    }

    /// Adds one sample (its level-0 key) at `now_ms`. A sample older than
    /// the open bin (a reading older than another thread's) goes into the
    /// open bin.
    #[inline]
    pub fn record(&mut self, now_ms: i64, key: Key) {
        let idx = now_ms.div_euclid(self.finest_ms());
        if idx > self.open_idx {
            self.advance(now_ms);
        }
        if self.pending.len() < PENDING {
            if self.pending.capacity() == 0 {
                self.pending.reserve_exact(PENDING);
            }
            self.pending.push(key.pack());
        } else {
            self.open.add_key(key, 1);
        }
    }

    /// Whether the open bin holds any sample.
    fn open_has_samples(&self) -> bool {
        !self.pending.is_empty() || self.open.count() > 0
    }

    /// Adds the pending keys to `sketch`.
    fn add_pending(pending: &[i32], sketch: &mut Sketch) {
        for &p in pending {
            sketch.add_key(Key::unpack(p), 1);
        }
    }

    /// A spare buffer that holds `len` bytes without wasting much, or a new
    /// one with `headroom` extra bytes.
    fn take_buf(spare: &mut Vec<Vec<u8>>, len: usize, headroom: usize) -> Vec<u8> {
        let best = spare
            .iter()
            .enumerate()
            // Big enough, but not so big that the block wastes much.
            .filter(|(_, b)| b.capacity() >= len && b.capacity() <= len + len / 4 + 16)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let mut b = spare.swap_remove(i);
                b.clear();
                b
            }
            None => Vec::with_capacity(len + headroom),
        }
    }

    fn give_buf(spare: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
        if buf.capacity() > MAX_SPARE_BYTES {
            return;
        }
        // Sealing wants small buffers and merging large ones: a full pool
        // swaps the spare closest in size, so it keeps one of each.
        if spare.len() < SPARES {
            spare.push(buf);
        } else if let Some(near) = spare
            .iter_mut()
            .min_by_key(|b| b.capacity().abs_diff(buf.capacity()))
        {
            *near = buf;
        }
    }

    /// Gives back the buffer of a bin or block of ring `level` that was
    /// merged away or dropped: a finest bin's to the spares of sealing, a
    /// block's to its ring's next block.
    fn recycle(spare: &mut Vec<Vec<u8>>, block_spare: &mut [Vec<u8>], level: usize, buf: Vec<u8>) {
        match block_spare.get_mut(level) {
            Some(slot) if level > 0 => {
                if buf.capacity() >= slot.capacity() {
                    *slot = buf;
                }
            }
            _ => Self::give_buf(spare, buf),
        }
    }

    /// Seals the open bin if `now_ms` is past it, then moves blocks that
    /// aged out of a ring into the next one (merging into the block that
    /// covers them) and drops what ages out of the last ring.
    #[cold]
    fn advance(&mut self, now_ms: i64) {
        let SketchRings {
            open_idx,
            pending,
            open,
            rings,
            enc,
            spare,
            scratch,
            block_spare,
            hold,
            far_merged,
        } = self;
        let held_from = HistoryMark::held_from(hold.as_ref());
        let Some(finest) = rings.first().map(|r| r.bin_ms) else {
            return;
        };
        let now_idx = now_ms.div_euclid(finest);
        if (open.count() > 0 || !pending.is_empty()) && *open_idx < now_idx {
            enc.clear();
            if open.count() == 0 {
                Sketch::encode_keys(1, pending, enc);
            } else {
                Self::add_pending(pending, open);
                open.encode(enc);
            }
            pending.clear();
            let mut buf = Self::take_buf(spare, enc.len(), SEAL_HEADROOM);
            buf.extend_from_slice(enc);
            if let Some(r) = rings.first_mut() {
                r.reserve();
                r.bins.push_back((*open_idx, buf));
            }
            *far_merged = far_merged.saturating_add(open.far_merged());
            open.clear();
        }
        *open_idx = now_idx;
        for level in 0..rings.len() {
            let (done, rest) = rings.split_at_mut(level + 1);
            let Some(ring) = done.last_mut() else {
                continue;
            };
            let oldest_kept = now_ms.div_euclid(ring.bin_ms) - ring.bins_kept + 1;
            while ring.bins.front().is_some_and(|(i, _)| {
                *i < oldest_kept && !(level == 0 && held(ring, *i, held_from))
            }) {
                let Some((idx, buf)) = ring.bins.pop_front() else {
                    break;
                };
                let Some(next) = rest.first_mut() else {
                    Self::recycle(spare, block_spare, level, buf);
                    continue;
                };
                let nidx = (idx * ring.bin_ms).div_euclid(next.bin_ms);
                match next.bins.iter_mut().rev().find(|(i, _)| *i == nidx) {
                    Some((_, target)) => {
                        // The merge is about as long as the longer input
                        // (the shorter one's buckets mostly exist already):
                        // the scratch buffer grows only for a block larger
                        // than any before (with headroom), and the result
                        // is copied back into the block's own buffer, which
                        // grows only when the block outgrows it.
                        scratch.clear();
                        let want = target.len().max(buf.len()) + MERGE_HEADROOM;
                        if scratch.capacity() < want {
                            scratch.reserve_exact(want);
                        }
                        let room = scratch.capacity();
                        let ok = merge_encodings(target, &buf, scratch);
                        debug_assert!(ok, "sealed sketches decode");
                        // A merge longer than the room made doubled the
                        // buffer: keep only what it needs.
                        if scratch.capacity() > room {
                            scratch.shrink_to(scratch.len() + MERGE_HEADROOM);
                        }
                        target.clear();
                        if target.capacity() < scratch.len() {
                            target
                                .reserve_exact(scratch.len() + scratch.len() / 32 + MERGE_HEADROOM);
                        }
                        target.extend_from_slice(scratch);
                        Self::recycle(spare, block_spare, level, buf);
                    }
                    None => {
                        // A new block: in the buffer its predecessor left,
                        // if that holds it.
                        let reuse = block_spare
                            .get_mut(level + 1)
                            .filter(|b| b.capacity() >= buf.len());
                        let block = match reuse {
                            Some(b) => {
                                let mut b = std::mem::take(b);
                                b.clear();
                                b.extend_from_slice(&buf);
                                Self::recycle(spare, block_spare, level, buf);
                                b
                            }
                            None => buf,
                        };
                        let pos = next.bins.partition_point(|(i, _)| *i < nidx);
                        next.reserve();
                        next.bins.insert(pos, (nidx, block));
                    }
                }
            }
        }
    }

    /// How far back the last ring reaches, in milliseconds.
    fn retention_ms(&self) -> i64 {
        self.rings.last().map_or(0, |r| r.bin_ms * r.bins_kept)
    }

    /// Appends the encoding of the finest bin starting at `start_ms` (sealed,
    /// or the open one) to `out`; `false` when that bin is not held (empty,
    /// or already merged into a coarser block). For durable history.
    pub fn finest_encoding(&self, start_ms: i64, out: &mut Vec<u8>) -> bool {
        let idx = start_ms.div_euclid(self.finest_ms());
        if idx == self.open_idx && self.open_has_samples() {
            if self.pending.is_empty() {
                self.open.encode(out);
            } else if self.open.count() == 0 {
                Sketch::encode_keys(1, &mut self.pending.clone(), out);
            } else {
                let mut open = self.open.clone();
                Self::add_pending(&self.pending, &mut open);
                open.encode(out);
            }
            return true;
        }
        match self
            .rings
            .first()
            .and_then(|r| r.bins.iter().find(|(i, _)| *i == idx))
        {
            Some((_, buf)) => {
                out.extend_from_slice(buf);
                true
            }
            None => false,
        }
    }

    /// Merges into `out` (level 1) every bin or block whose span overlaps
    /// `[from_ms, to_ms)`, the open bin included: the sketches of a range
    /// step's bins. Blocks are merged whole, so where they are coarser
    /// than the step's bins `out` holds the samples of the blocks covering
    /// them (more than the step's).
    pub fn merge_overlapping(&self, from_ms: i64, to_ms: i64, out: &mut Sketch) {
        self.each_overlapping(from_ms, to_ms, |_, piece| match piece {
            Piece::Sealed(buf) => {
                let ok = out.merge_encoded(buf);
                debug_assert!(ok, "sealed sketches decode");
            }
            Piece::Open(open, pending) => {
                out.merge(open);
                Self::add_pending(pending, out);
            }
        });
    }

    /// Which bins and blocks [`merge_overlapping`](Self::merge_overlapping)
    /// would merge: `(ring, index)` of each, the open bin as ring
    /// `usize::MAX`, pushed onto `out`.
    pub fn overlapping_ids(&self, from_ms: i64, to_ms: i64, out: &mut Vec<(usize, i64)>) {
        self.each_overlapping(from_ms, to_ms, |id, _| out.push(id));
    }

    /// Calls `f` with the `(ring, index)` and the sketch of every bin or
    /// block overlapping `[from_ms, to_ms)`, then of the open bin (ring
    /// `usize::MAX`) if it does.
    fn each_overlapping<'a>(
        &'a self,
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut((usize, i64), Piece<'a>),
    ) {
        let range = (from_ms, to_ms);
        for (level, ring) in self.rings.iter().enumerate() {
            for (idx, buf) in &ring.bins {
                if overlaps(range, idx.saturating_mul(ring.bin_ms), ring.bin_ms) {
                    f((level, *idx), Piece::Sealed(buf));
                }
            }
        }
        let finest = self.finest_ms();
        if self.open_has_samples() && overlaps(range, self.open_idx.saturating_mul(finest), finest)
        {
            f(
                (usize::MAX, self.open_idx),
                Piece::Open(&self.open, &self.pending),
            );
        }
    }

    /// The merged sketch (level 1) of the window `[since_ms, now_ms]`
    /// holding `exact` samples (the count of the exact bins starting in
    /// it), and the earliest start of what it merged whole (`None`:
    /// nothing).
    ///
    /// Every bin or block starting in the window is merged whole. A block
    /// that straddles the window's start (blocks are coarser than the
    /// exact bins: 15 minutes or 6 hours with the defaults) holds the rest
    /// of the window's samples, mixed with older ones: the window takes the
    /// missing number (`exact` minus what was merged whole) from it, drawn
    /// in proportion to its buckets
    /// ([`Sketch::merge_encoded_share`]), newest straddling block first.
    /// The sketch then counts exactly the window's samples and covers it
    /// all; only the drawn samples may differ from the ones they stand
    /// for, so a quantile is within [`WINDOW_ACCURACY`](crate::WINDOW_ACCURACY)
    /// of a window value whose rank is off by at most the number drawn.
    pub fn merged(&self, since_ms: i64, now_ms: i64, exact: u64) -> (Sketch, Option<i64>) {
        let mut out = Sketch::new(1);
        let mut first: Option<i64> = None;
        let oldest = now_ms.saturating_sub(self.retention_ms());
        let mut take = |start: i64| {
            let ok = start >= since_ms && start >= oldest && start <= now_ms;
            if ok {
                first = Some(first.map_or(start, |f: i64| f.min(start)));
            }
            ok
        };
        for ring in &self.rings {
            for (idx, buf) in &ring.bins {
                if take(idx.saturating_mul(ring.bin_ms)) {
                    out.merge_encoded(buf);
                }
            }
        }
        if self.open_has_samples() && take(self.open_idx.saturating_mul(self.finest_ms())) {
            out.merge(&self.open);
            Self::add_pending(&self.pending, &mut out);
        }
        let mut missing = exact.saturating_sub(out.count());
        // Straddling blocks, newest (finest ring) first.
        for ring in &self.rings {
            if missing == 0 {
                break;
            }
            for (idx, buf) in ring.bins.iter().rev() {
                let start = idx.saturating_mul(ring.bin_ms);
                if start < since_ms
                    && start.saturating_add(ring.bin_ms) > since_ms
                    && start >= oldest
                {
                    let before = out.count();
                    out.merge_encoded_share(buf, missing);
                    missing = missing.saturating_sub(out.count() - before);
                }
            }
        }
        (out, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Clone, PartialEq)]
    struct Sum(u64);
    impl BinData for Sum {
        fn merge_from(&mut self, o: &Self) {
            self.0 += o.0;
        }
        fn reset(&mut self) {
            self.0 = 0;
        }
    }

    fn total(w: &Rings<Sum>, since: i64, now: i64) -> u64 {
        let mut t = 0;
        w.for_each_since(since, now, |_, _, b| t += b.0);
        t
    }

    #[test]
    fn samples_cascade_and_age_out_without_double_counting() {
        let specs = WindowSpec::defaults();
        validate_specs(&specs).unwrap();
        let mut w = Rings::<Sum>::new(&specs);
        let s = 1000i64;
        // One sample per second for 2 hours.
        for t in 0..7200 {
            w.record(t * s, |b| b.0 += 1);
        }
        let now = 7199 * s;
        assert_eq!(
            total(&w, now - 299 * s, now),
            300,
            "last 5 minutes at 10 s bins"
        );
        assert_eq!(
            total(&w, now - 3599 * s, now),
            3600,
            "last hour at 1 min bins"
        );
        assert_eq!(
            total(&w, i64::MIN, now),
            7200,
            "everything still within 24 h"
        );
        // 25 hours later, everything has aged out once something is recorded.
        let later = now + 25 * 3600 * s;
        w.record(later, |b| b.0 += 1);
        assert_eq!(total(&w, i64::MIN, later), 1);
        assert!(w.bins() <= 3);
    }

    #[test]
    fn queries_ignore_stale_bins_even_before_rotation() {
        let mut w = Rings::<Sum>::new(&WindowSpec::defaults());
        w.record(0, |b| b.0 += 5);
        let now = 48 * 3600 * 1000;
        assert_eq!(
            total(&w, i64::MIN, now),
            0,
            "a bin older than every ring is not reported"
        );
    }

    #[test]
    fn merged_bins_land_in_the_ring_that_covers_them() {
        let mut w = Rings::<Sum>::new(&WindowSpec::defaults());
        let now = 10 * 3600 * 1000;
        w.merge_bin(now, now - 60_000, &Sum(2)); // finest ring
        w.merge_bin(now, now - 2 * 3600 * 1000, &Sum(3)); // only the 24 h ring covers it
        w.merge_bin(now, now - 30 * 3600 * 1000, &Sum(100)); // too old: dropped
        assert_eq!(total(&w, now - 300_000, now), 2);
        assert_eq!(total(&w, i64::MIN, now), 5);
    }

    /// The finest bins in `[since, now]`: (start, count).
    fn finest(w: &Rings<Sum>, since: i64, now: i64) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        w.for_each_since(since, now, |start, width, b| {
            if width == 10_000 {
                out.push((start, b.0));
            }
        });
        out
    }

    #[test]
    fn finest_bins_a_history_reader_has_not_had_are_held_when_time_jumps() {
        let mark = Arc::new(HistoryMark::new());
        let mut w = Rings::<Sum>::with_hold(&WindowSpec::defaults(), mark.clone());
        let t0 = 1_800_000_000_000i64;
        w.record(t0, |b| b.0 += 1);
        w.record(t0 + 10_000, |b| b.0 += 2);
        // The reader has had the first bin, not the second (still open).
        mark.handed_out(t0 + 10_000);
        // An hour later (the timeline followed a step forward): the second
        // bin is still a finest bin, the first cascaded.
        let later = t0 + 3_600_000;
        w.record(later, |b| b.0 += 4);
        assert_eq!(finest(&w, t0, later), vec![(t0 + 10_000, 2), (later, 4)]);
        assert_eq!(total(&w, i64::MIN, later), 7, "counted once");
        // Once handed out, it cascades with the next bin.
        mark.handed_out(later);
        w.record(later + 10_000, |b| b.0 += 8);
        assert_eq!(
            finest(&w, t0, later + 10_000),
            vec![(later, 4), (later + 10_000, 8)]
        );
        assert_eq!(total(&w, i64::MIN, later + 10_000), 15);
        // A counter's slot merged late lands in the finest ring too.
        w.merge_bin(later + 10_000, later + 20_000, &Sum(16));
        assert_eq!(
            finest(&w, later + 20_000, later + 20_000),
            vec![(later + 20_000, 16)]
        );
    }

    #[test]
    fn held_bins_are_bounded_when_no_reader_comes() {
        let mark = Arc::new(HistoryMark::new());
        let mut w = Rings::<Sum>::with_hold(&WindowSpec::defaults(), mark.clone());
        let t0 = 1_800_000_000_000i64;
        mark.handed_out(t0);
        // The reader stops: an hour of bins, none handed out.
        for i in 0..360 {
            w.record(t0 + i * 10_000, |b| b.0 += 1);
        }
        let now = t0 + 359 * 10_000;
        // The finest ring holds at most twice its span (60 bins) and the
        // newest one; the rest cascaded.
        let held = finest(&w, i64::MIN, now).len();
        assert_eq!(held, 61, "finest bins");
        assert_eq!(total(&w, i64::MIN, now), 360, "nothing lost");
    }

    #[test]
    fn rejects_inconsistent_specs() {
        let bad = [
            vec![],
            vec![WindowSpec::new(
                Duration::from_secs(10),
                Duration::from_secs(3),
            )],
            vec![
                WindowSpec::new(Duration::from_secs(60), Duration::from_secs(10)),
                WindowSpec::new(Duration::from_secs(600), Duration::from_secs(15)),
            ],
        ];
        for specs in bad {
            assert!(validate_specs(&specs).is_err(), "{specs:?}");
        }
    }
}
