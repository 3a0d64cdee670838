//! One series: its value, all-time statistics and rings of bins, with
//! counters recorded lock-free into atomic slots and everything else under
//! the series' own short lock. The registry (`registry.rs`) finds and
//! creates series; this file is what a sample does to one.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use metrics_protocol::backend::Value;
use metrics_protocol::{MetricType, Tags};
use parking_lot::Mutex;

use crate::ring::{Rings, SketchRings};
use crate::sketch::{Key, Sketch};
use crate::stats::{Exact, Stats};
use crate::tracker::OutcomeSet;

/// Mutable state of one series, under its own short lock.
#[derive(Debug)]
pub(crate) struct SeriesState {
    /// Counter total or gauge value.
    pub value: f64,
    /// All-time statistics of the recorded samples (increments for counters,
    /// values set for gauges, samples for distributions).
    pub total: Exact,
    /// All-time quantile sketch (distributions only).
    pub sketch: Option<Box<Sketch>>,
    /// Windowed statistics: the rings of bins.
    pub rings: Rings<Exact>,
    /// Windowed quantile sketches: their rings (distributions only).
    pub quantiles: Option<Box<SketchRings>>,
    /// The most recent raw samples, when the configuration keeps any.
    pub samples: VecDeque<f64>,
}

/// A counter's current finest bin, written with atomics only.
///
/// Whole increments below [`SMALL_LIMIT`] (the usual `+1`) take one atomic
/// add on `packed`, which holds their count in the low [`COUNT_BITS`] bits
/// and their sum above; any other increment adds to `count` and `sum`. When
/// the packed count reaches [`SPILL_AT`], the word is moved into `count` and
/// `sum` under the series lock, long before either field can overflow
/// (each thread adds at most one more increment before it waits for that
/// lock, and the sum field has room for 2^40 / 2^15 = 2^25 increments).
#[derive(Debug)]
pub(crate) struct Slot {
    /// Start of the bin in milliseconds (a multiple of the finest bin),
    /// `i64::MIN` when empty: what the recording path compares the time
    /// with, so it needs no multiplication.
    pub(crate) start_ms: AtomicI64,
    pub(crate) packed: AtomicU64,
    pub(crate) count: AtomicU64,
    /// f64 bits.
    pub(crate) sum: AtomicU64,
}

/// Bits of `Slot::packed` that hold the count.
pub(crate) const COUNT_BITS: u32 = 24;
pub(crate) const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Packed count at which the word is spilled into the plain fields.
pub(crate) const SPILL_AT: u64 = 1 << (COUNT_BITS - 1);
/// Whole increments below this are packed.
pub(crate) const SMALL_LIMIT: f64 = 32768.0;

fn unpack(w: u64) -> (u64, f64) {
    (w & COUNT_MASK, (w >> COUNT_BITS) as f64)
}

