//! The bounded series table: one [`Entry`] per (kind, name, tags).
//!
//! Keyed on the [`Key::fingerprint`](metrics_protocol::Key::fingerprint)
//! computed where the measurement was made (mixed with the series' kind):
//! nothing hashes a name or tags again. Tag order is ignored: equal keys
//! have equal fingerprints, and [`KeyRef::matches`] compares the tags in any
//! order.
//!
//! Sharded so that creating a series (a write lock, sometimes a resize) only
//! ever holds up the callers that hash to the same shard, and never for
//! longer than one shard's resize. A flush never walks the table: recording
//! marks a series dirty (once per flush) and the flusher takes the dirty
//! series from a channel, so its cost follows the series that changed.
//! Past `max_series` new series fold into one overflow series per kind.
//! Idle series are removed by the flusher (see `Table::evict`), unless a
//! bound handle holds them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use hashbrown::HashTable;
use metrics_protocol::{MetricType, Tags};
use parking_lot::{Mutex, RwLock};

use crate::format::Rendered;

/// Shards of the table (a power of two).
const SHARDS: usize = 64;
/// Names kept for the health report's `overflowed_metrics`.
const MAX_OVERFLOW_NAMES: usize = 16;
/// The name of the series that takes samples past `max_series`.
pub const OVERFLOW_NAME: &str = "metrics_statsd.series_overflow";

/// The table hash of `kind`'s series of a key of `fingerprint`: a key may
/// have a series of each kind.
#[inline]
pub(crate) fn series_hash(fingerprint: u64, kind: MetricType) -> u64 {
    fingerprint ^ (kind as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What a series took in between two flushes, and what a lost datagram
/// puts back: for a counter the sum of its increments (`delta`), for a
/// gauge the last absolute value (`set`) and the relative changes since.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Agg {
    /// The last absolute value, if one was set (gauges only).
    pub set: Option<f64>,
    /// Increments (counters), or relative changes since (or without) the
    /// absolute value (gauges).
    pub delta: f64,
    /// Samples folded in.
    pub samples: u64,
}

impl Agg {
    /// `newer` applied after `self` (both of one series).
    pub fn then(self, newer: Agg) -> Agg {
        let samples = self.samples + newer.samples;
        match newer.set {
            Some(_) => Agg { samples, ..newer },
            None => Agg {
                set: self.set,
                delta: self.delta + newer.delta,
                samples,
            },
        }
    }
}

/// An aggregate whose datagram was lost, waiting for the next flush.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backlog {
    pub agg: Agg,
    /// Datagrams it was lost in.
    pub attempts: u32,
    /// When its oldest part was first taken for a flush.
    pub since: std::time::Instant,
}

/// What recorders and the flusher share under the series' small lock.
#[derive(Debug, Default)]
pub(crate) struct Slow {
    pub gauge: Agg,
    pub gauge_changed: bool,
    pub backlog: Option<Box<Backlog>>,
}

/// One series: its key, its rendered line parts and its aggregate.
#[derive(Debug)]
pub(crate) struct Entry {
    hash: u64,
    pub kind: MetricType,
    /// Name and tags, encoded by [`KeyRef::encode`].
    key: Box<[u8]>,
    /// The name's length in `key`.
    name_len: u16,
    /// Tags in `key`.
    tags: u8,
    pub rendered: Rendered,
    count: AtomicU64,
    /// f64 bits.
    sum: AtomicU64,
    pub slow: Mutex<Slow>,
    /// Queued for the next flush.
    pub dirty: AtomicBool,
    /// The flush that last saw it active (flusher only).
    pub last_epoch: AtomicU64,
    /// Bound handles that record into it: it is not evicted while any is
    /// alive.
    pins: AtomicU32,
}

impl Entry {
    fn new(hash: u64, key: &KeyRef<'_>, rendered: Rendered) -> Entry {
        Entry {
            hash,
            kind: key.kind,
            key: key.encode(),
            name_len: u16::try_from(key.name.len()).unwrap_or(u16::MAX),
            tags: u8::try_from(key.tags.len()).unwrap_or(u8::MAX),
            rendered,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
            slow: Mutex::new(Slow::default()),
            dirty: AtomicBool::new(false),
            last_epoch: AtomicU64::new(0),
            pins: AtomicU32::new(0),
        }
    }

