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
//! The rings store their sketches at *level 1*: buckets of `γ²`, exactly
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
//! # Bounded, and every finite value in its own bucket
//!
//! Each sign keeps a dense array of at most [`MAX_KEYS`] buckets (level 0:
//! 4096, covering 17.8 decades; level 1: 2048 over the same range) and a
//! sorted list of at most [`FAR_KEYS`] *far* buckets, for keys beyond the
//! array's ends, each with its own key and count. A new key outside the
//! array grows it while it fits; when it does not, the sketch moves
//! whichever side holds fewer samples: either the array slides to take the
//! new key (the buckets it leaves become far buckets) or the new sample
//! gets a far bucket. So an extreme value (1e300, 1e-300, `f64::MAX`, a
//! subnormal's neighbour) next to a bulk of ordinary ones is reported
//! within the sketch's accuracy like any other: every finite value of
//! either sign, from `f64::MIN_POSITIVE` to `f64::MAX`, is within
//! [`RELATIVE_ACCURACY`] (level 0) or [`WINDOW_ACCURACY`] (level 1) of its
//! bucket's value. Zero and subnormals (below `f64::MIN_POSITIVE`) count as
//! zero. Infinities and NaN never reach a sketch: the protocol refuses them
//! when a measurement is built, and [`QuantileSketch::add`] ignores them.
//!
//! The far list is what bounds memory: only when one sign of a sketch sees
//! more than [`FAR_KEYS`] distinct keys outside a 17.8-decade array (values
//! spread over more than 17.8 decades, or a run of far values arriving
//! before the bulk they are far from, which takes the array first) do two
//! neighbouring far buckets (the pair with the closest keys) merge into
//! the one with more samples. The samples so moved are reported at that
//! bucket's value, not their own; they are counted
//! ([`QuantileSketch::far_merged`]; the backend's health reports them
//! across its series as the detail `far_merged_samples`),
//! so an answer that may be off is never silently so.

/// Relative accuracy of every all-time quantile (level 0).
pub const RELATIVE_ACCURACY: f64 = 0.005;
/// Relative accuracy of every windowed quantile (level 1: `(γ² - 1) / (γ² + 1)`).
pub const WINDOW_ACCURACY: f64 = 0.01;
/// Most dense buckets per sign, per level: 17.8 decades at both levels.
pub const MAX_KEYS: [usize; 2] = [4096, 2048];
/// Most far buckets per sign (beyond the dense array, see the module docs).
pub const FAR_KEYS: usize = 32;
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

impl Key {
    /// The key as one `i32` (what a short list of keys holds): zero as
    /// `i32::MIN`, a positive bucket `k` as `2k`, a negative one as
    /// `2k + 1` (keys of finite values are within ±71,000).
    #[inline]
    pub fn pack(self) -> i32 {
        match self {
            Key::Zero => i32::MIN,
            Key::Pos(k) => k.wrapping_mul(2),
            Key::Neg(k) => k.wrapping_mul(2).wrapping_add(1),
        }
    }

