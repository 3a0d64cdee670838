//! The history store: tag filters and group-by keys are values bound into
//! the query, never SQL (whatever the strings hold, the answer is the one a
//! plain containment filter over the written bins gives), and stored sketch
//! bytes are checked before they are merged (any bytes: refused or merged,
//! never a panic, and a merged sketch answers monotone quantiles between
//! its min and max).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Arbitrary;
use metrics_memory::QuantileSketch;
use metrics_protocol::MetricType;
use metrics_store::{HistoryQuery, Store, StoreUrl, StoredBin};

use crate::shape;

/// One bin to write: its tags (indexes into the pools), its step (0..8)
/// and its value.
type BinInput = (Vec<(u8, u8)>, u8, i32);

/// Bins to write and one query over them.
#[derive(Debug, Arbitrary)]
struct StoreInput {
    keys: Vec<String>,
    values: Vec<String>,
    bins: Vec<BinInput>,
    /// The query's filter (indexes, or raw strings when the pools are
    /// empty).
    filter: Vec<(u8, u8)>,
    raw_filter: Vec<(String, String)>,
    group_by: Option<u8>,
}

const BIN_MS: i64 = 10_000;
const START_MS: i64 = 1_800_000_000_000;

struct Shared {
    runtime: tokio::runtime::Runtime,
    store: Store,
}

/// One SQLite store for the whole fuzzing process; each input writes its
/// own metric name.
fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let dir =
                std::env::temp_dir().join(format!("metrics-fuzz-store-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let url = StoreUrl::Sqlite(dir.join("fuzz.sqlite"));
            let store = runtime
                .block_on(Store::open(&url, "fuzz"))
                .expect("a fresh SQLite store opens");
            Some(Shared { runtime, store })
        })
        .as_ref()
}

fn pick(pool: &[String], i: u8) -> Option<&str> {
    (!pool.is_empty()).then(|| pool[usize::from(i) % pool.len()].as_str())
}

/// Tags without a key twice (the backends never hand out such a series).
fn unique(tags: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut seen = BTreeMap::new();
    for (k, v) in tags {
        seen.entry(k).or_insert(v);
    }
    seen.into_iter().collect()
}

/// Writes the input's bins under a fresh name, queries them back with the
/// input's filter and compares with the containment filter computed here.
pub fn store_filter(data: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(input) = shape::<StoreInput>(data) else {
        return;
    };
    let Some(sh) = shared() else {
        return;
    };
    let name = format!("fuzz.{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let bins: Vec<StoredBin> = input
        .bins
        .iter()
        .take(32)
        .map(|(tags, step, v)| {
            let tags = unique(tags.iter().take(4).filter_map(|(k, v)| {
                Some((
                    pick(&input.keys, *k)?.to_owned(),
                    pick(&input.values, *v).unwrap_or("").to_owned(),
                ))
            }));
            let v = f64::from(*v);
            StoredBin {
                name: name.clone(),
                tags,
                kind: MetricType::Counter,
                start_ms: START_MS + i64::from(step % 8) * BIN_MS,
                width_ms: BIN_MS,
                count: 1,
                sum: v,
                min: v,
                max: v,
                sketch: None,
            }
        })
        .collect();
    let filter = if input.keys.is_empty() {
        unique(input.raw_filter.iter().take(3).cloned())
    } else {
        unique(input.filter.iter().take(3).filter_map(|(k, v)| {
            Some((
                pick(&input.keys, *k)?.to_owned(),
                pick(&input.values, *v).unwrap_or("").to_owned(),
            ))
        }))
    };
    let group_by = input
        .group_by
        .and_then(|g| pick(&input.keys, g).map(str::to_owned));
    sh.runtime
        .block_on(sh.store.write(&bins))
        .expect("SQLite accepts any bin");
    let q = HistoryQuery {
        name: name.clone(),
        tags: filter.clone(),
        start_ms: START_MS,
        end_ms: START_MS + 8 * BIN_MS,
        step_ms: BIN_MS,
        group_by: group_by.clone(),
        ..HistoryQuery::default()
    };
    let got = sh
        .runtime
        .block_on(sh.store.query(&q))
        .expect("a valid query is answered");

    // The same containment filter and grouping, here.
    let mut want: BTreeMap<Option<String>, BTreeMap<i64, (u64, f64)>> = BTreeMap::new();
    for b in &bins {
        if !filter.iter().all(|f| b.tags.contains(f)) {
            continue;
        }
        let group = group_by
            .as_ref()
            .and_then(|g| b.tags.iter().find(|(k, _)| k == g).map(|(_, v)| v.clone()));
        let e = want
            .entry(group)
            .or_default()
            .entry(b.start_ms)
            .or_default();
        e.0 += b.count;
        e.1 += b.sum;
    }
    let got: BTreeMap<Option<String>, BTreeMap<i64, (u64, f64)>> = got
        .into_iter()
        .map(|s| {
            let bins = s
                .bins
                .iter()
                .map(|b| (b.start_ms, (b.count, b.sum)))
                .collect();
            (s.group, bins)
        })
        .filter(|(_, b): &(_, BTreeMap<_, _>)| !b.is_empty())
        .collect();
    assert_eq!(got, want, "filter {filter:?}, group_by {group_by:?}");
}

/// Any bytes as a stored sketch: refused, or merged into a sketch whose
/// quantiles are monotone and between the bin's min and max.
pub fn sketch_bytes(data: &[u8]) {
    let (bounds, bytes) = data.split_at(data.len().min(16));
    let mut b = [0u8; 16];
    b[..bounds.len()].copy_from_slice(bounds);
    let x = f64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let y = f64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    if !x.is_finite() || !y.is_finite() {
        return;
    }
    let (min, max) = (x.min(y), x.max(y));
    let mut s = QuantileSketch::windowed();
    if !s.merge_bin(bytes, min, max) {
        assert_eq!(s.count(), 0, "a refused bin adds nothing");
        return;
    }
    assert!(s.count() > 0, "a merged bin holds samples");
    let mut last = f64::NEG_INFINITY;
    for q in [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0] {
        let v = s.quantile(q).expect("a merged sketch answers");
        assert!(
            (min..=max).contains(&v),
            "q{q} = {v} outside [{min}, {max}]"
        );
        assert!(v >= last, "q{q} = {v} below {last}");
        last = v;
    }
    // What it encodes merges back to the same count.
    let mut out = Vec::new();
    assert!(s.encode_bin(&mut out), "a windowed sketch encodes");
    let mut again = QuantileSketch::windowed();
    assert!(again.merge_bin(&out, min, max), "its own encoding merges");
    assert_eq!(again.count(), s.count());
}
