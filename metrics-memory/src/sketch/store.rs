//! One sign's bucket counts: a dense array of keys with narrow counts
//! that widen (16, 32, 64 bits) only when a count needs it.

/// Dense counts of one sign over an array of keys, with the counts beyond
/// either end of the array.
#[derive(Debug, Clone, Default)]
pub(super) struct Store<C> {
    /// Key of `counts[0]`.
    pub(super) offset: i32,
    pub(super) counts: Vec<C>,
    /// Samples below the array (reported as its lowest bucket).
    pub(super) under: u64,
    /// Samples above the array (reported as its highest bucket).
    pub(super) over: u64,
    pub(super) total: u64,
}

/// A bucket count: `u16` until a count needs more, then `u32`, then `u64`
/// (saturating, past any count a process can record).
pub(super) trait Count: Copy + Default + Into<u64> {
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

pub(super) fn add_count<C: Count>(c: &mut C, n: u64) {
    let _ = c.try_add(n);
}

impl<C: Count> Store<C> {
    pub(super) fn hi(&self) -> i32 {
        self.offset + self.counts.len() as i32 - 1
    }

    /// Adds `n` samples of `key`; `false` (nothing changed) when a count
    /// would not fit `C` (only possible for `n` below 2^16 in a bucket of
    /// the array, as new buckets start at zero).
    #[inline]
    pub(super) fn add(&mut self, key: i32, n: u64, max: usize) -> bool {
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
    pub(super) fn add_outside(&mut self, key: i32, n: u64, max: usize) {
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
    pub(super) fn grow(&mut self, extra: usize) {
        let len = self.counts.len();
        if self.counts.capacity() - len < extra {
            self.counts.reserve_exact(extra.max(len / 4).max(16));
        }
    }

    pub(super) fn widen<D: Count + TryFrom<u64>>(&self) -> Store<D> {
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

    pub(super) fn clear(&mut self) {
        self.counts.clear();
        self.offset = 0;
        self.under = 0;
        self.over = 0;
        self.total = 0;
    }

    /// Nonzero (key, count) pairs in ascending key order, `under` and
    /// `over` counted at the array's ends.
    pub(super) fn entries(&self) -> StoreEntries<'_, C> {
        StoreEntries { store: self, i: 0 }
    }

    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<C>()
    }
}

/// Nonzero (key, count) pairs of a store in ascending key order, `under`
/// and `over` counted at the array's ends.
pub(super) struct StoreEntries<'a, C> {
    pub(super) store: &'a Store<C>,
    pub(super) i: usize,
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
pub(super) enum DenseEntries<'a> {
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
pub(super) enum Dense {
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
    pub(super) fn add(&mut self, key: i32, n: u64, max: usize) {
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
    pub(super) fn widen_and_add(&mut self, key: i32, n: u64, max: usize) {
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

    pub(super) fn total(&self) -> u64 {
        match self {
            Dense::Narrow(s) => s.total,
            Dense::Wide(s) => s.total,
            Dense::Huge(s) => s.total,
        }
    }

    pub(super) fn entries(&self) -> DenseEntries<'_> {
        match self {
            Dense::Narrow(s) => DenseEntries::Narrow(s.entries()),
            Dense::Wide(s) => DenseEntries::Wide(s.entries()),
            Dense::Huge(s) => DenseEntries::Huge(s.entries()),
        }
    }

    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Dense::Narrow(s) => s.heap_bytes(),
            Dense::Wide(s) => s.heap_bytes(),
            Dense::Huge(s) => s.heap_bytes(),
        }
    }

    pub(super) fn clear(&mut self) {
        match self {
            Dense::Narrow(s) => s.clear(),
            Dense::Wide(s) => s.clear(),
            Dense::Huge(s) => s.clear(),
        }
    }
}