    /// The stored tags, in their (sorted) order, read back from `key`.
    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut rest = self.key.get(usize::from(self.name_len)..).unwrap_or(&[]);
        std::iter::from_fn(move || {
            let r = rest.strip_prefix(&[0])?;
            let end = r.iter().position(|&b| b == 0)?;
            let (k, r) = r.split_at(end);
            let len = r.get(1..5)?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let v = r.get(5..5 + len)?;
            rest = r.get(5 + len..)?;
            Some((k, v))
        })
    }

    pub fn add_counter(&self, v: f64) {
        let mut cur = self.sum.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .sum
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(x) => cur = x,
            }
        }
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    pub fn set_gauge(&self, v: f64) {
        let mut s = self.slow.lock();
        s.gauge = Agg {
            set: Some(v),
            delta: 0.0,
            samples: s.gauge.samples + 1,
        };
        s.gauge_changed = true;
    }

    pub fn adjust_gauge(&self, d: f64) {
        let mut s = self.slow.lock();
        s.gauge.delta += d;
        s.gauge.samples += 1;
        s.gauge_changed = true;
    }

    /// A bound handle starts recording into the series. Called under the
    /// shard's lock, so that eviction (under the write lock) sees it.
    fn pin(&self) {
        self.pins.fetch_add(1, Ordering::SeqCst);
    }

    /// A bound handle is gone.
    pub fn unpin(&self) {
        self.pins.fetch_sub(1, Ordering::SeqCst);
    }

    /// Takes what was recorded since the last take, with any backlog in
    /// front of it; `None` when there is nothing. Only the flusher calls it,
    /// after clearing `dirty`.
    pub fn take(&self) -> Option<(Agg, Option<Backlog>)> {
        let fresh = if self.kind == MetricType::Counter {
            let count = self.count.swap(0, Ordering::SeqCst);
            // Increments that land between the two swaps go to the next
            // flush (their count) or this one (their sum): the total
            // stays exact.
            let sum = if count > 0 {
                f64::from_bits(self.sum.swap(0f64.to_bits(), Ordering::AcqRel))
            } else {
                0.0
            };
            (count > 0).then_some(Agg {
                set: None,
                delta: sum,
                samples: count,
            })
        } else {
            None
        };
        let mut s = self.slow.lock();
        let fresh = if self.kind == MetricType::Gauge && s.gauge_changed {
            s.gauge_changed = false;
            Some(std::mem::take(&mut s.gauge))
        } else {
            fresh
        };
        let backlog = s.backlog.take().map(|b| *b);
        match (backlog, fresh) {
            (None, None) => None,
            (None, Some(f)) => Some((f, None)),
            (Some(b), None) => Some((b.agg, Some(b))),
            (Some(b), Some(f)) => Some((b.agg.then(f), Some(b))),
        }
    }

    /// Puts a lost aggregate back, in front of what came since.
    pub fn restore(&self, back: Backlog) {
        let mut s = self.slow.lock();
        s.backlog = Some(Box::new(match s.backlog.take().map(|b| *b) {
            // Two lost datagrams of one series: the older goes first.
            Some(b) if b.since <= back.since => Backlog {
                agg: b.agg.then(back.agg),
                attempts: b.attempts.max(back.attempts),
                since: b.since,
            },
            Some(b) => Backlog {
                agg: back.agg.then(b.agg),
                attempts: b.attempts.max(back.attempts),
                since: back.since,
            },
            None => back,
        }));
    }
}

/// A series key as a measurement carries it: a valid name and tags (a
/// [`Key`](metrics_protocol::Key)'s, or the counter an outcome is written
/// as), tags in any order.
struct KeyRef<'a> {
    kind: MetricType,
    name: &'a str,
    tags: Tags<'a>,
}

impl KeyRef<'_> {
    /// One allocation for the whole key: the name, then per tag a 0 byte,
    /// the key, a 0 byte, the value's length (4 bytes) and the value. Only
    /// called with tags sorted by key: names and tag keys hold no control
    /// characters (a key's rules) and values are length-prefixed, so the
    /// encoding reads back unambiguously ([`Entry::pairs`]).
    fn encode(&self) -> Box<[u8]> {
        let len = self.name.len()
            + self
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(self.name.as_bytes());
        for (k, v) in self.tags {
            out.push(0);
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out.into_boxed_slice()
    }

    /// Whether `e` is this key, compared in place (no encoding), with the
    /// tags in any order.
    ///
    /// A stored series never has a tag key twice (its key kept the rules);
    /// so when the names are equal, the tag counts agree and every stored
    /// pair equals an input pair, the input tags are a permutation of the
    /// stored ones, duplicate-free and valid, whether or not they were
    /// checked.
    fn matches(&self, e: &Entry) -> bool {
        if self.kind != e.kind
            || self.tags.len() != usize::from(e.tags)
            || usize::from(e.name_len) != self.name.len()
            || e.key.get(..self.name.len()) != Some(self.name.as_bytes())
        {
            return false;
        }
        let same = |(k, v): (&[u8], &[u8]), (k2, v2): &(&str, &str)| {
            k == k2.as_bytes() && v == v2.as_bytes()
        };
        // The usual case first: the call site passes the tags in the stored
        // (sorted) order.
        e.pairs().zip(self.tags).all(|(p, t)| same(p, t))
            || e.pairs().all(|p| self.tags.iter().any(|t| same(p, t)))
    }
}