impl Slot {
    pub(crate) fn new() -> Self {
        Slot {
            start_ms: AtomicI64::new(i64::MIN),
            packed: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Bin index (`start_ms / finest_ms`), `i64::MIN` when empty.
    pub(crate) fn epoch(&self, finest_ms: i64) -> i64 {
        match self.start_ms.load(Ordering::Acquire) {
            i64::MIN => i64::MIN,
            start => start.div_euclid(finest_ms),
        }
    }

    /// Adds one validated increment; returns whether the packed word is due
    /// to be spilled.
    #[inline]
    pub(crate) fn add(&self, value: f64) -> bool {
        self.add_packed(&self.packed, value)
    }

    /// [`add`](Self::add), a small whole increment going to `packed`: the
    /// slot's own word or its word in one of the series' [`Stripes`].
    #[inline]
    pub(crate) fn add_packed(&self, packed: &AtomicU64, value: f64) -> bool {
        // A whole number below 2^15: the round trip through an i32 (two
        // instructions) is exact.
        let whole = value as i32;
        if (0.0..SMALL_LIMIT).contains(&value) && f64::from(whole) == value {
            let prev = packed.fetch_add(((whole as u64) << COUNT_BITS) | 1, Ordering::Relaxed);
            return prev & COUNT_MASK >= SPILL_AT;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // `+ 0.0` turns -0.0 into 0.0.
        add_f64(&self.sum, value + 0.0);
        false
    }

    /// Moves the packed word into the plain fields (under the series lock,
    /// so readers, who take it too, never see the move half done).
    pub(crate) fn spill(&self) {
        self.absorb(&self.packed);
    }

    /// Moves a packed word (the slot's own or a stripe's) into the plain
    /// fields (under the series lock).
    fn absorb(&self, packed: &AtomicU64) {
        let (count, sum) = unpack(packed.swap(0, Ordering::AcqRel));
        self.count.fetch_add(count, Ordering::AcqRel);
        add_f64(&self.sum, sum);
    }

    /// Count and sum (under the series lock).
    pub(crate) fn peek(&self) -> (u64, f64) {
        let (pc, ps) = unpack(self.packed.load(Ordering::Acquire));
        let count = self.count.load(Ordering::Acquire) + pc;
        (count, f64::from_bits(self.sum.load(Ordering::Acquire)) + ps)
    }

    /// Count and sum, leaving the slot empty (under the series lock).
    pub(crate) fn take(&self) -> (u64, f64) {
        let (pc, ps) = unpack(self.packed.swap(0, Ordering::AcqRel));
        let count = self.count.swap(0, Ordering::AcqRel) + pc;
        let sum = f64::from_bits(self.sum.swap(0f64.to_bits(), Ordering::AcqRel));
        (count, sum + ps)
    }
}

/// How many packed words a counter with bound handles spreads its small
/// increments over, so that threads incrementing one series write to
/// different cache lines.
pub(crate) const STRIPES: usize = 4;

/// One stripe: a thread's packed words for both slots, alone on its cache
/// line (two lines, for CPUs that fetch lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Stripe {
    packed: [AtomicU64; 2],
}

/// A counter's striped packed words, made when the first handle binds to
/// it: a bound handle adds a small whole increment to its thread's stripe
/// (threads take stripes in turn) instead of the slot's one word. Every
/// read of a slot (the bin's count and sum, spilling, recycling) adds up,
/// or moves, the slot's word and its word in every stripe, under the
/// series lock, as for the slot's own word: a stripe is part of the slot,
/// never a thread's private buffer, so nothing is left behind when a
/// thread exits.
#[derive(Debug, Default)]
pub(crate) struct Stripes {
    stripes: [Stripe; STRIPES],
}

impl Stripes {
    /// The calling thread's packed word for slot `which`, `None` until
    /// the thread has taken a stripe ([`take_stripe`]).
    #[inline(always)]
    pub(crate) fn word(&self, which: usize) -> Option<&AtomicU64> {
        // A thread-local is gone only while its thread exits: stripe 0 then.
        let i = STRIPE.try_with(Cell::get).unwrap_or(0);
        self.stripes.get(i).map(|s| &s.packed[which & 1])
    }

    /// Every stripe's packed word for slot `which`.
    fn words(&self, which: usize) -> impl Iterator<Item = &AtomicU64> {
        self.stripes.iter().map(move |s| &s.packed[which & 1])
    }
}

thread_local! {
    /// This thread's stripe, `usize::MAX` until it first needs one.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Gives the calling thread its stripe: threads take them in turn, so up
/// to [`STRIPES`] threads recording at once each have their own.
#[cold]
#[inline(never)]
fn take_stripe() {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    let _ = STRIPE.try_with(|s| s.set(i));
}

#[inline]
fn add_f64(a: &AtomicU64, v: f64) {
    let mut cur = a.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(cur) + v).to_bits();
        match a.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(x) => cur = x,
        }
    }
}

