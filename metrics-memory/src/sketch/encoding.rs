//! The compact encoding of a sketch (varints, key gaps, count deltas):
//! what ring bins and stores keep, checked before it is read back.

use super::*;

/// The header of a versioned encoding: a varint no writer emits (zero with
/// a needless continuation byte), so an encoding without it is version 1
/// (rows stored before versions existed), then the version.
pub(super) const HEADER: [u8; 2] = [0x80, 0x00];
/// The version [`write_header`] writes.
pub(super) const VERSION: u8 = 3;

/// Appends the header of the current version.
pub(super) fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&HEADER);
    out.push(VERSION);
}

/// A reader after the header of `bytes` and the encoding's version (1, 2
/// or 3; `None`: a header of an unknown version).
pub(super) fn open(bytes: &[u8]) -> Option<(Reader<'_>, u8)> {
    if bytes.starts_with(&HEADER) {
        return match bytes.get(HEADER.len()) {
            Some(&v @ (2 | 3)) => Some((
                Reader {
                    bytes,
                    pos: HEADER.len() + 1,
                },
                v,
            )),
            _ => None,
        };
    }
    Some((Reader { bytes, pos: 0 }, 1))
}

/// Adaptive Rice parameter of one stream of numbers (the key gaps, or the
/// count differences): `k` is the smallest with `n · 2^k ≥ a`, `a` the sum
/// of the recent values (each capped, see [`update`](Self::update)) and
/// `n` their number, halved every 16 values so it follows the sketch from
/// its sparse tails into its dense middle.
/// Writer and reader update it alike.
#[derive(Clone, Copy)]
pub(super) struct Adapt {
    a: u64,
    n: u64,
}

impl Adapt {
    const NEW: Adapt = Adapt { a: 0, n: 1 };

    #[inline]
    fn k(&self) -> u32 {
        let mut k = 0;
        while k < 56 && (self.n << k) < self.a {
            k += 1;
        }
        k
    }

    /// Counts `v`, at most four times the recent mean: a far bucket's
    /// gap, thousands of keys, costs its own escape but does not make the
    /// next ordinary gaps pay for it.
    #[inline]
    fn update(&mut self, v: u64) {
        let cap = (self.a / self.n + 1).saturating_mul(4);
        self.a = self.a.saturating_add(v.min(cap));
        self.n += 1;
        if self.n >= 16 {
            self.a >>= 1;
            self.n >>= 1;
        }
    }
}

/// Unary quotients up to this many ones; a longer one is an escape: the
/// value's bit length in 7 bits, then the value.
const RICE_LIMIT: u64 = 12;

