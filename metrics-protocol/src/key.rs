//! [`Key`]: a metric's name and tags, checked once and hashed once.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::backend::validate::{
    DropReason, MAX_NAME_LEN, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN, MAX_TAGS, SortedTags,
};
use crate::types::Tags;

/// The series a measurement belongs to: a name and its tags, valid by
/// construction, with an order-independent hash (its
/// [`fingerprint`](Key::fingerprint)) computed once.
///
/// Every layer and backend takes the key as it was built at the call site:
/// nobody checks or hashes the name and tags again. `a=1,b=2` and `b=2,a=1`
/// are the same key, with the same fingerprint.
///
/// A key borrows its name and tags, so building one allocates nothing.
/// Keys of literals are built at compile time, where a broken rule is a
/// compile error:
///
/// ```
/// use metrics_protocol::{Key, Metrics};
/// use metrics_protocol::backend::Value;
///
/// const REQUESTS: Key<'static> = Key::from_static("http.requests", &[("method", "GET")]);
///
/// let metrics = Metrics::noop();
/// metrics.record(&REQUESTS, Value::Counter(1.0));
///
/// let key = Key::new("http.requests", &[("method", "GET")]).unwrap();
/// assert_eq!(key, REQUESTS);
/// assert_eq!(key.fingerprint(), REQUESTS.fingerprint());
/// assert!(Key::new("", &[]).is_err()); // an empty name is no key
/// ```
#[derive(Clone, Copy)]
pub struct Key<'a> {
    name: &'a str,
    tags: Tags<'a>,
    fingerprint: u64,
}

impl<'a> Key<'a> {
    /// Checks `name` and `tags` against the [validation
    /// rules](crate::backend::validate) and computes the fingerprint; the
    /// reason of the first broken rule otherwise.
    #[inline]
    pub fn new(name: &'a str, tags: Tags<'a>) -> Result<Self, DropReason> {
        let fingerprint = fast::check_and_fingerprint(name, tags)?;
        Ok(Key {
            name,
            tags,
            fingerprint,
        })
    }

    /// A key of literals, built at compile time in a `const`. The tags must
    /// be sorted by key (which also rules out duplicates); any broken rule
    /// fails the build (at run time, outside a `const`, it panics).
    ///
    /// ```
    /// use metrics_protocol::Key;
    /// const JOBS: Key<'static> = Key::from_static("jobs.done", &[("queue", "email"), ("tier", "1")]);
    /// assert_eq!(JOBS.tags().len(), 2);
    /// ```
    pub const fn from_static(
        name: &'static str,
        tags: &'static [(&'static str, &'static str)],
    ) -> Key<'static> {
        if check(name, tags).is_err() {
            panic!("invalid metric key: see metrics_protocol::backend::validate for the rules");
        }
        let mut i = 1;
        while i < tags.len() {
            if !str_less(tags[i - 1].0, tags[i].0) {
                panic!("the tags of a constant key must be sorted by key, without duplicates");
            }
            i += 1;
        }
        Key {
            name,
            tags,
            fingerprint: fingerprint(name, tags),
        }
    }

    /// A key whose rules were checked and whose fingerprint was computed
    /// when it was first built (a bound handle's).
    #[inline]
    pub(crate) fn trusted(name: &'a str, tags: Tags<'a>, fingerprint: u64) -> Self {
        Key {
            name,
            tags,
            fingerprint,
        }
    }

    /// The metric's name.
    #[inline]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The tags, in the order they were given.
    #[inline]
    pub fn tags(&self) -> Tags<'a> {
        self.tags
    }

    /// The tags sorted by key (on the stack; allocates nothing).
    pub fn sorted_tags(&self) -> SortedTags<'a> {
        SortedTags::checked(self.tags)
    }

    /// The value of tag `key`, if the key has it.
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The hash of the name and the tags, independent of the tags' order.
    /// Equal keys have equal fingerprints; backends may key their tables on
    /// it (`Hash` writes exactly this value) instead of hashing again.
    #[inline]
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The fingerprint `Key::new(name, tags)` gives when the rules hold,
    /// computed without checking them: for a backend that looks up a series
    /// it already holds (whose key was checked when it was built) before
    /// building a key. Never treat a series as found on this value alone.
    #[inline]
    pub fn fingerprint_of(name: &str, tags: Tags<'_>) -> u64 {
        fast::fingerprint(name, tags)
    }

    /// A key with the same tags and another name (the `.success` and
    /// `.failure` counters of an operation, a prefixed name, ...); the
    /// reason if `name` breaks a rule.
    pub fn with_name<'b>(&self, name: &'b str) -> Result<Key<'b>, DropReason>
    where
        'a: 'b,
    {
        fast::check_name(name)?;
        Ok(Key {
            name,
            tags: self.tags,
            fingerprint: fast::fingerprint(name, self.tags),
        })
    }

    /// Whether this key has `name` and exactly the tags `tags` (in any order).
    pub fn matches<K: AsRef<str>, V: AsRef<str>>(&self, name: &str, tags: &[(K, V)]) -> bool {
        self.name == name
            && self.tags.len() == tags.len()
            && self.tags.iter().all(|(k, v)| {
                tags.iter()
                    .any(|(k2, v2)| k2.as_ref() == *k && v2.as_ref() == *v)
            })
    }
}

