//! One sign's bucket counts: a dense array of keys with narrow counts
//! that widen (16, 32, 64 bits) only when a count needs it.

/// Dense counts of one sign over an array of keys, with the keys beyond
/// either end of the array in a short sorted list of their own.
#[derive(Debug, Clone, Default)]
pub(super) struct Store<C> {
    /// Key of `counts[0]`.
    pub(super) offset: i32,
    pub(super) counts: Vec<C>,
    /// Far buckets: (key, count) of keys the array does not reach,
    /// ascending, at most [`FAR_KEYS`](super::FAR_KEYS) (a key may also be
    /// in the array's range once the array moved: [`entries`](Self::entries)
    /// adds them up).
    pub(super) far: Vec<(i32, u64)>,
    /// Samples whose far bucket was merged into a neighbouring far bucket
    /// because the list was full (reported within that bucket's accuracy,
    /// not their own).
    pub(super) far_merged: u64,
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
        // A far key seen before stays far: no sliding back and forth.
        if let Ok(i) = self.far.binary_search_by_key(&key, |(k, _)| *k) {
            self.far[i].1 = self.far[i].1.saturating_add(n);
            return;
        }
        let (lo, hi) = (self.offset, self.hi());
        if key < lo {
            let need = (i64::from(hi) - i64::from(key) + 1) as usize;
            if need > max {
                // Sliding down to `key` would move everything above `new_hi`
                // to the far list: only when that holds fewer samples.
                let new_hi = key + max as i32 - 1;
                let keep = (new_hi - lo + 1).max(0) as usize;
                let keep = keep.min(self.counts.len());
                let off: u64 = self.counts[keep..].iter().map(|c| (*c).into()).sum();
                if off > n {
                    self.far_add(key, n);
                    return;
                }
                for i in keep..self.counts.len() {
                    let c: u64 = self.counts[i].into();
                    if c > 0 {
                        self.far_add(lo + i as i32, c);
                    }
                }
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
                let drop = ((new_lo - lo).max(0) as usize).min(self.counts.len());
                let off: u64 = self.counts[..drop].iter().map(|c| (*c).into()).sum();
                if off > n {
                    self.far_add(key, n);
                    return;
                }
                for i in 0..drop {
                    let c: u64 = self.counts[i].into();
                    if c > 0 {
                        self.far_add(lo + i as i32, c);
                    }
                }
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

    /// Adds `n` samples to far bucket `key`. When that makes the list
    /// longer than [`FAR_KEYS`](super::FAR_KEYS), the two neighbouring far
    /// buckets with the closest keys become one (at the key of the larger
    /// count) and the smaller one's samples are counted in `far_merged`.
    pub(super) fn far_add(&mut self, key: i32, n: u64) {
        match self.far.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => self.far[i].1 = self.far[i].1.saturating_add(n),
            Err(i) => {
                if self.far.capacity() == 0 {
                    self.far.reserve_exact(4);
                } else if self.far.len() == self.far.capacity() {
                    let extra = self.far.len().min(super::FAR_KEYS + 1 - self.far.len());
                    self.far.reserve_exact(extra.max(1));
                }
                self.far.insert(i, (key, n));
            }
        }
        if self.far.len() <= super::FAR_KEYS {
            return;
        }
        let Some(i) = (0..self.far.len() - 1)
            .min_by_key(|&i| i64::from(self.far[i + 1].0) - i64::from(self.far[i].0))
        else {
            return;
        };
        let (a, b) = (self.far[i], self.far[i + 1]);
        let (keep, moved) = if a.1 >= b.1 { (a, b) } else { (b, a) };
        self.far[i] = (keep.0, keep.1.saturating_add(moved.1));
        self.far.remove(i + 1);
        self.far_merged = self.far_merged.saturating_add(moved.1);
    }

    /// Reserves room for `extra` more buckets with some headroom (a
    /// sixteenth of the current length), so a slowly widening range
    /// reallocates rarely, without doubling the memory as `Vec` growth
    /// would.
    pub(super) fn grow(&mut self, extra: usize) {
        let len = self.counts.len();
        if self.counts.capacity() - len < extra {
            self.counts.reserve_exact(extra.max(len / 16).max(16));
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
            far: self.far.clone(),
            far_merged: self.far_merged,
            total: self.total,
        }
    }

    pub(super) fn clear(&mut self) {
        self.counts.clear();
        self.offset = 0;
        self.far.clear();
        self.far_merged = 0;
        self.total = 0;
    }

    /// Nonzero (key, count) pairs in ascending key order, the far buckets
    /// among the array's.
    pub(super) fn entries(&self) -> StoreEntries<'_, C> {
        StoreEntries {
            store: self,
            i: 0,
            f: 0,
        }
    }

    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<C>()
            + self.far.capacity() * std::mem::size_of::<(i32, u64)>()
    }
}

/// Nonzero (key, count) pairs of a store in ascending key order, the far
/// buckets merged in (counts of a key in both added).
pub(super) struct StoreEntries<'a, C> {
    pub(super) store: &'a Store<C>,
    /// Next index into the array.
    pub(super) i: usize,
    /// Next index into the far list.
    pub(super) f: usize,
}

impl<C: Count> StoreEntries<'_, C> {
    /// The next nonzero array bucket, not consumed.
    #[inline]
    fn peek_dense(&mut self) -> Option<(i32, u64)> {
        let s = self.store;
        while self.i < s.counts.len() {
            let n: u64 = s.counts[self.i].into();
            if n > 0 {
                return Some((s.offset + self.i as i32, n));
            }
            self.i += 1;
        }
        None
    }
}

impl<C: Count> Iterator for StoreEntries<'_, C> {
    type Item = (i32, u64);
    #[inline]
    fn next(&mut self) -> Option<(i32, u64)> {
        let dense = self.peek_dense();
        let far = self.store.far.get(self.f).copied();
        match (dense, far) {
            (Some((k, n)), Some((fk, fnn))) => {
                if fk < k {
                    self.f += 1;
                    Some((fk, fnn))
                } else if k < fk {
                    self.i += 1;
                    Some((k, n))
                } else {
                    self.i += 1;
                    self.f += 1;
                    Some((k, n.saturating_add(fnn)))
                }
            }
            (Some(d), None) => {
                self.i += 1;
                Some(d)
            }
            (None, Some(f)) => {
                self.f += 1;
                Some(f)
            }
            (None, None) => None,
        }
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

    /// Samples moved into a neighbouring far bucket (see [`Store::far_add`]).
    pub(super) fn far_merged(&self) -> u64 {
        match self {
            Dense::Narrow(s) => s.far_merged,
            Dense::Wide(s) => s.far_merged,
            Dense::Huge(s) => s.far_merged,
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