/// Bits appended to a byte vector, least significant first.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter<'_> {
    /// Appends the low `n` (at most 32) bits of `v`.
    #[inline]
    fn bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 32);
        let v = if n == 0 {
            0
        } else {
            v & (u64::MAX >> (64 - n))
        };
        self.acc |= v << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Appends `v` in Rice code with parameter `k`, updating `adapt`.
    #[inline]
    fn rice(&mut self, v: u64, adapt: &mut Adapt) {
        let k = adapt.k();
        let q = v >> k;
        if q < RICE_LIMIT {
            // q ones, a zero.
            self.bits((1u64 << q) - 1, q as u32 + 1);
            self.bits(v, k.min(32));
            if k > 32 {
                self.bits(v >> 32, k - 32);
            }
        } else {
            self.bits((1u64 << RICE_LIMIT) - 1, RICE_LIMIT as u32);
            let len = 64 - v.leading_zeros();
            self.bits(u64::from(len), 7);
            self.bits(v, len.min(32));
            if len > 32 {
                self.bits(v >> 32, len - 32);
            }
        }
        adapt.update(v);
    }

    /// Pads the last byte with zeros.
    fn finish(self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Writes one sign's `n` entries (ascending keys) in the encoded form of
/// the current version.
///
/// Version 3: the number of entries and the first key as varints, then a
/// bit stream (least significant bit first, padded to a byte) of, per
/// entry, the key gap (keys skipped since the previous entry; not for the
/// first) and the zigzag difference of its count from the previous
/// entry's (the first compares with 1), each in Rice code whose parameter
/// adapts to the recent values of its stream ([`Adapt`]): a dense bucket
/// whose count barely changes costs two or three bits, a busy bucket as
/// many as its count's noise needs, a sparse bucket of an unchanged count
/// about the logarithm of its gap. (Version 2 spent at least a byte on
/// every bucket.)
pub(super) fn write_store(
    out: &mut Vec<u8>,
    n: u64,
    mut entries: impl Iterator<Item = (i32, u64)>,
) {
    put_varint(out, n);
    let Some((first, count)) = entries.next() else {
        return;
    };
    put_varint(out, zigzag(first));
    let mut bits = BitWriter { out, acc: 0, n: 0 };
    let (mut gaps, mut diffs) = (Adapt::NEW, Adapt::NEW);
    // Counts stay below 2^63 (a sketch holds fewer samples), so the
    // difference of two fits an i64.
    let zigzag_diff = |c: u64, prev: u64| {
        let d = (i128::from(c) - i128::from(prev)) as i64;
        ((d << 1) ^ (d >> 63)) as u64
    };
    bits.rice(zigzag_diff(count, 1), &mut diffs);
    let (mut prev, mut prev_count) = (first, count);
    for (k, c) in entries {
        bits.rice((k - prev - 1) as u64, &mut gaps);
        bits.rice(zigzag_diff(c, prev_count), &mut diffs);
        (prev, prev_count) = (k, c);
    }
    bits.finish();
}

/// Whether `bytes` could be a ring bin's encoding: every varint whole,
/// at most [`MAX_KEYS`] buckets per sign, keys within what a finite value
/// gives at level 1 (|key| ≤ 40,000), strictly ascending, counts positive
/// and their total below 2^48, nothing after the end. Bytes read back from
/// a database pass this before they are merged.
pub(super) fn valid_bin_encoding(bytes: &[u8]) -> bool {
    const MAX_KEY: u32 = 40_000;
    const MAX_TOTAL: u64 = 1 << 48;
    let Some((mut r, version)) = open(bytes) else {
        return false;
    };
    let Some(mut total) = r.varint() else {
        return false;
    };
    for _sign in 0..2 {
        let Some(mut it) = StoreIter::new(r, version) else {
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
        let Some(rest) = it.rest() else {
            return false;
        };
        r = rest;
    }
    total < MAX_TOTAL && r.pos == bytes.len()
}

/// The entries of one encoded sign, in ascending key order.
#[derive(Clone)]
pub(super) struct StoreIter<'a> {
    pub(super) r: Reader<'a>,
    pub(super) left: u64,
    pub(super) key: i32,
    pub(super) count: u64,
    pub(super) first: bool,
    /// The encoding's version (1, 2 or 3, see [`write_store`]).
    pub(super) version: u8,
    /// Version 3: bits read from `r` and not used yet (fewer than 8
    /// between entries: the rest of the byte last read), and how many.
    acc: u64,
    nbits: u32,
    gaps: Adapt,
    diffs: Adapt,
}

impl<'a> StoreIter<'a> {
    pub(super) fn new(mut r: Reader<'a>, version: u8) -> Option<Self> {
        let left = r.varint()?;
        let key = if left > 0 { unzigzag(r.varint()?) } else { 0 };
        Some(StoreIter {
            r,
            left,
            key,
            count: 1,
            first: true,
            version,
            acc: 0,
            nbits: 0,
            gaps: Adapt::NEW,
            diffs: Adapt::NEW,
        })
    }

    /// The reader after this sign's entries (`None` if they are malformed).
    pub(super) fn rest(mut self) -> Option<Reader<'a>> {
        while self.left > 0 {
            self.next()?;
        }
        // Version 3: the bits left over are the last byte's padding.
        Some(self.r)
    }

    /// The next `n` (at most 32) bits of a version 3 stream.
    #[inline]
    fn bits(&mut self, n: u32) -> Option<u64> {
        while self.nbits < n {
            let b = *self.r.bytes.get(self.r.pos)?;
            self.r.pos += 1;
            self.acc |= u64::from(b) << self.nbits;
            self.nbits += 8;
        }
        let v = if n == 0 {
            0
        } else {
            self.acc & (u64::MAX >> (64 - n))
        };
        self.acc = if n >= 64 { 0 } else { self.acc >> n };
        self.nbits -= n;
        Some(v)
    }

    /// The next Rice-coded value of a stream adapting with `adapt`.
    #[inline]
    fn rice(&mut self, gaps: bool) -> Option<u64> {
        let adapt = if gaps { self.gaps } else { self.diffs };
        let k = adapt.k();
        let mut q = 0u64;
        while q < RICE_LIMIT && self.bits(1)? == 1 {
            q += 1;
        }
        let v = if q < RICE_LIMIT {
            let low = self.bits(k.min(32))?;
            let high = if k > 32 { self.bits(k - 32)? } else { 0 };
            (q << k) | (high << 32) | low
        } else {
            let len = self.bits(7)? as u32;
            if len > 64 {
                return None;
            }
            let low = self.bits(len.min(32))?;
            let high = if len > 32 { self.bits(len - 32)? } else { 0 };
            (high << 32) | low
        };
        let adapt = if gaps {
            &mut self.gaps
        } else {
            &mut self.diffs
        };
        adapt.update(v);
        Some(v)
    }

    /// The next entry's (gap, zigzag difference if changed).
    #[inline]
    fn token(&mut self) -> Option<(u64, Option<u64>)> {
        if self.version == 3 {
            let gap = if self.first { 0 } else { self.rice(true)? };
            return Some((gap, Some(self.rice(false)?)));
        }
        let tok = self.r.varint()?;
        Some(if self.version == 1 {
            (
                tok >> 1,
                if tok & 1 == 1 {
                    Some(self.r.varint()?)
                } else {
                    None
                },
            )
        } else if tok & 1 == 0 {
            (0, Some(tok >> 1))
        } else {
            (
                tok >> 2,
                if tok & 2 != 0 {
                    Some(self.r.varint()?)
                } else {
                    None
                },
            )
        })
    }
}