/// A [`Key`] kept beyond the call that made it (by a bound handle, a
/// layer, a timer table): owned name and tags, and the fingerprint computed
/// when the key was first built, so lending it out again as a [`Key`]
/// neither checks nor hashes.
///
/// ```
/// use metrics_protocol::Key;
/// use metrics_protocol::backend::OwnedKey;
/// let owned = OwnedKey::from(&Key::new("jobs", &[("queue", "email")]).unwrap());
/// owned.with_key(|k| assert_eq!(k.tag("queue"), Some("email")));
/// assert_eq!(owned.name(), "jobs");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedKey {
    name: Box<str>,
    tags: Box<[(Box<str>, Box<str>)]>,
    fingerprint: u64,
}

impl OwnedKey {
    /// The metric's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tags, in the order the key was built with.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.tags.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Lends the key out as a [`Key`] (its tags borrowed into a stack
    /// array: no allocation).
    #[inline]
    pub fn with_key<R>(&self, f: impl FnOnce(&Key<'_>) -> R) -> R {
        let mut buf: [(&str, &str); MAX_TAGS] = [("", ""); MAX_TAGS];
        for (slot, (k, v)) in buf.iter_mut().zip(self.tags.iter()) {
            *slot = (k, v);
        }
        let n = self.tags.len().min(MAX_TAGS);
        f(&Key::trusted(&self.name, &buf[..n], self.fingerprint))
    }
}

impl From<&Key<'_>> for OwnedKey {
    fn from(key: &Key<'_>) -> Self {
        OwnedKey {
            name: key.name.into(),
            tags: key
                .tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            fingerprint: key.fingerprint,
        }
    }
}

impl Hash for OwnedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint);
    }
}

impl fmt::Debug for OwnedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_key(|k| fmt::Debug::fmt(k, f))
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Key<'_>) -> bool {
        self.fingerprint == other.fingerprint && self.matches(other.name, other.tags)
    }
}

impl Eq for Key<'_> {}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint);
    }
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("tags", &self.sorted_tags())
            .finish()
    }
}

impl fmt::Display for Key<'_> {
    /// `name{k="v",...}` with the tags sorted by key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        let sorted = self.sorted_tags();
        if !sorted.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in sorted.as_slice().iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

// ---- rules, written as `const fn` so literal keys are checked at build time ----

const fn check(name: &str, tags: Tags<'_>) -> Result<(), DropReason> {
    if let Err(e) = check_name(name) {
        return Err(e);
    }
    if tags.len() > MAX_TAGS {
        return Err(DropReason::TooManyTags);
    }
    // Every tag first, then duplicates: the reason never depends on the
    // tags' order.
    let mut i = 0;
    while i < tags.len() {
        let (k, v) = tags[i];
        if k.is_empty()
            || k.len() > MAX_TAG_KEY_LEN
            || has_control(k.as_bytes())
            || v.len() > MAX_TAG_VALUE_LEN
        {
            return Err(DropReason::InvalidTag);
        }
        i += 1;
    }
    let mut i = 1;
    while i < tags.len() {
        let mut j = 0;
        while j < i {
            if str_eq(tags[j].0, tags[i].0) {
                return Err(DropReason::DuplicateTag);
            }
            j += 1;
        }
        i += 1;
    }
    Ok(())
}

pub(crate) const fn check_name(name: &str) -> Result<(), DropReason> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || has_control(name.as_bytes()) {
        Err(DropReason::InvalidName)
    } else {
        Ok(())
    }
}

