//! Success and failure counts per operation, all-time and windowed.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};
use parking_lot::{Mutex, RwLock};

use metrics_protocol::Key;
use metrics_protocol::backend::DropReason;
use metrics_protocol::backend::validate::OVERFLOW_TAG;

use crate::ring::{BinData, HistoryMark, Rings, WindowSpec};

/// Counts of one bin (or all time).
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcomes {
    pub success: u64,
    /// (index into the operation's error types, count).
    pub failures: Vec<(u32, u64)>,
}

impl Outcomes {
    fn fail(&mut self, idx: u32, n: u64) {
        match self.failures.iter_mut().find(|(i, _)| *i == idx) {
            Some((_, c)) => *c += n,
            None => self.failures.push((idx, n)),
        }
    }
}

impl BinData for Outcomes {
    fn merge_from(&mut self, o: &Self) {
        self.success += o.success;
        for (i, c) in &o.failures {
            self.fail(*i, *c);
        }
    }
    fn reset(&mut self) {
        self.success = 0;
        self.failures.clear();
    }
}

/// One tag set's all-time outcomes: sorted tags, successes, failures by type.
pub(crate) type TagSetOutcomes = (Vec<(String, String)>, u64, BTreeMap<String, u64>);

/// One sealed outcome bin: operation, bin start and width (ms), successes,
/// failures by error type.
pub(crate) type SealedOutcomeBin = (String, i64, i64, u64, BTreeMap<String, u64>);

/// Sorted, owned tags of one outcome series.
pub(crate) type OwnedTags = Box<[(Box<str>, Box<str>)]>;

/// Most tag sets kept per operation; outcomes with further tag sets are
/// counted under one set tagged [`OVERFLOW_TAG`]`=true`.
pub(crate) const MAX_TAG_SETS_PER_OPERATION: usize = 256;

#[derive(Debug)]
pub(crate) struct OpState {
    pub error_types: Vec<Box<str>>,
    pub total: Outcomes,
    pub rings: Rings<Outcomes>,
    /// All-time outcomes per tag set, in first-seen order.
    pub by_tags: Vec<(OwnedTags, Outcomes)>,
}

impl OpState {
    /// The index in `by_tags` of `key`'s tag set (in any order), added
    /// (sorted) when it is new; past the limit of tag sets, the overflow
    /// set's. The flag says whether the index is the overflow set's.
    fn tag_set(&mut self, key: &Key<'_>) -> (usize, bool) {
        // Keys hold no tag key twice: same size and each given pair stored
        // is set equality.
        let same = |t: &OwnedTags, given: &[(&str, &str)]| {
            t.len() == given.len()
                && given
                    .iter()
                    .all(|(k, v)| t.iter().any(|(sk, sv)| &**sk == *k && &**sv == *v))
        };
        let tags = key.tags();
        if let Some(i) = self.by_tags.iter().position(|(t, _)| same(t, tags)) {
            let overflow = same(&self.by_tags[i].0, &[(OVERFLOW_TAG, "true")]);
            return (i, overflow);
        }
        if self.by_tags.len() < MAX_TAG_SETS_PER_OPERATION {
            let owned = key
                .sorted_tags()
                .as_slice()
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            self.by_tags.push((owned, Outcomes::default()));
            return (self.by_tags.len() - 1, false);
        }
        let overflow: &[(&str, &str)] = &[(OVERFLOW_TAG, "true")];
        let at = match self.by_tags.iter().position(|(t, _)| same(t, overflow)) {
            Some(i) => i,
            None => {
                let owned = Box::new([(OVERFLOW_TAG.into(), "true".into())]);
                self.by_tags.push((owned, Outcomes::default()));
                self.by_tags.len() - 1
            }
        };
        (at, true)
    }

