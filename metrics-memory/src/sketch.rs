//! A DDSketch-style quantile sketch: logarithmic buckets with a guaranteed
//! relative error, mergeable, bounded in memory, and outlier-proof.
//!
//! # Buckets
//!
//! A positive value `x` goes to bucket `k = ceil(ln x / ln γ)` with
//! `γ = (1 + α) / (1 - α)` and `α = 0.005` ([`RELATIVE_ACCURACY`]); a bucket
//! is reported as `2γ^k / (γ + 1)`, within `α` of every value in it.
//! Negative values use a mirror store; zero has its own count.
//!
//! The windows store their sketches at *level 1*: buckets of `γ²`, exactly
//! two level-0 buckets each (`ceil(k / 2)`), so a level-1 bucket is within
//! [`WINDOW_ACCURACY`] (0.99998 %) of its values. One logarithm per sample
//! feeds both levels, and the nesting means no value is ever re-bucketed
//! with a second rounding error. (Base-2 exponential buckets, as
//! OpenTelemetry's scale or Prometheus native-histogram schemas, nest the
//! same way, but their closest scales give 0.27 % or 0.54 %: to keep 0.5 %
//! the all-time sketch would need scale 7, 1.85 times as many buckets as
//! this `γ` for the same accuracy, and memory is what this sketch is
//! bounded by.)
//!
//! # Bounded, and what one extreme sample costs
//!
//! Each sign keeps a dense window of at most [`MAX_KEYS`] buckets (level 0:
//! 4096, covering 17.8 decades; level 1: 2048 over the same range) plus two
//! counters, `under` and `over`, for values beyond the window's ends. A new
//! key outside the window grows it while it fits; when it does not, the
//! sketch moves whichever side holds fewer samples: either the window
//! slides to take the new key (the buckets it leaves fall into `under` or
//! `over`) or the new sample is counted in `under`/`over`. So an extreme
//! value (1e300, 1e-300, `Duration::MAX`) next to a bulk of ordinary ones is
//! counted beyond the window's edge: every sample keeps its rank, so no
//! quantile whose rank lands in the bulk moves; only a quantile whose rank
//! lands on such a clamped sample reports the window's edge value (the
//! callers then clamp to the exact min and max, and report q = 0 and q = 1
//! as the exact min and max). Nothing is ever folded into the bulk, unlike
//! a DDSketch that collapses its lowest buckets.

/// Relative accuracy of every all-time quantile (level 0).
pub const RELATIVE_ACCURACY: f64 = 0.005;
/// Relative accuracy of every windowed quantile (level 1: `(γ² - 1) / (γ² + 1)`).
pub const WINDOW_ACCURACY: f64 = 0.01;
/// Most dense buckets per sign, per level: 17.8 decades at both levels.
pub const MAX_KEYS: [usize; 2] = [4096, 2048];
/// `ln γ`.
const LN_GAMMA: f64 = 0.010_000_083_334_583_179;
/// `1 / ln γ`.
const INV_LN_GAMMA: f64 = 99.999_166_661_112_81;

/// Where a value goes, at level 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Exactly zero (or a subnormal).
    Zero,
    /// A positive value's bucket.
    Pos(i32),
    /// A negative value's bucket (of its magnitude).
    Neg(i32),
}

impl Key {
    /// The level-0 key of a finite value.
    #[inline]
    pub fn of(value: f64) -> Key {
        let mag = value.abs();
        if mag < f64::MIN_POSITIVE || !mag.is_finite() {
            return Key::Zero;
        }
        // ln of a normal f64 is within ±745, so the key fits an i32 easily.
        let k = (mag.ln() * INV_LN_GAMMA).ceil() as i32;
        if value > 0.0 {
            Key::Pos(k)
        } else {
            Key::Neg(k)
        }
    }
}

/// A level-0 key at `level` (level 1: `ceil(k / 2)`).
#[inline]
fn at_level(k: i32, level: u8) -> i32 {
    if level == 0 { k } else { (k + 1).div_euclid(2) }
}

/// The value reported for bucket `k` at `level`.
fn value(k: i32, level: u8) -> f64 {
    let ln = LN_GAMMA * f64::from(1u32 << level);
    2.0 * (f64::from(k) * ln).exp() / (ln.exp() + 1.0)
}

/// Dense counts of one sign over a window of keys, with the counts beyond
/// either end of the window.
#[derive(Debug, Clone, Default)]
struct Store<C> {
    /// Key of `counts[0]`.
    offset: i32,
    counts: Vec<C>,
    /// Samples below the window (reported as its lowest bucket).
    under: u64,
    /// Samples above the window (reported as its highest bucket).
    over: u64,
    total: u64,
}

/// A bucket count: `u16` until a count needs more, then `u32`, then `u64`
/// (saturating, past any count a process can record).
trait Count: Copy + Default + Into<u64> {
    const ZERO: Self;
    /// Adds `n`; `false` (unchanged) if the sum does not fit.
    fn try_add(&mut self, n: u64) -> bool;
}