/// C0 controls, DEL, and C1 controls (U+0080..U+009F, `0xc2 0x80..0x9f` in UTF-8).
pub(crate) const fn has_control(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x20 || c == 0x7f {
            return true;
        }
        if c == 0xc2 && i + 1 < b.len() && b[i + 1] >= 0x80 && b[i + 1] < 0xa0 {
            return true;
        }
        i += 1;
    }
    false
}

#[inline]
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

// ---- the fingerprint: a folded-multiply hash over 8-byte words ----
//
// A string is read as 8-byte little-endian words in which every byte is one
// of the string's: its whole words, then one last word ending at its last
// byte (overlapping the word before); a string of 4 to 7 bytes as its first
// and last four bytes, one of 1 to 3 bytes as its first, middle and last
// byte repeated. With the length mixed into the seed, these words tell any
// two strings apart, and since no byte is padding, the same words can be
// searched for control bytes while they are hashed.

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

#[inline(always)]
const fn fold(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
const fn load8(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes([
        b[i],
        b[i + 1],
        b[i + 2],
        b[i + 3],
        b[i + 4],
        b[i + 5],
        b[i + 6],
        b[i + 7],
    ])
}

#[inline(always)]
const fn load4(b: &[u8], i: usize) -> u64 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as u64
}

/// The one word of a string shorter than 8 bytes (0 for the empty string).
#[inline(always)]
const fn short_word(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        load4(b, 0) | (load4(b, n - 4) << 32)
    } else if n > 0 {
        let (x, y, z) = (b[0], b[n / 2], b[n - 1]);
        u64::from_le_bytes([x, y, z, x, y, z, x, y])
    } else {
        0
    }
}

#[inline]
const fn hash_bytes(seed: u64, b: &[u8]) -> u64 {
    let n = b.len();
    let h = seed ^ (n as u64).wrapping_mul(K1);
    if n < 8 {
        return fold(h ^ short_word(b), K3);
    }
    let mut h = h;
    let mut i = 0;
    while i + 8 < n {
        h = fold(h ^ load8(b, i), K2);
        i += 8;
    }
    fold(h ^ load8(b, n - 8), K3)
}

/// The name's hash plus the sum of the tags' hashes: the sum makes it
/// independent of the tags' order.
#[inline]
pub(crate) const fn fingerprint(name: &str, tags: Tags<'_>) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < tags.len() {
        let (k, v) = tags[i];
        // Key and value hashed apart (no dependency chain between them),
        // then mixed asymmetrically so moving bytes between them changes it.
        let hk = hash_bytes(K0, k.as_bytes());
        let hv = hash_bytes(K3, v.as_bytes());
        sum = sum.wrapping_add(fold(hk ^ hv.rotate_left(29), K1));
        i += 1;
    }
    fold(hash_bytes(K2, name.as_bytes()) ^ sum, K0)
}

/// The same rules and the same fingerprint as the `const fn`s above, written
/// for run time as one pass: each word read for the hash is also searched,
/// eight bytes at a time, for a byte that may start a control character
/// (below 0x20, 0x7f, or 0xc2); only a string with one is scanned again
/// by the exact rule. The tests hold both versions to the same answers.
mod fast {
    use super::*;

    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// Non-zero when a byte of `w` is below 0x20, 0x7f or 0xc2 (exact:
    /// never zero when one is).
    #[inline(always)]
    fn suspects(w: u64) -> u64 {
        let below_space = w.wrapping_sub(LO * 0x20) & !w;
        let del = w ^ (LO * 0x7f);
        let c2 = w ^ (LO * 0xc2);
        (below_space | (del.wrapping_sub(LO) & !del) | (c2.wrapping_sub(LO) & !c2)) & HI
    }