#[repr(align(64))]
struct Shard(RwLock<HashTable<Arc<Entry>>>);

/// The series table (see the module docs).
pub(crate) struct Table {
    shards: Box<[Shard]>,
    len: AtomicUsize,
    max: usize,
    overflow: [OnceLock<Arc<Entry>>; MetricType::ALL.len()],
    /// Samples folded into an overflow series.
    pub overflowed: AtomicU64,
    overflow_names: Mutex<Vec<String>>,
    /// Series removed as idle.
    pub evicted: AtomicU64,
    dirty: Sender<Arc<Entry>>,
}

/// Queues a series for the next flush (once until the flusher takes it).
pub(crate) fn mark_dirty(e: &Arc<Entry>, dirty: &Sender<Arc<Entry>>) {
    if !e.dirty.load(Ordering::SeqCst) && !e.dirty.swap(true, Ordering::SeqCst) {
        // Only fails when the flusher is gone; nothing is left to flush then.
        let _ = dirty.send(e.clone());
    }
}

impl Table {
    pub fn new(max: usize, dirty: Sender<Arc<Entry>>) -> Table {
        Table {
            shards: (0..SHARDS)
                .map(|_| Shard(RwLock::new(HashTable::new())))
                .collect(),
            len: AtomicUsize::new(0),
            max,
            overflow: Default::default(),
            overflowed: AtomicU64::new(0),
            overflow_names: Mutex::new(Vec::new()),
            evicted: AtomicU64::new(0),
            dirty,
        }
    }

    /// Series in the table (overflow series not included).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Names that overflowed (the first few).
    pub fn overflow_names(&self) -> Vec<String> {
        self.overflow_names.lock().clone()
    }

    /// Queues `e` for the next flush (once until the flusher takes it).
    #[inline]
    pub fn mark_dirty(&self, e: &Arc<Entry>) {
        mark_dirty(e, &self.dirty);
    }

    fn shard(&self, hash: u64) -> &RwLock<HashTable<Arc<Entry>>> {
        &self.shards[(hash >> 32) as usize & (SHARDS - 1)].0
    }

    /// Runs `op` on the series `kind`/`name`/`tags` of table hash `hash`,
    /// creating it (rendered by `render`) if needed, while holding its
    /// shard's lock, so that eviction never removes a series in the middle
    /// of an update. Past `max_series`, a new series' samples go to the
    /// overflow series of its kind, counted.
    #[inline]
    pub fn with<R>(
        &self,
        kind: MetricType,
        hash: u64,
        name: &str,
        tags: Tags<'_>,
        render: impl Fn(&str, &[(&str, &str)]) -> Rendered,
        op: impl FnOnce(&Arc<Entry>) -> R,
    ) -> R {
        let key = KeyRef { kind, name, tags };
        {
            let t = self.shard(hash).read();
            if let Some(e) = t.find(hash, |e| key.matches(e)) {
                return op(e);
            }
        }
        match self.create(key, hash, &render, op) {
            Ok(out) => out,
            Err(op) => self.overflow(kind, name, render, op),
        }
    }

    /// Runs `op` on the series `kind`/`name`/`tags` if the table holds it;
    /// `None` otherwise (nothing is created).
    #[inline]
    pub fn with_existing<R>(
        &self,
        kind: MetricType,
        hash: u64,
        name: &str,
        tags: Tags<'_>,
        op: impl FnOnce(&Arc<Entry>) -> R,
    ) -> Option<R> {
        let key = KeyRef { kind, name, tags };
        let t = self.shard(hash).read();
        t.find(hash, |e| key.matches(e)).map(op)
    }