/// One series.
///
/// Counters are recorded lock-free into one of two atomic slots (the
/// current and the previous finest bin); a slot is folded into the rings
/// and the all-time totals, under the series lock, when it is reused two
/// bins later. A sample is therefore never lost, and count and sum of a bin
/// always move together. Gauges and distributions take the series lock.
#[derive(Debug)]
pub(crate) struct Series {
    pub name: Box<str>,
    pub tags: Box<[(Box<str>, Box<str>)]>,
    pub kind: MetricType,
    /// The fingerprint of the series' key: its hash in the registry.
    pub(crate) hash: u64,
    /// Last time a sample was recorded (ms since the epoch). A counter
    /// stamps it only when a sample opens a new bin (the recording path
    /// writes nothing but the bin): see [`last_active_ms`](Self::last_active_ms).
    pub touched_ms: AtomicI64,
    /// Live handles bound to this series: while any lives it never
    /// expires, or the handle would write into a series nobody can read.
    pub pins: AtomicUsize,
    pub(crate) finest_ms: i64,
    pub(crate) slots: [Slot; 2],
    /// A counter's striped packed words, once a handle is bound to it.
    pub(crate) stripes: OnceLock<Arc<Stripes>>,
    /// The slot of the newest bin (a hint: a sample outside its bin takes
    /// the slow path).
    pub(crate) active: AtomicUsize,
    pub state: Mutex<SeriesState>,
    /// A timer's: where the outcomes of the same operation and tags are
    /// counted, once known (see `MemoryMetrics::record_timing_by_name`).
    pub(crate) outcomes: OnceLock<OutcomeSet>,
}

impl Series {
    /// Whether this series is `name` with `tags` in any order (a key's
    /// name and tags: stored keys are distinct, so when the lengths agree
    /// and every stored pair is in `tags`, `tags` is a permutation of them).
    #[inline]
    pub(crate) fn matches(&self, name: &str, tags: Tags<'_>) -> bool {
        if !str_eq(&self.name, name) || self.tags.len() != tags.len() {
            return false;
        }
        let in_order = self
            .tags
            .iter()
            .zip(tags)
            .all(|((k, v), (k2, v2))| str_eq(k, k2) && str_eq(v, v2));
        in_order
            || self
                .tag_pairs()
                .all(|(k, v)| tags.iter().any(|&(k2, v2)| str_eq(k, k2) && str_eq(v, v2)))
    }

    /// [`matches`](Self::matches), trying first the order in which this
    /// call site passed the tags last time (`perm[i]`: the input index of
    /// stored tag `i`), and remembering the order found. Stored keys are
    /// distinct, so a `perm` under which every stored pair equals its input
    /// pair is a permutation: the same proof as `matches`.
    #[inline]
    pub(crate) fn matches_with(&self, name: &str, tags: Tags<'_>, perm: &mut [u8; PERM]) -> bool {
        if !str_eq(&self.name, name) || self.tags.len() != tags.len() {
            return false;
        }
        #[inline(always)]
        fn same(t: &(Box<str>, Box<str>), tags: Tags<'_>, j: u8) -> bool {
            tags.get(usize::from(j))
                .is_some_and(|&(k2, v2)| str_eq(&t.0, k2) && str_eq(&t.1, v2))
        }
        if self
            .tags
            .iter()
            .zip(perm.iter())
            .all(|(t, &j)| same(t, tags, j))
        {
            return true;
        }
        for (i, t) in self.tags.iter().enumerate() {
            match (0..tags.len()).find(|&j| same(t, tags, j as u8)) {
                Some(j) => perm[i] = j as u8,
                None => return false,
            }
        }
        true
    }

    pub fn is_distribution(&self) -> bool {
        matches!(self.kind, MetricType::Histogram | MetricType::Timer)
    }

    /// Adds a validated counter increment, lock-free: when `now_ms` is in
    /// the active slot's bin (the usual case), two loads, a subtraction and
    /// one atomic add, with no division, no multiplication and no other
    /// store (the last activity is the bin's: [`last_active_ms`](Self::last_active_ms)).
    #[inline]
    pub fn add_counter(&self, now_ms: i64, value: f64) {
        let which = self.active.load(Ordering::Relaxed) & 1;
        let slot = &self.slots[which];
        let start = slot.start_ms.load(Ordering::Acquire);
        if (now_ms.wrapping_sub(start) as u64) < self.finest_ms as u64 {
            if slot.add(value) {
                self.spill(which);
            }
        } else {
            self.add_counter_other_bin(now_ms, value);
        }
    }

