//! The compact encoding of a sketch (varints, key gaps, count deltas):
//! what ring bins and stores keep, checked before it is read back.

use super::*;

/// The header of a versioned encoding: a varint no writer emits (zero with
/// a needless continuation byte), so an encoding without it is version 1
/// (rows stored before versions existed), then the version.
pub(super) const HEADER: [u8; 2] = [0x80, 0x00];
/// The version [`write_header`] writes.
pub(super) const VERSION: u8 = 2;

/// Appends the header of the current version.
pub(super) fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&HEADER);
    out.push(VERSION);
}

/// A reader after the header of `bytes` and whether it is version 2
/// (`None`: a header of an unknown version).
pub(super) fn open(bytes: &[u8]) -> Option<(Reader<'_>, bool)> {
    if bytes.starts_with(&HEADER) {
        return match bytes.get(HEADER.len()) {
            Some(&VERSION) => Some((
                Reader {
                    bytes,
                    pos: HEADER.len() + 1,
                },
                true,
            )),
            _ => None,
        };
    }
    Some((Reader { bytes, pos: 0 }, false))
}

/// Writes one sign's `n` entries (ascending keys) in the encoded form of
/// the current version.
///
/// Version 2, per bucket after the first key: a varint token. An even
/// token is the next key (gap 0) with the zigzag count difference in its
/// upper bits, one byte for a difference within ±31: dense buckets cost one
/// byte each. An odd token is `gap << 2 | changed << 1 | 1`, followed when
/// `changed` by the zigzag varint of the difference: a sparse bucket of the
/// same count as the previous one costs one byte. (Version 1 spent a token
/// byte and a difference byte on every dense bucket whose count changed.)
pub(super) fn write_store(out: &mut Vec<u8>, n: u64, entries: impl Iterator<Item = (i32, u64)>) {
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
        // Counts stay below 2^63 (a sketch holds fewer samples), so the
        // difference of two fits an i64.
        let delta = (i128::from(c) - i128::from(prev_count)) as i64;
        prev_count = c;
        let z = ((delta << 1) ^ (delta >> 63)) as u64;
        if gap == 0 && z < 1 << 62 {
            put_varint(out, z << 1);
        } else {
            put_varint(out, (gap << 2) | (u64::from(delta != 0) << 1) | 1);
            if delta != 0 {
                put_varint(out, z);
            }
        }
    }
}

/// Whether `bytes` could be a ring bin's encoding: every varint whole,
/// at most [`MAX_KEYS`] buckets per sign, keys within what a finite value
/// gives at level 1 (|key| ≤ 40,000), strictly ascending, counts positive
/// and their total below 2^48, nothing after the end. Bytes read back from
/// a database pass this before they are merged.
pub(super) fn valid_bin_encoding(bytes: &[u8]) -> bool {
    const MAX_KEY: u32 = 40_000;
    const MAX_TOTAL: u64 = 1 << 48;
    let Some((mut r, v2)) = open(bytes) else {
        return false;
    };
    let Some(mut total) = r.varint() else {
        return false;
    };
    for _sign in 0..2 {
        let Some(mut it) = StoreIter::new(r, v2) else {
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
pub(super) struct StoreIter<'a> {
    pub(super) r: Reader<'a>,
    pub(super) left: u64,
    pub(super) key: i32,
    pub(super) count: u64,
    pub(super) first: bool,
    /// Version 2 tokens (see [`write_store`]), else version 1.
    pub(super) v2: bool,
}

impl<'a> StoreIter<'a> {
    pub(super) fn new(mut r: Reader<'a>, v2: bool) -> Option<Self> {
        let left = r.varint()?;
        let key = if left > 0 { unzigzag(r.varint()?) } else { 0 };
        Some(StoreIter {
            r,
            left,
            key,
            count: 1,
            first: true,
            v2,
        })
    }

    /// The reader after this sign's entries (`None` if they are malformed).
    pub(super) fn rest(mut self) -> Option<Reader<'a>> {
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
        // (gap, zigzag difference if changed)
        let (gap, z) = if !self.v2 {
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
        };
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