impl Count for u16 {
    const ZERO: Self = 0;
    #[inline]
    fn try_add(&mut self, n: u64) -> bool {
        match u16::try_from(u64::from(*self) + n) {
            Ok(v) => {
                *self = v;
                true
            }
            Err(_) => false,
        }
    }
}

impl Count for u32 {
    const ZERO: Self = 0;
    #[inline]
    fn try_add(&mut self, n: u64) -> bool {
        match u64::from(*self)
            .checked_add(n)
            .and_then(|v| u32::try_from(v).ok())
        {
            Some(v) => {
                *self = v;
                true
            }
            None => false,
        }
    }
}

impl Count for u64 {
    const ZERO: Self = 0;
    #[inline]
    fn try_add(&mut self, n: u64) -> bool {
        *self = self.saturating_add(n);
        true
    }
}

fn add_count<C: Count>(c: &mut C, n: u64) {
    let _ = c.try_add(n);
}

impl<C: Count> Store<C> {
    fn hi(&self) -> i32 {
        self.offset + self.counts.len() as i32 - 1
    }

    /// Adds `n` samples of `key`; `false` (nothing changed) when a count
    /// would not fit `C` (only possible for `n` below 2^16 in a bucket of
    /// the window, as new buckets start at zero).
    #[inline]
    fn add(&mut self, key: i32, n: u64, max: usize) -> bool {
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.reserve_exact(16);
            self.counts.push(C::ZERO);
        }
        let idx = key.wrapping_sub(self.offset);
        if idx >= 0 && (idx as usize) < self.counts.len() {
            if !self.counts[idx as usize].try_add(n) {
                return false;
            }
            self.total += n;
            return true;
        }
        self.total += n;
        self.add_outside(key, n, max);
        true
    }

    #[cold]
    fn add_outside(&mut self, key: i32, n: u64, max: usize) {
        let (lo, hi) = (self.offset, self.hi());
        if key < lo {
            let need = (i64::from(hi) - i64::from(key) + 1) as usize;
            if need > max {
                // Sliding down to `key` would drop everything above `new_hi`.
                let new_hi = key + max as i32 - 1;
                let keep = (new_hi - lo + 1).max(0) as usize;
                let off: u64 = self.counts[keep.min(self.counts.len())..]
                    .iter()
                    .map(|c| (*c).into())
                    .sum();
                if off > n {
                    self.under += n;
                    return;
                }
                self.over += off;
                self.counts.truncate(keep);
                if self.counts.is_empty() {
                    self.offset = key;
                    self.counts.push(C::ZERO);
                    add_count(&mut self.counts[0], n);
                    return;
                }
            }
            let grow = (self.offset - key) as usize;
            self.grow(grow);
            let len = self.counts.len();
            self.counts.resize(len + grow, C::ZERO);
            self.counts.copy_within(0..len, grow);
            self.counts[..grow].fill(C::ZERO);
            self.offset = key;
            add_count(&mut self.counts[0], n);
        } else {
            let need = (i64::from(key) - i64::from(lo) + 1) as usize;
            if need > max {
                let new_lo = key - max as i32 + 1;
                let drop = (new_lo - lo).max(0) as usize;
                let off: u64 = self.counts[..drop.min(self.counts.len())]
                    .iter()
                    .map(|c| (*c).into())
                    .sum();
                if off > n {
                    self.over += n;
                    return;
                }
                self.under += off;
                if drop >= self.counts.len() {
                    self.counts.clear();
                    self.offset = key;
                    self.counts.push(C::ZERO);
                    add_count(&mut self.counts[0], n);
                    return;
                }
                self.counts.copy_within(drop.., 0);
                self.counts.truncate(self.counts.len() - drop);
                self.offset = new_lo;
            }
            let len = (key - self.offset + 1) as usize;
            self.grow(len - self.counts.len());
            self.counts.resize(len, C::ZERO);
            add_count(&mut self.counts[len - 1], n);
        }
    }

    /// Reserves room for `extra` more buckets with some headroom (a quarter
    /// of the current length), so a slowly widening range reallocates
    /// rarely, without doubling the memory as `Vec` growth would.
    fn grow(&mut self, extra: usize) {
        let len = self.counts.len();
        if self.counts.capacity() - len < extra {
            self.counts.reserve_exact(extra.max(len / 4).max(16));
        }
    }

    fn widen<D: Count + TryFrom<u64>>(&self) -> Store<D> {
        Store {
            offset: self.offset,
            counts: self
                .counts
                .iter()
                .map(|c| D::try_from((*c).into()).unwrap_or(D::ZERO))
                .collect(),
            under: self.under,
            over: self.over,
            total: self.total,
        }
    }

    fn clear(&mut self) {
        self.counts.clear();
        self.offset = 0;
        self.under = 0;
        self.over = 0;
        self.total = 0;
    }

    /// Nonzero (key, count) pairs in ascending key order, `under` and
    /// `over` counted at the window's ends.
    fn entries(&self) -> StoreEntries<'_, C> {
        StoreEntries { store: self, i: 0 }
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<C>()
    }
}

/// Nonzero (key, count) pairs of a store in ascending key order, `under`
/// and `over` counted at the window's ends.
struct StoreEntries<'a, C> {
    store: &'a Store<C>,
    i: usize,
}