    /// [`add_counter`](Self::add_counter) through a bound handle: a small
    /// whole increment goes to the calling thread's stripe of `stripes`
    /// (this series' own, see [`stripes`](Self::stripes)), so threads
    /// incrementing one series do not share a cache line.
    #[inline]
    pub fn add_counter_striped(&self, now_ms: i64, value: f64, stripes: &Stripes) {
        let which = self.active.load(Ordering::Relaxed) & 1;
        let slot = &self.slots[which];
        let start = slot.start_ms.load(Ordering::Acquire);
        if (now_ms.wrapping_sub(start) as u64) < self.finest_ms as u64 {
            match stripes.word(which) {
                Some(word) => {
                    if slot.add_packed(word, value) {
                        self.spill(which);
                    }
                }
                None => self.add_counter_new_stripe(now_ms, value, stripes),
            }
        } else {
            self.add_counter_other_bin(now_ms, value);
        }
    }

    /// [`add_counter_striped`](Self::add_counter_striped) for a thread
    /// without a stripe yet: takes one and adds (out of line, so the usual
    /// path keeps no registers for a call).
    #[cold]
    #[inline(never)]
    fn add_counter_new_stripe(&self, now_ms: i64, value: f64, stripes: &Stripes) {
        take_stripe();
        // The thread has a stripe now (or reads stripe 0 while it exits).
        self.add_counter_striped(now_ms, value, stripes);
    }

    /// This series' stripes, made on first use (when a counter handle
    /// binds to it).
    pub(crate) fn stripes(&self) -> Arc<Stripes> {
        self.stripes.get_or_init(Arc::default).clone()
    }

    /// Count and sum of slot `which`, its stripes' words included (under
    /// the series lock).
    fn slot_peek(&self, which: usize) -> (u64, f64) {
        let (mut count, mut sum) = self.slots[which].peek();
        if let Some(stripes) = self.stripes.get() {
            for w in stripes.words(which) {
                let (c, s) = unpack(w.load(Ordering::Acquire));
                count += c;
                sum += s;
            }
        }
        (count, sum)
    }

    /// [`slot_peek`](Self::slot_peek), leaving the slot and its stripes'
    /// words empty (under the series lock).
    fn slot_take(&self, which: usize) -> (u64, f64) {
        let (mut count, mut sum) = self.slots[which].take();
        if let Some(stripes) = self.stripes.get() {
            for w in stripes.words(which) {
                let (c, s) = unpack(w.swap(0, Ordering::AcqRel));
                count += c;
                sum += s;
            }
        }
        (count, sum)
    }

    /// When this series was last recorded into (ms since the epoch). For
    /// gauges and distributions the time of the last sample; for counters
    /// the time of the first sample of the newest bin, so at most one
    /// finest bin earlier than the last sample.
    pub fn last_active_ms(&self) -> i64 {
        self.touched_ms.load(Ordering::Relaxed)
    }

    /// A time at or after the last sample (ms since the epoch), for idle
    /// expiry, which must never remove a series early: for counters the
    /// last millisecond of the newest bin, else [`last_active_ms`](Self::last_active_ms).
    pub fn active_until_ms(&self) -> i64 {
        let touched = self.last_active_ms();
        if self.kind != MetricType::Counter {
            return touched;
        }
        self.slots
            .iter()
            .map(|s| s.epoch(self.finest_ms))
            .filter(|&e| e != i64::MIN)
            .map(|e| e.saturating_add(1).saturating_mul(self.finest_ms) - 1)
            .fold(touched, i64::max)
    }

    /// [`add_counter`](Self::add_counter) for a sample outside the active
    /// slot's bin: picks (and if needed recycles) the slot of its bin.
    #[cold]
    pub(crate) fn add_counter_other_bin(&self, now_ms: i64, value: f64) {
        let idx = now_ms.div_euclid(self.finest_ms);
        let which = (idx & 1) as usize;
        let slot = &self.slots[which];
        if slot.epoch(self.finest_ms) < idx {
            self.recycle(which, idx, now_ms);
            self.active.store(which, Ordering::Relaxed);
        }
        if slot.add(value) {
            self.spill(which);
        }
    }