    /// Counts one outcome into the tag set at `set`: a success for `None`,
    /// else a failure of that error type.
    fn count(&mut self, now_ms: i64, set: usize, failure: Option<&str>) {
        let err_idx = failure.map(
            |err| match self.error_types.iter().position(|e| &**e == err) {
                Some(i) => i as u32,
                None => {
                    self.error_types.push(err.into());
                    (self.error_types.len() - 1) as u32
                }
            },
        );
        let Some(outcomes) = self.by_tags.get_mut(set).map(|(_, o)| o) else {
            return;
        };
        match err_idx {
            None => {
                outcomes.success += 1;
                self.total.success += 1;
                self.rings.record(now_ms, |b| b.success += 1);
            }
            Some(idx) => {
                outcomes.fail(idx, 1);
                self.total.fail(idx, 1);
                self.rings.record(now_ms, |b| b.fail(idx, 1));
            }
        }
    }
}

/// Where the outcomes of one (operation, tag set) pair are counted, held by
/// the operation's timer series so that a timing guard that found the
/// series counts its outcome without a lookup.
pub(crate) struct OutcomeSet {
    op: Arc<Mutex<OpState>>,
    index: usize,
}

impl std::fmt::Debug for OutcomeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutcomeSet")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl OutcomeSet {
    /// Counts one outcome, as [`Tracker::record`] would for this pair.
    #[inline]
    pub fn count(&self, now_ms: i64, failure: Option<&str>) {
        self.op.lock().count(now_ms, self.index, failure);
    }
}

/// One (operation, tag set) pair already counted, found by the fingerprint
/// of its key.
struct SetEntry {
    hash: u64,
    name: Box<str>,
    /// Sorted.
    tags: OwnedTags,
    op: Arc<Mutex<OpState>>,
    /// The tag set's index in the operation's `by_tags`.
    index: usize,
}

impl SetEntry {
    #[inline]
    fn is(&self, key: &Key<'_>) -> bool {
        self.hash == key.fingerprint() && key.matches(&self.name, &self.tags)
    }
}

/// Every operation seen.
pub(crate) struct Tracker {
    ops: RwLock<HashMap<Box<str>, Arc<Mutex<OpState>>>>,
    /// Every (operation, tag set) counted so far, except those folded into
    /// an overflow set, by the fingerprint of its key: what the recording
    /// path looks up (without hashing anything).
    sets: RwLock<HashTable<SetEntry>>,
    specs: Vec<WindowSpec>,
    max_ops: usize,
    /// The history reader's mark: the outcome rings hold the finest bins
    /// it has not had yet.
    history: Arc<HistoryMark>,
}

impl Tracker {
    pub fn new(specs: Vec<WindowSpec>, max_ops: usize, history: Arc<HistoryMark>) -> Self {
        Tracker {
            ops: RwLock::new(HashMap::new()),
            sets: RwLock::new(HashTable::new()),
            specs,
            max_ops,
            history,
        }
    }

    /// The operation's state, created if the limit on operations allows.
    fn op(&self, name: &str) -> Option<Arc<Mutex<OpState>>> {
        if let Some(o) = self.ops.read().get(name) {
            return Some(o.clone());
        }
        let mut ops = self.ops.write();
        if !ops.contains_key(name) && ops.len() >= self.max_ops {
            return None;
        }
        let op = ops
            .entry(name.into())
            .or_insert_with(|| {
                Arc::new(Mutex::new(OpState {
                    error_types: Vec::new(),
                    total: Outcomes::default(),
                    rings: Rings::with_hold(&self.specs, self.history.clone()),
                    by_tags: Vec::new(),
                }))
            })
            .clone();
        Some(op)
    }

    /// Counts one outcome of the operation `key` names, with its tags (any
    /// order): `None` for a success, `Some(error_type)` for a failure. An
    /// operation and tag set already counted are found by the key's
    /// fingerprint, so a repeated outcome costs a lookup and a lock. `Err`
    /// when the outcome is dropped (a new operation past the limit).
    #[inline]
    pub fn record(
        &self,
        now_ms: i64,
        key: &Key<'_>,
        failure: Option<&str>,
    ) -> Result<(), DropReason> {
        let hash = key.fingerprint();
        {
            let sets = self.sets.read();
            if let Some(e) = sets.find(hash, |e| e.is(key)) {
                e.op.lock().count(now_ms, e.index, failure);
                return Ok(());
            }
        }
        self.record_new(now_ms, key, failure)
    }