    /// The key [`pack`](Self::pack) gave `packed` for.
    #[inline]
    pub fn unpack(packed: i32) -> Key {
        match packed {
            i32::MIN => Key::Zero,
            p if p & 1 == 0 => Key::Pos(p >> 1),
            p => Key::Neg(p >> 1),
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
    // In log space, and capped: the top bucket's `γ^k` may pass `f64::MAX`
    // while every value in it is finite (and within `α` of the cap).
    (f64::from(k) * ln - ((ln.exp() + 1.0) / 2.0).ln())
        .exp()
        .min(f64::MAX)
}

mod encoding;
mod store;
#[cfg(test)]
pub(crate) mod tests;

pub use encoding::merge_encodings;
use encoding::*;
use store::*;

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
        // Only reached when a bucket count saturated.
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

    /// Samples reported at a neighbouring far bucket's value because the
    /// far list was full (see the module docs); 0 in the usual case.
    pub fn far_merged(&self) -> u64 {
        self.pos.far_merged().saturating_add(self.neg.far_merged())
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

    /// Appends the compact encoding of this sketch to `out`: a version
    /// header, the zero count, then per sign the number of nonzero buckets,
    /// the first key, and a bit stream of each bucket's key gap and count
    /// difference from the previous bucket in adaptive Rice code (version
    /// 3, see `encoding::write_store`): a few bits for a dense bucket whose
    /// count barely changes, about the logarithm of its gap for a sparse
    /// one. Encodings of versions 1 (no header) and 2 (a varint per
    /// bucket), rows stored earlier, still decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_header(out);
        put_varint(out, self.zero);
        for store in [&self.pos, &self.neg] {
            write_store(out, store.entries().count() as u64, store.entries());
        }
    }

    /// Appends the encoding (as [`encode`](Self::encode) writes it) of a
    /// sketch at `level` holding the samples of `keys` (packed level-0
    /// keys, [`Key::pack`]), which this sorts: how a bin of few samples is
    /// sealed without bucket arrays. Each sign holds at most `keys.len()`
    /// buckets, each key its own: no far bucket is merged.
    pub fn encode_keys(level: u8, keys: &mut [i32], out: &mut Vec<u8>) {
        let level = level.min(1);
        // Zero first, then each sign's keys ascending (at `level`).
        let order = |p: &i32| match Key::unpack(*p) {
            Key::Zero => (0u8, 0i32),
            Key::Pos(k) => (1, at_level(k, level)),
            Key::Neg(k) => (2, at_level(k, level)),
        };
        keys.sort_unstable_by_key(order);
        let split = |sign: u8| keys.partition_point(|p| order(p).0 < sign);
        let (pos, neg) = (split(1), split(2));
        write_header(out);
        put_varint(out, pos as u64);
        for sign in [&keys[pos..neg], &keys[neg..]] {
            // Runs of one key are one bucket.
            let entries = sign.chunk_by(|a, b| order(a) == order(b));
            let n = entries.clone().count() as u64;
            write_store(
                out,
                n,
                entries.map(|run| (order(&run[0]).1, run.len() as u64)),
            );
        }
    }

    /// Adds `share` samples drawn from an encoding (at most its count), in
    /// proportion to its buckets: bucket by bucket, the running total is
    /// scaled and rounded, so the counts added sum to `share` exactly and
    /// every quantile of the added samples is one of the encoding's. What a
    /// window takes of a block that straddles its start. `false` if the
    /// bytes are malformed.
    pub fn merge_encoded_share(&mut self, bytes: &[u8], share: u64) -> bool {
        let mut block = Sketch::new(self.level);
        if !block.merge_encoded(bytes) {
            return false;
        }
        let total = block.count();
        let share = share.min(total);
        if share == 0 {
            return true;
        }
        let max = MAX_KEYS[usize::from(self.level)];
        let (mut seen, mut taken) = (0u128, 0u64);
        let mut take = |n: u64| {
            seen += u128::from(n);
            // Rounded `seen · share / total`, at most `share`.
            let upto = ((seen * u128::from(share) * 2 + u128::from(total))
                / (2 * u128::from(total))) as u64;
            let add = upto.saturating_sub(taken);
            taken = upto.max(taken);
            add
        };
        let z = take(block.zero);
        self.zero = self.zero.saturating_add(z);
        for (k, n) in block.pos.entries() {
            let add = take(n);
            if add > 0 {
                self.pos.add(k, add, max);
            }
        }
        for (k, n) in block.neg.entries() {
            let add = take(n);
            if add > 0 {
                self.neg.add(k, add, max);
            }
        }
        true
    }

    /// Adds the values of an encoding made by [`encode`](Self::encode) at
    /// the same level. Returns `false` (having added a prefix) if the bytes
    /// are malformed, or the zero count would pass `u64::MAX`, which only a
    /// bug or a corrupt stored row could cause.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> bool {
        let Some((mut r, version)) = open(bytes) else {
            return false;
        };
        let max = MAX_KEYS[usize::from(self.level)];
        let Some(zero) = r.varint().and_then(|z| self.zero.checked_add(z)) else {
            return false;
        };
        self.zero = zero;
        for sign in 0..2 {
            let Some(it) = StoreIter::new(r, version) else {
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

    /// Samples reported at a neighbouring far bucket's value, not within
    /// the stated accuracy of their own, because one sign saw more than
    /// `FAR_KEYS` (32) distinct buckets beyond a 17.8-decade range (see the
    /// module docs); 0 unless the values are spread that far.
    pub fn far_merged(&self) -> u64 {
        self.sketch.far_merged()
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
    /// bound may land in the neighbouring bucket. Zero is exact. (Only the
    /// [`far_merged`](Self::far_merged) samples, if any, may be further
    /// off; see the module docs.) The counts are the ones [`quantile`](Self::quantile)
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