    /// Moves slot `which`'s packed words (its own and its stripes') into
    /// its plain fields.
    #[cold]
    pub(crate) fn spill(&self, which: usize) {
        let _st = self.state.lock();
        let slot = &self.slots[which];
        slot.spill();
        if let Some(stripes) = self.stripes.get() {
            for w in stripes.words(which) {
                slot.absorb(w);
            }
        }
    }

    #[cold]
    pub(crate) fn recycle(&self, which: usize, idx: i64, now_ms: i64) {
        let mut st = self.state.lock();
        let slot = &self.slots[which];
        let old = slot.epoch(self.finest_ms);
        if old >= idx {
            return; // another thread recycled it first
        }
        let (count, sum) = self.slot_take(which);
        if old != i64::MIN && count > 0 {
            let mut bin = Exact::default();
            bin.add_bin(count, sum);
            st.value += sum;
            st.total.add_bin(count, sum);
            st.rings
                .merge_bin(now_ms, old.saturating_mul(self.finest_ms), &bin);
        }
        slot.start_ms
            .store(idx.saturating_mul(self.finest_ms), Ordering::Release);
        // A counter's last activity is stamped once per bin, here.
        self.touched_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// The value and all-time statistics, live counter slots included.
    pub fn read(&self) -> (f64, Stats) {
        self.read_with(|value, stats, sketch| {
            let stats = Stats {
                sketch: sketch.map(|s| Box::new(s.clone())),
                ..stats.clone()
            };
            (value, stats)
        })
    }

    /// [`read`](Self::read) without the copy: calls `f` with the value, the
    /// all-time statistics (without a sketch) and the all-time sketch lent
    /// under the series lock, so an exporter can walk its buckets in place.
    /// `f` runs under the lock: it must be short and must not record.
    pub fn read_with<R>(&self, f: impl FnOnce(f64, &Stats, Option<&Sketch>) -> R) -> R {
        let st = self.state.lock();
        let (mut value, mut total) = (st.value, st.total);
        for (which, slot) in self.slots.iter().enumerate() {
            if slot.start_ms.load(Ordering::Acquire) != i64::MIN {
                let (count, sum) = self.slot_peek(which);
                value += sum;
                total.add_bin(count, sum);
            }
        }
        let mut stats = Stats::default();
        stats.merge_exact(&total);
        f(value, &stats, st.sketch.as_deref())
    }

    /// The windowed quantile sketch of `[since_ms, now_ms]` (the bins and
    /// blocks starting in it, and a share of a block straddling its start
    /// for the samples of the exact bins they miss, see
    /// [`SketchRings::merged`]), with the earliest start it covers; `None`
    /// for series that are not distributions.
    pub fn window_sketch(&self, since_ms: i64, now_ms: i64) -> Option<(Sketch, Option<i64>)> {
        let st = self.state.lock();
        let q = st.quantiles.as_ref()?;
        let (mut exact, mut first_bin) = (0u64, i64::MAX);
        st.rings.for_each_since(since_ms, now_ms, |start, _, b| {
            if b.count > 0 {
                exact = exact.saturating_add(b.count);
                first_bin = first_bin.min(start);
            }
        });
        let (sketch, first) = q.merged(since_ms, now_ms, exact);
        // Holding every sample of the exact bins, it covers what they do.
        let first = if exact > 0 && sketch.count() >= exact {
            Some(first.map_or(first_bin, |f| f.min(first_bin)))
        } else {
            first
        };
        Some((sketch, first))
    }

    /// Calls `f(start_ms, width_ms, data)` for every bin starting at or
    /// after `since_ms`, live counter slots included (bins newer than
    /// `now_ms`, opened by a reading later than the caller's, count too).
    pub fn for_each_bin(&self, since_ms: i64, now_ms: i64, mut f: impl FnMut(i64, i64, &Exact)) {
        let st = self.state.lock();
        st.rings.for_each_since(since_ms, now_ms, &mut f);
        let oldest = now_ms.saturating_sub(st.rings.retention_ms());
        // A slot a history reader has not had counts however old it is,
        // as the rings' held bins do.
        let held_from = st.rings.held_from();
        for (which, slot) in self.slots.iter().enumerate() {
            let start = slot.start_ms.load(Ordering::Acquire);
            if start != i64::MIN && start >= since_ms && (start >= oldest || start >= held_from) {
                let mut bin = Exact::default();
                let (count, sum) = self.slot_peek(which);
                bin.add_bin(count, sum);
                f(start, self.finest_ms, &bin);
            }
        }
    }

    /// Records one value of this series' kind at `now_ms` (values arrive
    /// valid: a measurement or a bound handle checked them). The value is
    /// taken by reference and read field by field: a `Value` copied whole
    /// right after it was built stalls on store forwarding.
    #[inline]
    pub fn record(&self, now_ms: i64, value: &Value, keep_samples: usize) {
        if let Value::Counter(v) = *value {
            self.add_counter(now_ms, v);
        } else {
            self.record_locked(now_ms, value, keep_samples);
        }
    }

    /// Records a gauge or distribution value under the series lock. An
    /// outcome is no value of a series (the tracker counts outcomes): it
    /// changes nothing here.
    #[inline(never)]
    pub(crate) fn record_locked(&self, now_ms: i64, value: &Value, keep_samples: usize) {
        let dist = self.is_distribution();
        let mut st = self.state.lock();
        let sample = match *value {
            Value::Gauge(v) => {
                st.value = v;
                v
            }
            Value::GaugeDelta(d) => {
                st.value += d;
                st.value
            }
            Value::Counter(v) | Value::Histogram(v) => {
                st.value += v;
                v
            }
            Value::Timer(d) => {
                let v = d.as_secs_f64() * 1e3;
                st.value += v;
                v
            }
            Value::Success | Value::Failure => return,
        };
        st.total.add(sample);
        st.rings.record(now_ms, |b| b.add(sample));
        if dist {
            let key = Key::of(sample);
            if let Some(s) = &mut st.sketch {
                s.add_key(key, 1);
            }
            if let Some(q) = &mut st.quantiles {
                q.record(now_ms, key);
            }
        }
        if keep_samples > 0 && dist {
            if st.samples.len() >= keep_samples {
                st.samples.pop_front();
            }
            st.samples.push_back(sample);
        }
        drop(st);
        self.touched_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Tags as borrowed pairs.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.tags.iter().map(|(k, v)| (&**k, &**v))
    }
}

/// String equality for the short names and tags of the recording path,
/// without a call to `memcmp`: up to 16 bytes in two (overlapping) word
/// compares.
#[inline(always)]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY (every read below): both slices are `n` bytes long; each read
    // of `w` bytes starts at 0, `n / 2` (single bytes) or `n - w`, with
    // `1 <= w <= n`, so it stays inside them; `read_unaligned` needs no
    // alignment.
    unsafe {
        match n {
            0 => true,
            // First, middle and last byte: every byte of 1 to 3.
            1..4 => {
                let at = |p: *const u8, i: usize| p.add(i).read();
                at(pa, 0) == at(pb, 0)
                    && at(pa, n / 2) == at(pb, n / 2)
                    && at(pa, n - 1) == at(pb, n - 1)
            }
            4..8 => {
                let w = |p: *const u8, i: usize| p.add(i).cast::<u32>().read_unaligned();
                w(pa, 0) == w(pb, 0) && w(pa, n - 4) == w(pb, n - 4)
            }
            8..=16 => {
                let w = |p: *const u8, i: usize| p.add(i).cast::<u64>().read_unaligned();
                w(pa, 0) == w(pb, 0) && w(pa, n - 8) == w(pb, n - 8)
            }
            _ => a == b,
        }
    }
}

/// Room for the tag order of one call site: at most `MAX_TAGS` tags.
pub(crate) const PERM: usize = metrics_protocol::backend::validate::MAX_TAGS;