impl<C: Count> Iterator for StoreEntries<'_, C> {
    type Item = (i32, u64);
    #[inline]
    fn next(&mut self) -> Option<(i32, u64)> {
        let s = self.store;
        let last = s.counts.len().saturating_sub(1);
        while self.i < s.counts.len() {
            let i = self.i;
            self.i += 1;
            let mut n: u64 = s.counts[i].into();
            if i == 0 {
                n += s.under;
            }
            if i == last {
                n += s.over;
            }
            if n > 0 {
                return Some((s.offset + i as i32, n));
            }
        }
        None
    }
}

/// [`StoreEntries`] of either width, without boxing.
enum DenseEntries<'a> {
    Narrow(StoreEntries<'a, u16>),
    Wide(StoreEntries<'a, u32>),
    Huge(StoreEntries<'a, u64>),
}

impl Iterator for DenseEntries<'_> {
    type Item = (i32, u64);
    #[inline]
    fn next(&mut self) -> Option<(i32, u64)> {
        match self {
            DenseEntries::Narrow(e) => e.next(),
            DenseEntries::Wide(e) => e.next(),
            DenseEntries::Huge(e) => e.next(),
        }
    }
}

/// One sign's store: narrow counts until one needs more than 16 bits, then
/// 32, then 64.
#[derive(Debug, Clone)]
enum Dense {
    Narrow(Store<u16>),
    Wide(Store<u32>),
    Huge(Store<u64>),
}

impl Default for Dense {
    fn default() -> Self {
        Dense::Narrow(Store::default())
    }
}

impl Dense {
    #[inline]
    fn add(&mut self, key: i32, n: u64, max: usize) {
        match self {
            Dense::Narrow(s) if n < 1 << 16 => {
                if !s.add(key, n, max) {
                    self.widen_and_add(key, n, max);
                }
            }
            Dense::Narrow(_) => self.widen_and_add(key, n, max),
            Dense::Wide(s) if n < 1 << 32 => {
                if !s.add(key, n, max) {
                    self.widen_and_add(key, n, max);
                }
            }
            Dense::Wide(_) => self.widen_and_add(key, n, max),
            Dense::Huge(s) => {
                s.add(key, n, max);
            }
        }
    }

    /// Switches to wider counts (at most twice in a sketch's life: 32 bits
    /// when `n` fits them, 64 when a count outgrows 32), then adds.
    #[cold]
    fn widen_and_add(&mut self, key: i32, n: u64, max: usize) {
        if let Dense::Narrow(s) = self {
            *self = if n < 1 << 32 {
                Dense::Wide(s.widen())
            } else {
                Dense::Huge(s.widen())
            };
        }
        if let Dense::Wide(s) = self {
            // A fresh bucket takes `n` whole: only a count that fits.
            if n < 1 << 32 && s.add(key, n, max) {
                return;
            }
            *self = Dense::Huge(s.widen());
        }
        if let Dense::Huge(s) = self {
            s.add(key, n, max);
        }
    }

    fn total(&self) -> u64 {
        match self {
            Dense::Narrow(s) => s.total,
            Dense::Wide(s) => s.total,
            Dense::Huge(s) => s.total,
        }
    }

    fn entries(&self) -> DenseEntries<'_> {
        match self {
            Dense::Narrow(s) => DenseEntries::Narrow(s.entries()),
            Dense::Wide(s) => DenseEntries::Wide(s.entries()),
            Dense::Huge(s) => DenseEntries::Huge(s.entries()),
        }
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        match self {
            Dense::Narrow(s) => s.heap_bytes(),
            Dense::Wide(s) => s.heap_bytes(),
            Dense::Huge(s) => s.heap_bytes(),
        }
    }

    fn clear(&mut self) {
        match self {
            Dense::Narrow(s) => s.clear(),
            Dense::Wide(s) => s.clear(),
            Dense::Huge(s) => s.clear(),
        }
    }
}

/// A mergeable quantile sketch (see the module docs).
#[derive(Debug, Clone)]
pub struct Sketch {
    level: u8,
    pos: Dense,
    neg: Dense,
    zero: u64,
}

impl Default for Sketch {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Sketch {
    /// An empty sketch at `level` (0: all-time accuracy, 1: window accuracy).
    pub fn new(level: u8) -> Self {
        Sketch {
            level: level.min(1),
            pos: Dense::default(),
            neg: Dense::default(),
            zero: 0,
        }
    }

    /// Adds one finite value.
    #[cfg(test)]
    pub fn add(&mut self, value: f64) {
        self.add_key(Key::of(value), 1);
    }

    /// Adds `n` values of level-0 key `key`.
    #[inline]
    pub fn add_key(&mut self, key: Key, n: u64) {
        let max = MAX_KEYS[usize::from(self.level)];
        match key {
            Key::Zero => self.zero += n,
            Key::Pos(k) => self.pos.add(at_level(k, self.level), n, max),
            Key::Neg(k) => self.neg.add(at_level(k, self.level), n, max),
        }
    }