    /// `hash_bytes(seed, b)`, and whether `b` may hold a control character.
    #[inline(always)]
    fn scan(seed: u64, b: &[u8]) -> (u64, u64) {
        let n = b.len();
        let h = seed ^ (n as u64).wrapping_mul(K1);
        if n < 8 {
            let w = short_word(b);
            return (fold(h ^ w, K3), suspects(w));
        }
        let mut h = h;
        let mut flags = 0;
        let mut words = b[..n - 1].chunks_exact(8);
        for c in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(c);
            let w = u64::from_le_bytes(buf);
            flags |= suspects(w);
            h = fold(h ^ w, K2);
        }
        let mut buf = [0u8; 8];
        buf.copy_from_slice(&b[n - 8..]);
        let w = u64::from_le_bytes(buf);
        (fold(h ^ w, K3), flags | suspects(w))
    }

    #[inline]
    pub(super) fn check_name(name: &str) -> Result<(), DropReason> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DropReason::InvalidName);
        }
        let (_, suspect) = scan(K2, name.as_bytes());
        if suspect != 0 && super::has_control(name.as_bytes()) {
            return Err(DropReason::InvalidName);
        }
        Ok(())
    }

    /// The rules of `check`, and the fingerprint of a key that keeps them.
    #[inline]
    pub(super) fn check_and_fingerprint(name: &str, tags: Tags<'_>) -> Result<u64, DropReason> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DropReason::InvalidName);
        }
        let (hn, suspect) = scan(K2, name.as_bytes());
        if suspect != 0 && super::has_control(name.as_bytes()) {
            return Err(DropReason::InvalidName);
        }
        if tags.len() > MAX_TAGS {
            return Err(DropReason::TooManyTags);
        }
        let mut sum = 0u64;
        for (k, v) in tags {
            if k.is_empty() || k.len() > MAX_TAG_KEY_LEN || v.len() > MAX_TAG_VALUE_LEN {
                return Err(DropReason::InvalidTag);
            }
            let (hk, suspect) = scan(K0, k.as_bytes());
            if suspect != 0 && super::has_control(k.as_bytes()) {
                return Err(DropReason::InvalidTag);
            }
            let (hv, _) = scan(K3, v.as_bytes());
            sum = sum.wrapping_add(fold(hk ^ hv.rotate_left(29), K1));
        }
        for (i, (k, _)) in tags.iter().enumerate().skip(1) {
            if tags[..i].iter().any(|(other, _)| other == k) {
                return Err(DropReason::DuplicateTag);
            }
        }
        Ok(fold(hn ^ sum, K0))
    }

    /// The fingerprint alone, of a name and tags already known to keep the
    /// rules.
    #[inline]
    pub(super) fn fingerprint(name: &str, tags: Tags<'_>) -> u64 {
        let mut sum = 0u64;
        for (k, v) in tags {
            let (hk, _) = scan(K0, k.as_bytes());
            let (hv, _) = scan(K3, v.as_bytes());
            sum = sum.wrapping_add(fold(hk ^ hv.rotate_left(29), K1));
        }
        fold(scan(K2, name.as_bytes()).0 ^ sum, K0)
    }

    #[cfg(test)]
    pub(super) fn check(name: &str, tags: Tags<'_>) -> Result<(), DropReason> {
        check_and_fingerprint(name, tags).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_order_changes_neither_equality_nor_fingerprint() {
        let a = Key::new("m", &[("a", "1"), ("b", "2")]).unwrap();
        let b = Key::new("m", &[("b", "2"), ("a", "1")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn different_keys_differ() {
        let base = Key::new("m", &[("a", "1")]).unwrap();
        for other in [
            Key::new("n", &[("a", "1")]).unwrap(),
            Key::new("m", &[("a", "2")]).unwrap(),
            Key::new("m", &[("b", "1")]).unwrap(),
            Key::new("m", &[]).unwrap(),
            Key::new("m", &[("a", "1"), ("b", "1")]).unwrap(),
        ] {
            assert_ne!(base, other);
            assert_ne!(base.fingerprint(), other.fingerprint(), "{other:?}");
        }
        // Moving bytes between a tag's key and value is another key.
        let x = Key::new("m", &[("ab", "c")]).unwrap();
        let y = Key::new("m", &[("a", "bc")]).unwrap();
        assert_ne!(x.fingerprint(), y.fingerprint());
        // Two tags whose hashes would cancel under xor do not.
        let z = Key::new("m", &[("a", "1"), ("b", "1")]).unwrap();
        let w = Key::new("m", &[("a", "2"), ("b", "2")]).unwrap();
        assert_ne!(z.fingerprint(), w.fingerprint());
    }

    #[test]
    fn broken_rules_name_their_reason() {
        assert_eq!(Key::new("", &[]).unwrap_err(), DropReason::InvalidName);
        assert_eq!(Key::new("a\nb", &[]).unwrap_err(), DropReason::InvalidName);
        assert_eq!(
            Key::new("c1\u{85}", &[]).unwrap_err(),
            DropReason::InvalidName
        );
        assert_eq!(
            Key::new(&"a".repeat(MAX_NAME_LEN + 1), &[]).unwrap_err(),
            DropReason::InvalidName
        );
        assert_eq!(
            Key::new("m", &[("", "v")]).unwrap_err(),
            DropReason::InvalidTag
        );
        assert_eq!(
            Key::new("m", &[("a", "1"), ("a", "2")]).unwrap_err(),
            DropReason::DuplicateTag
        );
        // A bad tag wins over a duplicate, in any order.
        for tags in [
            [("a", "1"), ("a", "2"), ("", "x")],
            [("", "x"), ("a", "1"), ("a", "2")],
        ] {
            assert_eq!(Key::new("m", &tags).unwrap_err(), DropReason::InvalidTag);
        }
        let many: Vec<(String, String)> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(Key::new("m", &many).unwrap_err(), DropReason::TooManyTags);
        assert!(Key::new("größe with space:|@#,", &[("k", "")]).is_ok());
    }

    #[test]
    fn const_keys_equal_runtime_keys() {
        const K: Key<'static> = Key::from_static("jobs", &[("a", "1"), ("b", "2")]);
        let k = Key::new("jobs", &[("b", "2"), ("a", "1")]).unwrap();
        assert_eq!(K, k);
        assert_eq!(K.fingerprint(), k.fingerprint());
    }

    #[test]
    #[should_panic(expected = "sorted")]
    fn unsorted_static_tags_are_refused() {
        let _ = Key::from_static("jobs", &[("b", "2"), ("a", "1")]);
    }

    #[test]
    fn the_run_time_scan_finds_every_control_byte_at_every_position() {
        for len in 1..20 {
            for pos in 0..len {
                for bad in (0u8..0x20).chain([0x7f]) {
                    let mut b = vec![b'x'; len];
                    b[pos] = bad;
                    let s = String::from_utf8(b).unwrap();
                    assert_eq!(fast::check_name(&s), Err(DropReason::InvalidName), "{s:?}");
                }
                let mut s = "x".repeat(len);
                s.insert(pos, '\u{85}');
                assert_eq!(fast::check_name(&s), Err(DropReason::InvalidName), "{s:?}");
                s = "x".repeat(len);
                s.insert(pos, 'é'); // 0xc3 0xa9: no control
                assert_eq!(fast::check_name(&s), Ok(()), "{s:?}");
                s = "x".repeat(len);
                s.insert(pos, '\u{a0}'); // 0xc2 0xa0: no control
                assert_eq!(fast::check_name(&s), Ok(()), "{s:?}");
            }
        }
    }

    #[test]
    fn run_time_and_const_rules_and_fingerprints_agree() {
        let text = "abcdefghijklmnopqrstuvwxyz0123456789.-_ äö\u{85}\n";
        let mut inputs: Vec<String> = (0..text.len())
            .filter(|&n| text.is_char_boundary(n))
            .map(|n| text[..n].to_owned())
            .collect();
        inputs.push("a\u{7f}".into());
        inputs.push("x".repeat(MAX_NAME_LEN + 1));
        for name in &inputs {
            for value in &inputs {
                let tags = [("k", value.as_str()), (name.as_str(), "v"), ("k", "dup")];
                for n in 0..=tags.len() {
                    let t = &tags[..n];
                    assert_eq!(fast::check(name, t), check(name, t), "{name:?} {t:?}");
                    if let Ok(fp) = fast::check_and_fingerprint(name, t) {
                        assert_eq!(fp, fingerprint(name, t), "{name:?} {t:?}");
                        assert_eq!(fp, Key::fingerprint_of(name, t), "{name:?} {t:?}");
                    }
                    assert_eq!(
                        fast::fingerprint(name, t),
                        fingerprint(name, t),
                        "{name:?} {t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn renaming_keeps_tags_and_rehashes() {
        let k = Key::new("op", &[("tier", "1")]).unwrap();
        let s = k.with_name("op.success").unwrap();
        assert_eq!(s.tags(), k.tags());
        assert_eq!(s, Key::new("op.success", &[("tier", "1")]).unwrap());
        assert!(k.with_name("").is_err());
    }

    #[test]
    fn display_sorts_tags() {
        let k = Key::new("m", &[("b", "2"), ("a", "1")]).unwrap();
        assert_eq!(k.to_string(), r#"m{a="1",b="2"}"#);
    }
}
