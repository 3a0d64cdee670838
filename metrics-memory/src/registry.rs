//! The concurrent registry: series keyed by name and tag set.
//!
//! Sharded `RwLock<HashTable>`s whose hash is the key's fingerprint
//! ([`Key::fingerprint`], computed once where the key was built and
//! independent of the tags' order), so a lookup hashes nothing. It first
//! tries the thread's small cache of recently used series, at a slot chosen
//! by the fingerprint (no lock at all), then one shard's read lock: no
//! allocation, no global lock. Equality against a stored series ignores
//! the tags' order, so unsorted input needs no sorted copy. A key is valid
//! by construction: nothing is checked again here. Creating a series sorts
//! its tags once ([`Key::sorted_tags`]), takes that shard's write lock and
//! the per-name cardinality check. What a sample does to one series is in
//! `series.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use hashbrown::{HashMap, HashTable};
use metrics_protocol::backend::DropReason;
use metrics_protocol::backend::validate::OVERFLOW_TAG;
use metrics_protocol::{Key, MetricType, Tags};
use parking_lot::{Mutex, RwLock};

use crate::ring::{HistoryMark, Rings, SketchRings, WindowSpec};
use crate::sketch::Sketch;
use crate::stats::Exact;

pub(crate) use crate::series::{PERM, Series, SeriesState, Slot};

const SHARDS: usize = 32;

#[derive(Debug)]
struct NameInfo {
    kind: MetricType,
    series: AtomicUsize,
    overflowed: AtomicBool,
    /// Every series of the name (overflow series included): the index that
    /// queries by name read instead of scanning the registry.
    list: RwLock<Vec<Arc<Series>>>,
}

static NEXT_REGISTRY_ID: AtomicU64 = AtomicU64::new(1);
const CACHE_SLOTS: usize = 64;

/// (registry id, series) entries. The series is held weakly, so
/// a cache never keeps a dropped registry's series alive: only the
/// `Series` struct's own allocation (a few hundred bytes, at most
/// [`CACHE_SLOTS`] per thread) lingers until the slot is reused.
type CacheEntry = Option<(u64, Weak<Series>, [u8; PERM])>;

/// Tags in the order given.
const IDENTITY: [u8; PERM] = {
    let mut p = [0u8; PERM];
    let mut i = 0;
    while i < PERM {
        p[i] = i as u8;
        i += 1;
    }
    p
};

/// A cache slot from a key's fingerprint (bits neither the shard nor the
/// shard's table uses).
#[inline]
fn cache_slot(hash: u64) -> usize {
    (hash >> 48) as usize % CACHE_SLOTS
}

/// A cache slot from where a call site's name and tags live (a call site
/// passes the same strings every time, so its slot needs no hashing). The
/// address only picks the slot: a probe hits only when the content equals.
#[inline]
fn address_slot(name: &str, tags: Tags<'_>) -> usize {
    let x = (name.as_ptr() as u64)
        ^ (name.len() as u64).rotate_left(48)
        ^ (tags.as_ptr() as u64).rotate_left(17)
        ^ (tags.len() as u64).rotate_left(56);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % CACHE_SLOTS
}

thread_local! {
    /// Each thread's direct-mapped cache of recently recorded series: a hit
    /// needs no shard lock, so threads recording into one series do not
    /// contend on the lock word.
    static CACHE: RefCell<[CacheEntry; CACHE_SLOTS]> =
        const { RefCell::new([const { None }; CACHE_SLOTS]) };
}

/// All series.
pub(crate) struct Registry {
    id: u64,
    /// Off when idle series expire: a cached series could have been removed.
    use_cache: bool,
    shards: Box<[RwLock<HashTable<Arc<Series>>>]>,
    names: RwLock<HashMap<Box<str>, Arc<NameInfo>>>,
    specs: Vec<WindowSpec>,
    sketch_specs: Vec<WindowSpec>,
    cardinality_limit: usize,
    max_names: usize,
    max_series: usize,
    /// Series counted against `max_series` (overflow series are not).
    series_total: AtomicUsize,
    /// The history reader's mark: every series' rings hold the finest bins
    /// it has not had yet.
    history: Arc<HistoryMark>,
}