    /// Adds every value of `other` (of the same level).
    pub fn merge(&mut self, other: &Sketch) {
        debug_assert_eq!(self.level, other.level);
        let max = MAX_KEYS[usize::from(self.level)];
        for (k, n) in other.pos.entries() {
            self.pos.add(k, n, max);
        }
        for (k, n) in other.neg.entries() {
            self.neg.add(k, n, max);
        }
        self.zero += other.zero;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.pos.total() + self.neg.total() + self.zero
    }

    /// The nearest-rank `q`-quantile (0 ≤ q ≤ 1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        // Nearest rank, 1-based: the smallest value with at least q·n values ≤ it.
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        let mut last = None;
        // Negative values, most negative (largest magnitude) first.
        let neg: Vec<(i32, u64)> = self.neg.entries().collect();
        for (k, c) in neg.into_iter().rev() {
            seen += c;
            last = Some(-value(k, self.level));
            if seen >= rank {
                return last;
            }
        }
        seen += self.zero;
        if self.zero > 0 {
            last = Some(0.0);
        }
        if seen >= rank {
            return Some(0.0);
        }
        for (k, c) in self.pos.entries() {
            seen += c;
            last = Some(value(k, self.level));
            if seen >= rank {
                return last;
            }
        }
        // Only reached when a bucket saturated its u32 count.
        last
    }

    /// Cumulative counts for the upper bounds `bounds` (ascending), of the
    /// values scaled by `scale`: entry `i` counts the values whose bucket,
    /// reported as its value clamped to the exact `[min, max]`, is at most
    /// `bounds[i]`. See [`QuantileSketch::cumulative_counts`] for the error.
    pub fn cumulative_counts(&self, min: f64, max: f64, scale: f64, bounds: &[f64]) -> Vec<u64> {
        let mut per = vec![0u64; bounds.len()];
        let mut put = |v: f64, n: u64| {
            let v = if self.count() > 0 && min <= max {
                v.clamp(min, max)
            } else {
                v
            } * scale;
            let i = bounds.partition_point(|b| *b < v);
            if let Some(c) = per.get_mut(i) {
                *c = c.saturating_add(n);
            }
        };
        let neg: Vec<(i32, u64)> = self.neg.entries().collect();
        for (k, n) in neg.into_iter().rev() {
            put(-value(k, self.level), n);
        }
        if self.zero > 0 {
            put(0.0, self.zero);
        }
        for (k, n) in self.pos.entries() {
            put(value(k, self.level), n);
        }
        let mut seen = 0u64;
        for c in &mut per {
            seen = seen.saturating_add(*c);
            *c = seen;
        }
        per
    }

    /// Heap bytes used by the bucket arrays.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.pos.heap_bytes() + self.neg.heap_bytes()
    }

    /// Empties the sketch, keeping its allocations.
    pub fn clear(&mut self) {
        self.pos.clear();
        self.neg.clear();
        self.zero = 0;
    }

    /// Appends the compact encoding of this sketch to `out`: the zero
    /// count, then per sign the number of nonzero buckets, the first key,
    /// and per bucket one varint `gap << 1 | changed` (gap: keys skipped
    /// since the previous bucket) followed, when the count differs from the
    /// previous bucket's (the first compares with 1), by the zigzag varint
    /// of the difference. Sparse bins (mostly single samples) cost about
    /// one byte per sample; dense ones, whose neighbouring counts are
    /// close, about two bytes per bucket.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.zero);
        for store in [&self.pos, &self.neg] {
            write_store(out, store.entries().count() as u64, store.entries());
        }
    }

    /// Adds the values of an encoding made by [`encode`](Self::encode) at
    /// the same level. Returns `false` (having added a prefix) if the bytes
    /// are malformed, which only a bug could cause.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> bool {
        let mut r = Reader { bytes, pos: 0 };
        let max = MAX_KEYS[usize::from(self.level)];
        let Some(zero) = r.varint() else {
            return false;
        };
        self.zero += zero;
        for sign in 0..2 {
            let Some(it) = StoreIter::new(r) else {
                return false;
            };
            let store = if sign == 0 {
                &mut self.pos
            } else {
                &mut self.neg
            };
            for (k, c) in it.clone() {
                store.add(k, c, max);
            }
            let Some(rest) = it.rest() else { return false };
            r = rest;
        }
        true
    }
}

/// Writes one sign's `n` entries (ascending keys) in the encoded form.
fn write_store(out: &mut Vec<u8>, n: u64, entries: impl Iterator<Item = (i32, u64)>) {
    put_varint(out, n);
    let mut prev: Option<i32> = None;
    let mut prev_count = 1u64;
    for (k, c) in entries {
        let gap = match prev {
            None => {
                put_varint(out, zigzag(k));
                0
            }
            Some(p) => (k - p - 1) as u64,
        };
        prev = Some(k);
        let delta = c as i64 - prev_count as i64;
        prev_count = c;
        put_varint(out, (gap << 1) | u64::from(delta != 0));
        if delta != 0 {
            put_varint(out, ((delta << 1) ^ (delta >> 63)) as u64);
        }
    }
}