impl Iterator for StoreIter<'_> {
    type Item = (i32, u64);
    fn next(&mut self) -> Option<(i32, u64)> {
        if self.left == 0 {
            return None;
        }
        let (gap, z) = self.token()?;
        if !self.first {
            let gap = i32::try_from(gap).unwrap_or(i32::MAX);
            self.key = self.key.saturating_add(1).saturating_add(gap);
        }
        self.first = false;
        if let Some(z) = z {
            let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            // A count below zero or past u64::MAX is malformed, not a panic.
            self.count = u64::try_from(i128::from(self.count) + i128::from(delta)).ok()?;
        }
        self.left -= 1;
        Some((self.key, self.count))
    }
}

/// Two ascending entry streams as one, counts of equal keys added (a sum
/// past `u64::MAX` is `None`).
pub(super) fn merge_entries<'a>(
    a: StoreIter<'a>,
    b: StoreIter<'a>,
) -> impl Iterator<Item = (i32, Option<u64>)> + 'a {
    let (a, b) = (a.map(|(k, c)| (k, Some(c))), b.map(|(k, c)| (k, Some(c))));
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
                Some((ka, ca.zip(cb).and_then(|(x, y)| x.checked_add(y))))
            }
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// Appends to `out` the encoding (current version) of the merge of two
/// encodings (any version) of the same level, without decoding either into a dense sketch. `false` if either
/// is malformed or their counts add past `u64::MAX` (only a bug or a
/// corrupt stored row could cause it); `out` may then hold a prefix.
pub fn merge_encodings(a: &[u8], b: &[u8], out: &mut Vec<u8>) -> bool {
    let (Some((mut ra, va)), Some((mut rb, vb))) = (open(a), open(b)) else {
        return false;
    };
    let (Some(za), Some(zb)) = (ra.varint(), rb.varint()) else {
        return false;
    };
    let Some(zero) = za.checked_add(zb) else {
        return false;
    };
    write_header(out);
    put_varint(out, zero);
    for _sign in 0..2 {
        let (Some(ia), Some(ib)) = (StoreIter::new(ra, va), StoreIter::new(rb, vb)) else {
            return false;
        };
        let mut n = 0u64;
        for (_, c) in merge_entries(ia.clone(), ib.clone()) {
            if c.is_none() {
                return false;
            }
            n += 1;
        }
        let merged = merge_entries(ia.clone(), ib.clone()).map(|(k, c)| (k, c.unwrap_or(0)));
        write_store(out, n, merged);
        let (Some(na), Some(nb)) = (ia.rest(), ib.rest()) else {
            return false;
        };
        (ra, rb) = (na, nb);
    }
    true
}

pub(super) fn zigzag(k: i32) -> u64 {
    u64::from(((k << 1) ^ (k >> 31)) as u32)
}

pub(super) fn unzigzag(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[derive(Clone, Copy)]
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl Reader<'_> {
    pub(super) fn varint(&mut self) -> Option<u64> {
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