    /// The series `kind`/`name`/`tags` for a bound handle, pinned (not
    /// evicted until [`Entry::unpin`]); `None` past `max_series`, where a
    /// handle records by key instead, so that each of its samples is
    /// counted as overflowed.
    pub fn bind(
        &self,
        kind: MetricType,
        hash: u64,
        name: &str,
        tags: Tags<'_>,
        render: impl Fn(&str, &[(&str, &str)]) -> Rendered,
    ) -> Option<Arc<Entry>> {
        let key = KeyRef { kind, name, tags };
        let pin = |e: &Arc<Entry>| {
            e.pin();
            e.clone()
        };
        {
            let t = self.shard(hash).read();
            if let Some(e) = t.find(hash, |e| key.matches(e)) {
                return Some(pin(e));
            }
        }
        self.create(key, hash, render, pin).ok()
    }

    /// The miss path of [`with`](Self::with): inserts the series and runs
    /// `op` on it, or hands `op` back when the table is full.
    #[cold]
    fn create<R, F: FnOnce(&Arc<Entry>) -> R>(
        &self,
        key: KeyRef<'_>,
        hash: u64,
        render: impl Fn(&str, &[(&str, &str)]) -> Rendered,
        op: F,
    ) -> Result<R, F> {
        if self.len.load(Ordering::Relaxed) >= self.max {
            return Err(op);
        }
        // Stored in one canonical order (no duplicate keys: a key's rules).
        let mut sorted: Vec<(&str, &str)> = key.tags.to_vec();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let stored = KeyRef {
            kind: key.kind,
            name: key.name,
            tags: &sorted,
        };
        // Built before the lock, so that the lock covers only the insert.
        let fresh = Arc::new(Entry::new(hash, &stored, render(key.name, &sorted)));
        let mut t = self.shard(hash).write();
        if let Some(e) = t.find(hash, |e| key.matches(e)) {
            return Ok(op(e));
        }
        // Checked again under the lock; concurrent creators in other
        // shards may overshoot the limit by at most one each.
        if self.len.load(Ordering::Relaxed) >= self.max {
            return Err(op);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        let e = t.insert_unique(hash, fresh.clone(), |e| e.hash);
        let out = op(e.get());
        drop(t);
        // Known to the flusher from the start, so that it can be
        // evicted even if nothing is ever sent for it.
        self.mark_dirty(&fresh);
        Ok(out)
    }

    /// A sample of a new series past `max_series`: into the overflow series
    /// of its kind, counted.
    #[cold]
    fn overflow<R>(
        &self,
        kind: MetricType,
        name: &str,
        render: impl Fn(&str, &[(&str, &str)]) -> Rendered,
        op: impl FnOnce(&Arc<Entry>) -> R,
    ) -> R {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        // Best effort: a busy list is skipped rather than waited for.
        if let Some(mut names) = self.overflow_names.try_lock()
            && names.len() < MAX_OVERFLOW_NAMES
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
        let e = self.overflow[kind as usize].get_or_init(|| {
            let key = KeyRef {
                kind,
                name: OVERFLOW_NAME,
                tags: &[],
            };
            Arc::new(Entry::new(0, &key, render(OVERFLOW_NAME, &[])))
        });
        op(e)
    }

    /// Removes an idle series unless it was recorded into since the flusher
    /// last took it, or a bound handle holds it. Recorders by key update a
    /// series only under its shard's lock, and bound handles pin theirs
    /// under it: once this holds the write lock, no update is in flight.
    pub fn evict(&self, e: &Arc<Entry>) -> bool {
        let is_overflow = |o: &OnceLock<Arc<Entry>>| o.get().is_some_and(|o| Arc::ptr_eq(o, e));
        if self.overflow.iter().any(is_overflow) {
            return false;
        }
        let mut t = self.shard(e.hash).write();
        if e.dirty.load(Ordering::SeqCst)
            || e.pins.load(Ordering::SeqCst) > 0
            || e.slow.lock().backlog.is_some()
        {
            return false;
        }
        let Ok(found) = t.find_entry(e.hash, |x| Arc::ptr_eq(x, e)) else {
            return false;
        };
        found.remove();
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.evicted.fetch_add(1, Ordering::Relaxed);
        // Give memory back once a shard is mostly empty.
        if t.capacity() > 64 && t.len() * 4 < t.capacity() {
            let keep = t.len() * 2;
            t.shrink_to(keep, |e| e.hash);
        }
        true
    }
}