/// Whether `bytes` could be a window bin's encoding: every varint whole,
/// at most [`MAX_KEYS`] buckets per sign, keys within what a finite value
/// gives at level 1 (|key| ≤ 40,000), strictly ascending, counts positive
/// and their total below 2^48, nothing after the end. Bytes read back from
/// a database pass this before they are merged.
fn valid_bin_encoding(bytes: &[u8]) -> bool {
    const MAX_KEY: u32 = 40_000;
    const MAX_TOTAL: u64 = 1 << 48;
    let mut r = Reader { bytes, pos: 0 };
    let Some(mut total) = r.varint() else {
        return false;
    };
    for _sign in 0..2 {
        let Some(mut it) = StoreIter::new(r) else {
            return false;
        };
        if it.left > MAX_KEYS[0] as u64 {
            return false;
        }
        let mut prev: Option<i32> = None;
        for _ in 0..it.left {
            let Some((key, count)) = it.next() else {
                return false;
            };
            if key.unsigned_abs() > MAX_KEY || count == 0 || prev.is_some_and(|p| key <= p) {
                return false;
            }
            prev = Some(key);
            total = total.saturating_add(count);
        }
        r = it.r;
    }
    total < MAX_TOTAL && r.pos == bytes.len()
}

/// The entries of one encoded sign, in ascending key order.
#[derive(Clone)]
struct StoreIter<'a> {
    r: Reader<'a>,
    left: u64,
    key: i32,
    count: u64,
    first: bool,
}

impl<'a> StoreIter<'a> {
    fn new(mut r: Reader<'a>) -> Option<Self> {
        let left = r.varint()?;
        let key = if left > 0 { unzigzag(r.varint()?) } else { 0 };
        Some(StoreIter {
            r,
            left,
            key,
            count: 1,
            first: true,
        })
    }

    /// The reader after this sign's entries (`None` if they are malformed).
    fn rest(mut self) -> Option<Reader<'a>> {
        while self.left > 0 {
            self.next()?;
        }
        Some(self.r)
    }
}

impl Iterator for StoreIter<'_> {
    type Item = (i32, u64);
    fn next(&mut self) -> Option<(i32, u64)> {
        if self.left == 0 {
            return None;
        }
        let tok = self.r.varint()?;
        if !self.first {
            self.key = self.key.saturating_add(1).saturating_add((tok >> 1) as i32);
        }
        self.first = false;
        if tok & 1 == 1 {
            let z = self.r.varint()?;
            let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            self.count = u64::try_from(self.count as i64 + delta).ok()?;
        }
        self.left -= 1;
        Some((self.key, self.count))
    }
}