    /// Where the outcomes of `key`'s operation and tag set are counted, if
    /// they were counted before under a tag set of their own (not an
    /// overflow set).
    pub fn set_of(&self, key: &Key<'_>) -> Option<OutcomeSet> {
        let sets = self.sets.read();
        sets.find(key.fingerprint(), |e| e.is(key))
            .map(|e| OutcomeSet {
                op: e.op.clone(),
                index: e.index,
            })
    }

    /// [`record`](Self::record) of an operation and tag set not found:
    /// counts it, then indexes it (unless it went to an overflow set, which
    /// every further tag set shares).
    #[cold]
    fn record_new(
        &self,
        now_ms: i64,
        key: &Key<'_>,
        failure: Option<&str>,
    ) -> Result<(), DropReason> {
        let op = self.op(key.name()).ok_or(DropReason::NameLimit)?;
        let (index, overflow) = {
            let mut st = op.lock();
            let (index, overflow) = st.tag_set(key);
            st.count(now_ms, index, failure);
            (index, overflow)
        };
        if !overflow {
            let hash = key.fingerprint();
            let mut sets = self.sets.write();
            if sets.find(hash, |e| e.is(key)).is_none() {
                let tags = key
                    .sorted_tags()
                    .as_slice()
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect();
                let entry = SetEntry {
                    hash,
                    name: key.name().into(),
                    tags,
                    op,
                    index,
                };
                sets.insert_unique(hash, entry, |e| e.hash);
            }
        }
        Ok(())
    }

    /// Outcomes over all time (`since_ms = None`) or since `since_ms`, with
    /// the error type names; `None` for an unknown operation.
    pub fn outcomes(
        &self,
        op: &str,
        window: Option<(i64, i64)>,
    ) -> Option<(u64, BTreeMap<String, u64>)> {
        let o = self.ops.read().get(op)?.clone();
        let st = o.lock();
        let mut acc = Outcomes::default();
        match window {
            None => acc.merge_from(&st.total),
            Some((since, now)) => st
                .rings
                .for_each_since(since, now, |_, _, b| acc.merge_from(b)),
        }
        let breakdown = acc
            .failures
            .iter()
            .map(|(i, c)| (st.error_types[*i as usize].to_string(), *c))
            .collect();
        Some((acc.success, breakdown))
    }

    /// All-time outcomes of `op` per tag set (sorted tags, successes,
    /// failures by error type), in first-seen order.
    pub fn outcomes_by_tags(&self, op: &str) -> Vec<TagSetOutcomes> {
        let Some(o) = self.ops.read().get(op).cloned() else {
            return Vec::new();
        };
        let st = o.lock();
        st.by_tags
            .iter()
            .map(|(tags, out)| {
                let tags = tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let failures = out
                    .failures
                    .iter()
                    .map(|(i, c)| (st.error_types[*i as usize].to_string(), *c))
                    .collect();
                (tags, out.success, failures)
            })
            .collect()
    }

    /// Every non-empty outcome bin of every operation that starts at or
    /// after `from_ms` and ends at or before `to_ms` (one entry per bin,
    /// error types by name), for a durable store; `now_ms` bounds what the
    /// rings still hold.
    pub fn sealed(&self, from_ms: i64, to_ms: i64, now_ms: i64) -> Vec<SealedOutcomeBin> {
        let ops: Vec<(Box<str>, Arc<Mutex<OpState>>)> = self
            .ops
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::new();
        for (name, op) in ops {
            let st = op.lock();
            let mut found: BTreeMap<(i64, i64), Outcomes> = BTreeMap::new();
            st.rings.for_each_since(from_ms, now_ms, |start, width, b| {
                if start.saturating_add(width) <= to_ms {
                    found.entry((start, width)).or_default().merge_from(b);
                }
            });
            for ((start, width), o) in found {
                if o.success == 0 && o.failures.iter().all(|(_, c)| *c == 0) {
                    continue;
                }
                let failures = o
                    .failures
                    .iter()
                    .filter(|(_, c)| *c > 0)
                    .map(|(i, c)| (st.error_types[*i as usize].to_string(), *c))
                    .collect();
                out.push((name.to_string(), start, width, o.success, failures));
            }
        }
        out
    }

    /// Names of every operation, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ops.read().keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }
}