/// The registry's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub cardinality: usize,
    pub names: usize,
    pub series: usize,
}

impl Registry {
    pub fn new(
        specs: Vec<WindowSpec>,
        limits: Limits,
        use_cache: bool,
        history: Arc<HistoryMark>,
    ) -> Self {
        Registry {
            id: NEXT_REGISTRY_ID.fetch_add(1, Ordering::Relaxed),
            use_cache,
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            names: RwLock::new(HashMap::new()),
            sketch_specs: crate::ring::sketch_specs(&specs),
            specs,
            cardinality_limit: limits.cardinality,
            max_names: limits.names,
            max_series: limits.series,
            series_total: AtomicUsize::new(0),
            history,
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<HashTable<Arc<Series>>> {
        // The shard's table uses the low bits and the top seven: pick the
        // shard from others.
        &self.shards[(hash >> 40) as usize % SHARDS]
    }

    /// Runs `f` on the series `key` of `kind`, creating it (or folding it
    /// into the name's overflow series) if needed.
    ///
    /// With the cache on, the thread's cache is probed first at the slot of
    /// the key's fingerprint; a probe hits only when the cached series'
    /// fingerprint, name and tags equal the key's.
    #[inline]
    pub fn with_series<R>(
        &self,
        key: &Key<'_>,
        kind: MetricType,
        f: impl FnOnce(&Series) -> R,
    ) -> Result<R, DropReason> {
        let hash = key.fingerprint();
        if self.use_cache {
            let slot = cache_slot(hash);
            if let Some(p) = self.probe(slot, key) {
                // SAFETY: see `probe`: the series is alive for this call.
                let s = unsafe { &*p };
                if s.kind != kind {
                    return Err(DropReason::TypeMismatch);
                }
                return Ok(f(s));
            }
            return self.with_series_slow(key, kind, slot, f);
        }
        {
            let shard = self.shard(hash).read();
            if let Some(s) = shard.find(hash, |s| is_key(s, key)) {
                if s.kind != kind {
                    return Err(DropReason::TypeMismatch);
                }
                return Ok(f(s));
            }
        }
        let series = self.create(key, kind)?;
        Ok(f(&series))
    }

    /// Runs `f` on the series `name`/`tags` if this thread's cache holds it
    /// at the call site's slot, without building a key; `None` otherwise
    /// (the caller builds the key and records through
    /// [`with_series`](Self::with_series), then [`remember_call_site`](Self::remember_call_site)).
    ///
    /// A hit proves `name` and `tags` keep every rule: they equal a stored
    /// series' key (tags in any order), which was checked when it was
    /// built, and stored tags are distinct, so equal tags hold no duplicate.
    #[inline]
    pub fn with_cached<R>(
        &self,
        name: &str,
        tags: Tags<'_>,
        f: impl FnOnce(&Series) -> R,
    ) -> Option<R> {
        if !self.use_cache {
            return None;
        }
        let p = CACHE
            .try_with(|c| {
                let mut c = c.try_borrow_mut().ok()?;
                let (rid, weak, perm) = c[address_slot(name, tags)].as_mut()?;
                if *rid != self.id {
                    return None;
                }
                let p = weak.as_ptr();
                // SAFETY: as in `probe`, the series is alive.
                unsafe { &*p }.matches_with(name, tags, perm).then_some(p)
            })
            .ok()
            .flatten()?;
        // SAFETY: see `probe`: the series is alive for this call.
        Some(f(unsafe { &*p }))
    }

    /// Caches the series `key` at the slot of the call site that passed
    /// its name and tags, so the next [`with_cached`](Self::with_cached)
    /// from there hits.
    /// Returns the series remembered, if any.
    #[cold]
    pub fn remember_call_site(&self, key: &Key<'_>) -> Option<Arc<Series>> {
        if !self.use_cache {
            return None;
        }
        let s = self.lookup(key)?;
        self.remember(address_slot(key.name(), key.tags()), Arc::downgrade(&s));
        Some(s)
    }

    /// The cached series at `slot` if it is `key`'s of this registry.
    ///
    /// The pointer stays valid for the rest of the caller's call: the entry
    /// was stored by this registry (ids come from a process-wide counter and
    /// are never reused), which is alive for the whole call and holds a
    /// strong reference in its shards to every series it created; with the
    /// cache on, nothing removes a series (only idle expiry does, and it
    /// turns the cache off). So the weak reference need not be upgraded
    /// (two atomic read-modify-writes on a line every thread shares).
    #[inline]
    fn probe(&self, slot: usize, key: &Key<'_>) -> Option<*const Series> {
        CACHE
            .try_with(|c| {
                let mut c = c.try_borrow_mut().ok()?;
                let (rid, weak, perm) = c[slot].as_mut()?;
                if *rid != self.id {
                    return None;
                }
                let p = weak.as_ptr();
                // SAFETY: as above, the series is alive.
                let s = unsafe { &*p };
                (s.hash == key.fingerprint() && s.matches_with(key.name(), key.tags(), perm))
                    .then_some(p)
            })
            .ok()
            .flatten()
    }

    fn remember(&self, slot: usize, series: Weak<Series>) {
        let _ = CACHE.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                c[slot] = Some((self.id, series, IDENTITY));
            }
        });
    }

    #[cold]
    fn with_series_slow<R>(
        &self,
        key: &Key<'_>,
        kind: MetricType,
        slot: usize,
        f: impl FnOnce(&Series) -> R,
    ) -> Result<R, DropReason> {
        let series = self.series_arc(key, kind)?;
        self.remember(slot, Arc::downgrade(&series));
        Ok(f(&series))
    }

    /// The series `key` of `kind`, as a shared handle (for bound
    /// instruments), created if needed.
    pub fn series_arc(&self, key: &Key<'_>, kind: MetricType) -> Result<Arc<Series>, DropReason> {
        if let Some(s) = self.lookup(key) {
            return if s.kind == kind {
                Ok(s)
            } else {
                Err(DropReason::TypeMismatch)
            };
        }
        self.create(key, kind)
    }

    /// The existing series `name`/`tags` (tags in any order), if any.
    pub fn find(&self, name: &str, tags: Tags<'_>) -> Option<Arc<Series>> {
        // A name or tags that break a rule have no series.
        self.lookup(&Key::new(name, tags).ok()?)
    }

    /// The existing series `key`, if any.
    fn lookup(&self, key: &Key<'_>) -> Option<Arc<Series>> {
        let hash = key.fingerprint();
        self.shard(hash)
            .read()
            .find(hash, |s| is_key(s, key))
            .cloned()
    }

    /// Creates the series `key` (its tags sorted), or folds it into the
    /// name's overflow series.
    #[cold]
    fn create(&self, key: &Key<'_>, kind: MetricType) -> Result<Arc<Series>, DropReason> {
        let name = key.name();
        let tags = key.sorted_tags();
        let info = {
            let names = self.names.read();
            names.get(name).cloned()
        };
        let info = match info {
            Some(i) => i,
            None => {
                let mut names = self.names.write();
                if !names.contains_key(name) && names.len() >= self.max_names {
                    return Err(DropReason::NameLimit);
                }
                names
                    .entry(name.into())
                    .or_insert_with(|| {
                        Arc::new(NameInfo {
                            kind,
                            series: AtomicUsize::new(0),
                            overflowed: AtomicBool::new(false),
                            list: RwLock::new(Vec::new()),
                        })
                    })
                    .clone()
            }
        };
        if info.kind != kind {
            return Err(DropReason::TypeMismatch);
        }
        let is_overflow = tags.len() == 1 && tags.get(OVERFLOW_TAG) == Some("true");
        if !is_overflow
            && (info.series.load(Ordering::Relaxed) >= self.cardinality_limit
                || self.series_total.load(Ordering::Relaxed) >= self.max_series)
        {
            info.overflowed.store(true, Ordering::Relaxed);
            let overflow = Key::new(name, &[(OVERFLOW_TAG, "true")])?;
            if let Some(s) = self.lookup(&overflow) {
                return Ok(s);
            }
            return self.insert(&overflow, overflow.tags(), kind, &info, false);
        }
        self.insert(key, tags.as_slice(), kind, &info, !is_overflow)
    }

    /// Inserts the series of `key`, storing `sorted` (its tags, sorted).
    fn insert(
        &self,
        key: &Key<'_>,
        sorted: Tags<'_>,
        kind: MetricType,
        info: &Arc<NameInfo>,
        counted: bool,
    ) -> Result<Arc<Series>, DropReason> {
        let hash = key.fingerprint();
        let mut shard = self.shard(hash).write();
        if let Some(s) = shard.find(hash, |s| is_key(s, key)) {
            return Ok(s.clone());
        }
        let dist = matches!(kind, MetricType::Histogram | MetricType::Timer);
        let series = Arc::new(Series {
            name: key.name().into(),
            tags: sorted
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            kind,
            hash,
            touched_ms: AtomicI64::new(i64::MIN),
            pins: AtomicUsize::new(0),
            finest_ms: self
                .specs
                .first()
                .map_or(1, |w| (w.bin.as_millis() as i64).max(1)),
            slots: [Slot::new(), Slot::new()],
            active: AtomicUsize::new(0),
            outcomes: OnceLock::new(),
            state: Mutex::new(SeriesState {
                value: 0.0,
                total: Exact::default(),
                sketch: dist.then(|| Box::new(Sketch::new(0))),
                rings: Rings::with_hold(&self.specs, self.history.clone()),
                quantiles: dist.then(|| {
                    Box::new(SketchRings::with_hold(
                        &self.sketch_specs,
                        self.history.clone(),
                    ))
                }),
                samples: VecDeque::new(),
            }),
        });
        shard.insert_unique(hash, series.clone(), |s| s.hash);
        info.list.write().push(series.clone());
        if counted {
            info.series.fetch_add(1, Ordering::Relaxed);
            self.series_total.fetch_add(1, Ordering::Relaxed);
        }
        Ok(series)
    }

    /// Every series (shared handles), in no particular order: for a
    /// reader that visits each one and needs no order.
    pub fn all_unordered(&self) -> Vec<Arc<Series>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.read().iter().cloned());
        }
        out
    }

    /// A snapshot of every series (shared handles; cheap).
    pub fn all(&self) -> Vec<Arc<Series>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.read().iter().cloned());
        }
        out.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        out
    }

    /// Every series sorted by name, then tags (the order of
    /// [`all`](Self::all)), read from the names' index: the names are
    /// sorted once and each name's series by their tags alone, which costs
    /// an exporter far less than sorting every series by name and tags.
    pub fn all_by_name(&self) -> Vec<Arc<Series>> {
        let mut infos: Vec<(Box<str>, Arc<NameInfo>)> = self
            .names
            .read()
            .iter()
            .map(|(n, i)| (n.clone(), i.clone()))
            .collect();
        infos.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(self.series_total.load(Ordering::Relaxed) + infos.len());
        for (_, info) in infos {
            let start = out.len();
            out.extend(info.list.read().iter().cloned());
            out[start..].sort_unstable_by(|a, b| a.tags.cmp(&b.tags));
        }
        out
    }

    /// Every series of `name`, sorted by tags: read from the name's index,
    /// without scanning the registry.
    pub fn by_name(&self, name: &str) -> Vec<Arc<Series>> {
        let Some(info) = self.names.read().get(name).cloned() else {
            return Vec::new();
        };
        let mut out = info.list.read().clone();
        out.sort_by(|a, b| a.tags.cmp(&b.tags));
        out
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Number of distinct names.
    pub fn names_len(&self) -> usize {
        self.names.read().len()
    }

    /// Names whose cardinality limit was reached.
    pub fn overflowed(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .names
            .read()
            .iter()
            .filter(|(_, i)| i.overflowed.load(Ordering::Relaxed))
            .map(|(n, _)| n.to_string())
            .collect();
        v.sort();
        v
    }

    /// Removes series not recorded into since `cutoff_ms` (unless bound by a
    /// handle); returns how many.
    pub fn expire(&self, cutoff_ms: i64) -> usize {
        let mut removed = Vec::new();
        for shard in self.shards.iter() {
            let mut t = shard.write();
            t.retain(|s| {
                let keep = s.pins.load(Ordering::Acquire) > 0 || s.active_until_ms() >= cutoff_ms;
                if !keep {
                    removed.push(s.clone());
                }
                keep
            });
        }
        let names = self.names.read();
        let mut touched: HashMap<&str, Vec<*const Series>> = HashMap::new();
        for s in &removed {
            let is_overflow = s.tags.len() == 1 && &*s.tags[0].0 == OVERFLOW_TAG;
            if let Some(info) = names.get(&*s.name) {
                touched.entry(&*s.name).or_default().push(Arc::as_ptr(s));
                if !is_overflow {
                    info.series.fetch_sub(1, Ordering::Relaxed);
                    self.series_total.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        // One pass over each affected name's index.
        for (name, gone) in touched {
            if let Some(info) = names.get(name) {
                info.list
                    .write()
                    .retain(|x| !gone.contains(&Arc::as_ptr(x)));
            }
        }
        removed.len()
    }
}

/// Whether `s` is the series of `key`: the same fingerprint, name and
/// tags, in any order.
#[inline]
fn is_key(s: &Series, key: &Key<'_>) -> bool {
    s.hash == key.fingerprint() && s.matches(key.name(), key.tags())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{COUNT_BITS, SPILL_AT, str_eq};

    #[test]
    fn str_eq_sees_a_difference_at_every_position_of_every_length() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(str_eq(&a, &a.clone()), "{n}");
            for i in 0..n {
                let mut b = a.clone().into_bytes();
                b[i] = b'Z';
                let b = String::from_utf8(b).unwrap_or_default();
                assert!(!str_eq(&a, &b), "length {n}, position {i}");
            }
            assert!(!str_eq(&a, &format!("{a}x")));
        }
    }

    #[test]
    fn a_remembered_tag_order_is_checked_not_trusted() {
        let r = Registry::new(
            WindowSpec::defaults(),
            Limits {
                cardinality: 10,
                names: 10,
                series: 10,
            },
            true,
            Arc::new(HistoryMark::new()),
        );
        let key = Key::new("n", &[("b", "2"), ("a", "1")]).unwrap();
        let s = r.series_arc(&key, MetricType::Counter).unwrap();
        assert_eq!(&*s.tags[0].0, "a", "stored sorted");
        let mut perm = IDENTITY;
        assert!(s.matches_with("n", &[("b", "2"), ("a", "1")], &mut perm));
        // Stored sorted (a, b); this call site passes (b, a).
        assert_eq!(&perm[..2], &[1, 0]);
        assert!(s.matches_with("n", &[("b", "2"), ("a", "1")], &mut perm));
        assert!(s.matches_with("n", &[("a", "1"), ("b", "2")], &mut perm));
        assert_eq!(&perm[..2], &[0, 1]);
        assert!(!s.matches_with("n", &[("a", "1"), ("b", "3")], &mut perm));
        assert!(!s.matches_with("n", &[("a", "1"), ("a", "1")], &mut perm));
        assert!(!s.matches_with("m", &[("a", "1"), ("b", "2")], &mut perm));
    }

    #[test]
    fn packed_increments_spill_before_overflow_and_add_up_exactly() {
        let s = Slot::new();
        // Just below the spill mark, with a sum of 100 so far.
        s.packed
            .store((100 << COUNT_BITS) | (SPILL_AT - 1), Ordering::Relaxed);
        assert!(!s.add(1.0), "the mark is reached by this add, not crossed");
        assert!(
            s.add(2.0),
            "the next add sees the mark and asks for a spill"
        );
        s.spill();
        assert_eq!(s.packed.load(Ordering::Relaxed), 0);
        assert_eq!(s.peek(), (SPILL_AT + 1, 103.0));
        // Fractional, large and zero increments take the plain fields.
        assert!(!s.add(0.5));
        assert!(!s.add(1e9));
        assert!(!s.add(-0.0));
        assert!(!s.add(7.0));
        assert_eq!(s.peek(), (SPILL_AT + 5, 103.0 + 0.5 + 1e9 + 7.0));
        assert_eq!(s.take(), (SPILL_AT + 5, 103.0 + 0.5 + 1e9 + 7.0));
        assert_eq!(s.peek(), (0, 0.0));
    }
}