/// Two ascending entry streams as one, counts of equal keys added.
fn merge_entries<'a>(a: StoreIter<'a>, b: StoreIter<'a>) -> impl Iterator<Item = (i32, u64)> + 'a {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some((ka, ca)), Some((kb, cb))) => {
            if ka < kb {
                a.next()
            } else if kb < ka {
                b.next()
            } else {
                a.next();
                b.next();
                Some((ka, ca + cb))
            }
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// Appends to `out` the encoding of the merge of two encodings of the same
/// level, without decoding either into a dense sketch. `false` if either
/// is malformed (only a bug could cause it).
pub fn merge_encodings(a: &[u8], b: &[u8], out: &mut Vec<u8>) -> bool {
    let (mut ra, mut rb) = (Reader { bytes: a, pos: 0 }, Reader { bytes: b, pos: 0 });
    let (Some(za), Some(zb)) = (ra.varint(), rb.varint()) else {
        return false;
    };
    put_varint(out, za + zb);
    for _sign in 0..2 {
        let (Some(ia), Some(ib)) = (StoreIter::new(ra), StoreIter::new(rb)) else {
            return false;
        };
        let n = merge_entries(ia.clone(), ib.clone()).count() as u64;
        write_store(out, n, merge_entries(ia.clone(), ib.clone()));
        let (Some(na), Some(nb)) = (ia.rest(), ib.rest()) else {
            return false;
        };
        (ra, rb) = (na, nb);
    }
    true
}

fn zigzag(k: i32) -> u64 {
    u64::from(((k << 1) ^ (k >> 31)) as u32)
}

fn unzigzag(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic PRNG (SplitMix64) so the tests need no extra crate.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed)
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        pub(crate) fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        pub(crate) fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// Nearest-rank quantile of sorted values.
    pub(crate) fn exact(sorted: &[f64], q: f64) -> f64 {
        let n = sorted.len();
        sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
    }

    fn rel(got: f64, exact: f64) -> f64 {
        if exact == 0.0 {
            got.abs()
        } else {
            ((got - exact) / exact).abs()
        }
    }

    const QS: [f64; 10] = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0];

    /// A bucket past 2^32 samples (weeks of a hot series, or a fleet's
    /// bins merged) keeps its exact count: counts widen to 64 bits instead
    /// of saturating, so quantiles stay right and encodings round-trip
    /// (found by the `sketch_bytes` fuzz target).
    #[test]
    fn counts_past_32_bits_stay_exact() {
        let mut s = Sketch::new(1);
        s.add_key(Key::of(1.0), 3_000_000_000);
        s.add_key(Key::of(1.0), 3_000_000_000);
        s.add_key(Key::of(100.0), 5_000_000_000);
        s.add_key(Key::of(0.5), 7);
        assert_eq!(s.count(), 11_000_000_007);
        // 6e9 of 11e9 at 1.0: the median is 1.0, p90 is 100.
        let p50 = s.quantile(0.5).unwrap();
        assert!((p50 - 1.0).abs() < 0.05, "{p50}");
        let p90 = s.quantile(0.9).unwrap();
        assert!((p90 - 100.0).abs() < 5.0, "{p90}");
        let mut out = Vec::new();
        s.encode(&mut out);
        let mut back = Sketch::new(1);
        assert!(back.merge_encoded(&out));
        assert_eq!(back.count(), s.count());
        let entries = |x: &Sketch| x.pos.entries().collect::<Vec<_>>();
        assert_eq!(entries(&back), entries(&s));
        // A wide sketch given a count past 32 bits for a new bucket.
        let mut w = Sketch::new(1);
        w.add_key(Key::of(1.0), 100_000);
        w.add_key(Key::of(1e6), 1 << 33);
        assert_eq!(w.count(), 100_000 + (1 << 33));
        assert_eq!(w.pos.entries().map(|(_, c)| c).sum::<u64>(), w.count());
        // A narrow sketch given one huge count widens straight to 64 bits.
        let mut t = Sketch::new(1);
        t.add_key(Key::of(2.0), 1 << 40);
        assert_eq!(t.pos.entries().next().map(|(_, c)| c), Some(1 << 40));
    }

    /// The stated error of a bucket count: a value is counted at most a
    /// bound when `x + α|x| ≤ bound` and never when `x - α|x| > bound`; the
    /// counts are cumulative and end at the total; the quantile lies in
    /// the bucket holding its rank.
    #[test]
    fn bucket_counts_are_exact_but_for_values_within_alpha_of_a_bound() {
        let mut rng = Rng::new(7);
        let mut bounds: Vec<f64> = vec![-100.0, -1.0, -0.01, 0.0, 0.005, 0.01, 0.25, 1.0];
        bounds.extend([2.5, 5.0, 10.0, 100.0, 1e3, 1e4, 1e6]);
        for round in 0..20 {
            let mut q = QuantileSketch::new();
            let mut values = Vec::new();
            for i in 0..2000 {
                let v = match (round + i) % 5 {
                    // Values right at and beside the bounds.
                    0 => bounds[(rng.next_u64() % bounds.len() as u64) as usize],
                    1 => {
                        bounds[(rng.next_u64() % bounds.len() as u64) as usize]
                            * (1.0 + 0.004 * rng.normal())
                    }
                    2 => -(10f64.powf(rng.uniform() * 4.0 - 2.0)),
                    3 => 0.0,
                    _ => 10f64.powf(rng.uniform() * 8.0 - 3.0),
                };
                q.add(v);
                values.push(v);
            }
            let counts = q.cumulative_counts(&bounds);
            let a = RELATIVE_ACCURACY * (1.0 + 1e-9);
            for (b, c) in bounds.iter().zip(&counts) {
                let surely = values.iter().filter(|x| *x + a * x.abs() <= *b).count() as u64;
                let maybe = values.iter().filter(|x| *x - a * x.abs() <= *b).count() as u64;
                assert!(
                    (surely..=maybe).contains(c),
                    "le={b}: {c} not in {surely}..={maybe}"
                );
            }
            assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
            assert!(*counts.last().unwrap() <= q.count());
            // The quantile lies in the bucket that holds its rank.
            for p in [0.5, 0.9, 0.95, 0.99] {
                let rank = ((p * q.count() as f64).ceil() as u64).max(1);
                let v = q.quantile(p).unwrap();
                let i = counts.partition_point(|c| *c < rank);
                if let Some(hi) = bounds.get(i) {
                    assert!(v <= *hi, "q={p}: {v} above its bucket's bound {hi}");
                }
                if i > 0 {
                    assert!(v > bounds[i - 1], "q={p}: {v} below its bucket");
                }
            }
        }
        assert_eq!(
            QuantileSketch::new().cumulative_counts(&bounds),
            vec![0; bounds.len()]
        );
    }

    fn check_level(name: &str, values: &mut [f64], level: u8, bound: f64) {
        let mut s = Sketch::new(level);
        for v in values.iter() {
            s.add(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in QS {
            let (want, got) = (exact(values, q), s.quantile(q).unwrap());
            let err = rel(got, want);
            assert!(
                err <= bound * (1.0 + 1e-9),
                "{name} level {level} q={q}: exact {want} sketch {got} error {err}"
            );
        }
        assert!(s.heap_bytes() <= 2 * MAX_KEYS[usize::from(level)] * 4);
    }

    fn check(name: &str, values: &mut [f64]) {
        check_level(name, &mut values.to_vec(), 1, WINDOW_ACCURACY);
        check_level(name, values, 0, RELATIVE_ACCURACY);
    }

    const N: usize = 1_000_000;

    #[test]
    fn uniform_within_the_bound() {
        let mut r = Rng::new(1);
        let mut v: Vec<f64> = (0..N).map(|_| 1.0 + r.uniform() * 999.0).collect();
        check("uniform", &mut v);
    }

    #[test]
    fn lognormal_sigma_1_and_2_within_the_bound() {
        for sigma in [1.0, 2.0] {
            let mut r = Rng::new(7);
            let mut v: Vec<f64> = (0..N).map(|_| (3.0 + sigma * r.normal()).exp()).collect();
            check("lognormal", &mut v);
        }
    }

    #[test]
    fn pareto_one_ns_to_one_hour_bimodal_and_constant_within_the_bound() {
        let mut r = Rng::new(11);
        let mut pareto: Vec<f64> = (0..N).map(|_| r.uniform().powf(-1.0 / 1.1)).collect();
        check("pareto 1.1", &mut pareto);
        // 1 ns to 1 h in milliseconds, uniform in the logarithm.
        let mut wide: Vec<f64> = (0..N)
            .map(|_| 1e-6 * (3.6e6f64 / 1e-6).powf(r.uniform()))
            .collect();
        check("1ns..1h", &mut wide);
        let mut bimodal: Vec<f64> = (0..N)
            .map(|i| {
                if i % 10 < 7 {
                    5.0 + r.normal().abs()
                } else {
                    800.0 + 50.0 * r.normal().abs()
                }
            })
            .collect();
        check("bimodal", &mut bimodal);
        let mut constant = vec![42.5; 1000];
        check("constant", &mut constant);
    }

    #[test]
    fn negatives_zero_and_merge() {
        let mut a = Sketch::new(0);
        let mut b = Sketch::new(0);
        let mut all = Vec::new();
        for i in -500..=500 {
            let x = f64::from(i) * 0.75;
            all.push(x);
            if i % 2 == 0 { a.add(x) } else { b.add(x) }
        }
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        check("symmetric", &mut all);
        let med = a.quantile(0.5).unwrap();
        assert!(med.abs() < 1e-9, "median of symmetric data is 0, got {med}");
        assert!(a.quantile(0.0).unwrap() < -370.0);
        assert!(a.quantile(1.5).is_none());
    }

    #[test]
    fn one_extreme_sample_moves_no_quantile_from_p1_to_p99() {
        let mut r = Rng::new(5);
        let bulk: Vec<f64> = (0..200_000).map(|_| (r.normal() * 2.0).exp()).collect();
        for extreme in [1e300, 1e-300, 0.0, f64::MAX, -1e300, 1.8e22] {
            for first in [false, true] {
                for level in [0u8, 1] {
                    let bound = [RELATIVE_ACCURACY, WINDOW_ACCURACY][usize::from(level)];
                    let mut s = Sketch::new(level);
                    let mut all = bulk.clone();
                    all.push(extreme);
                    if first {
                        s.add(extreme);
                    }
                    for v in &bulk {
                        s.add(*v);
                    }
                    if !first {
                        s.add(extreme);
                    }
                    all.sort_by(f64::total_cmp);
                    for q in [0.01, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] {
                        let (want, got) = (exact(&all, q), s.quantile(q).unwrap());
                        assert!(
                            rel(got, want) <= bound * (1.0 + 1e-9),
                            "extreme {extreme:e} (first: {first}) level {level} q={q}: \
                             exact {want} sketch {got}"
                        );
                    }
                    // The window stays bounded: the extreme is counted beyond it.
                    assert!(s.heap_bytes() <= 2 * MAX_KEYS[usize::from(level)] * 4);
                }
            }
        }
    }

    #[test]
    fn what_is_given_up_the_clamped_tail_reports_the_window_edge() {
        // Half the mass at 1, half at 1e30 (beyond 17.8 decades): the later
        // half is counted beyond the window, keeping its rank, and the top
        // quantiles report the window's upper edge, not 1e30.
        let mut s = Sketch::new(0);
        for _ in 0..100 {
            s.add(1.0);
        }
        for _ in 0..99 {
            s.add(1e30);
        }
        let p25 = s.quantile(0.25).unwrap();
        assert!((p25 - 1.0).abs() <= 0.005, "{p25}");
        let p90 = s.quantile(0.9).unwrap();
        assert!(
            p90 >= 1.0 - RELATIVE_ACCURACY,
            "{p90}: the clamped samples still rank above the bulk"
        );
        assert!(p90 < 1e30 / 1e10, "{p90}: reported at the window edge");
    }

    #[test]
    fn encoding_round_trips_and_is_compact() {
        let mut r = Rng::new(9);
        let mut s = Sketch::new(1);
        for _ in 0..100 {
            s.add((2.0 * r.normal()).exp());
        }
        s.add(0.0);
        s.add(-3.0);
        s.add(-3.0);
        let mut buf = Vec::new();
        s.encode(&mut buf);
        assert!(buf.len() < 2 * 104, "{} bytes for 104 samples", buf.len());
        let mut back = Sketch::new(1);
        assert!(back.merge_encoded(&buf));
        assert_eq!(back.count(), s.count());
        for q in QS {
            assert_eq!(back.quantile(q), s.quantile(q), "q={q}");
        }
        assert!(!Sketch::new(1).merge_encoded(&buf[..buf.len() - 1]));
    }
}

/// The backend's quantile sketch for other parts of an application (the
/// agent's stream aggregation uses it), so the project has one quantile
/// engine: quantiles within [`RELATIVE_ACCURACY`] of the exact nearest-rank
/// value, exact min and max, bounded memory, outlier-proof.
///
/// ```
/// use metrics_memory::QuantileSketch;
/// let mut s = QuantileSketch::new();
/// for v in 1..=100 {
///     s.add(f64::from(v));
/// }
/// let p95 = s.quantile(0.95).unwrap();
/// assert!((p95 - 95.0).abs() <= 95.0 * 0.005);
/// assert_eq!((s.quantile(0.0), s.quantile(1.0)), (Some(1.0), Some(100.0)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct QuantileSketch {
    sketch: Sketch,
    min: f64,
    max: f64,
}

impl QuantileSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value; a NaN or infinite value is ignored.
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        if self.sketch.count() == 0 {
            (self.min, self.max) = (value, value);
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.sketch.add_key(Key::of(value), 1);
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.sketch.count()
    }

    /// An empty sketch at window accuracy ([`WINDOW_ACCURACY`]), the
    /// accuracy of the bins' sketches ([`SealedBin::sketch`](crate::SealedBin::sketch)):
    /// the one to merge them into with [`merge_bin`](Self::merge_bin).
    pub fn windowed() -> Self {
        QuantileSketch {
            sketch: Sketch::new(1),
            min: 0.0,
            max: 0.0,
        }
    }

    /// Adds the samples of one bin: its sketch encoding and its exact min
    /// and max. Returns `false`, adding nothing, when the bytes do not
    /// decode or this sketch is not [`windowed`](Self::windowed).
    pub fn merge_bin(&mut self, encoding: &[u8], min: f64, max: f64) -> bool {
        let mut bin = Sketch::new(1);
        if self.sketch.level != 1
            || !valid_bin_encoding(encoding)
            || !bin.merge_encoded(encoding)
            || bin.count() == 0
        {
            return false;
        }
        if self.sketch.count() == 0 {
            (self.min, self.max) = (min, max);
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.sketch.merge(&bin);
        true
    }

    /// Adds this [`windowed`](Self::windowed) sketch's samples into a
    /// window query's accumulated sketch (level 1 too); nothing for any
    /// other sketch.
    pub(crate) fn merge_into_window(&self, acc: &mut Option<Box<Sketch>>) {
        if self.sketch.level != 1 || self.sketch.count() == 0 {
            return;
        }
        match acc {
            Some(a) if a.level == 1 => a.merge(&self.sketch),
            Some(_) => {}
            None => *acc = Some(Box::new(self.sketch.clone())),
        }
    }

    /// Appends the compact encoding of a [`windowed`](Self::windowed)
    /// sketch to `out` (what [`merge_bin`](Self::merge_bin) reads back, min
    /// and max aside); `false`, appending nothing, for any other sketch.
    pub fn encode_bin(&self, out: &mut Vec<u8>) -> bool {
        if self.sketch.level != 1 {
            return false;
        }
        self.sketch.encode(out);
        true
    }

    /// Cumulative bucket counts for the upper bounds `bounds` (ascending,
    /// as a Prometheus histogram's `le`): entry `i` is the number of values
    /// counted at most `bounds[i]`; the total is [`count`](Self::count).
    ///
    /// The sketch keeps buckets, not values, so a count is exact up to the
    /// values near a bound: every value `x` with `x + α|x| ≤ bound` is
    /// counted and no value with `x - α|x| > bound` is
    /// (`α` = [`RELATIVE_ACCURACY`], 0.5 %): only a value within 0.5 % of a
    /// bound may land in the neighbouring bucket. Zero is exact. (A value
    /// more than 17.8 decades away from the bulk of the others is counted at
    /// the edge of the sketch's range, see the module docs, and so may be
    /// further off.) The counts are the ones [`quantile`](Self::quantile)
    /// reads, so the `q`-quantile lies in the bucket holding rank `q·n`.
    ///
    /// ```
    /// use metrics_memory::QuantileSketch;
    /// let mut s = QuantileSketch::new();
    /// for v in 1..=100 {
    ///     s.add(f64::from(v));
    /// }
    /// assert_eq!(s.cumulative_counts(&[10.5, 50.5, 200.0]), vec![10, 50, 100]);
    /// ```
    pub fn cumulative_counts(&self, bounds: &[f64]) -> Vec<u64> {
        self.sketch
            .cumulative_counts(self.min, self.max, 1.0, bounds)
    }

    /// The nearest-rank `q`-quantile (0 ≤ q ≤ 1), within the relative
    /// accuracy and between the exact min and max; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if q <= 0.0 && self.count() > 0 {
            return Some(self.min);
        }
        if q >= 1.0 && self.count() > 0 {
            return Some(self.max);
        }
        self.sketch.quantile(q).map(|v| v.clamp(self.min, self.max))
    }
}
