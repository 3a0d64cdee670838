//! Retention: bins older than a ring keeps merged into the next ring's
//! wider bins (sketches included), the last ring's deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_memory::QuantileSketch;
use sqlx::QueryBuilder;

use super::{COLUMNS_READ, HistoryBin, RowData, Store, TxConn, row_data};
use crate::StoreError;

/// One ring of stored history: bins `bin` wide kept for `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRing {
    /// Bin width.
    pub bin: Duration,
    /// How long bins of this ring are kept before they are merged into the
    /// next ring (or, for the last ring, deleted).
    pub keep: Duration,
}

impl StoreRing {
    /// The defaults: 10 s bins for 6 hours, 5 min bins for 7 days, 1 h bins
    /// for 90 days.
    pub fn defaults() -> Vec<StoreRing> {
        const H: u64 = 3600;
        vec![
            StoreRing {
                bin: Duration::from_secs(10),
                keep: Duration::from_secs(6 * H),
            },
            StoreRing {
                bin: Duration::from_secs(300),
                keep: Duration::from_secs(7 * 24 * H),
            },
            StoreRing {
                bin: Duration::from_secs(H),
                keep: Duration::from_secs(90 * 24 * H),
            },
        ]
    }
}

impl Store {
    /// Applies retention `rings` at `now_ms`, in one transaction per ring:
    /// bins finer than ring `i` (`i > 0`) that are older than ring `i - 1`'s
    /// `keep` (aligned down to ring `i`'s bin) are merged into ring `i`'s
    /// bins, sketches included; bins older than the last ring's `keep` are
    /// deleted. Outcome rows alike. Returns (rows merged away, rows
    /// deleted).
    pub async fn apply_retention(
        &self,
        rings: &[StoreRing],
        now_ms: i64,
    ) -> Result<(u64, u64), StoreError> {
        let mut merged = 0;
        for pair in rings.windows(2) {
            let (fine, coarse) = (pair[0], pair[1]);
            let coarse_ms = (coarse.bin.as_millis() as i64).max(1);
            let cutoff = (now_ms - fine.keep.as_millis() as i64).div_euclid(coarse_ms) * coarse_ms;
            merged += self.compact(coarse_ms, cutoff).await?;
            merged += self.compact_outcomes(coarse_ms, cutoff).await?;
        }
        let mut deleted = 0;
        if let Some(last) = rings.last() {
            let cutoff = now_ms - last.keep.as_millis() as i64;
            for table in ["bins", "outcomes"] {
                deleted += on_pool!(self, write, |pool| {
                    let mut b = QueryBuilder::new(format!("DELETE FROM {table} WHERE start_ms < "));
                    b.push_bind(cutoff);
                    b.build().execute(pool).await?.rows_affected()
                });
            }
        }
        Ok((merged, deleted))
    }

    /// Merges every row finer than `coarse_ms` starting before `cutoff`
    /// into rows `coarse_ms` wide, in one transaction.
    async fn compact(&self, coarse_ms: i64, cutoff: i64) -> Result<u64, StoreError> {
        // Any failure closes the connection (TxConn); a pass that finds
        // nothing to merge, or rows that arrived between the select and the
        // delete (the next pass takes them all), rolls back.
        on_pool!(self, write, |pool| {
            let mut conn = TxConn::acquire(pool).await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let mut select =
                QueryBuilder::new(format!("SELECT {COLUMNS_READ} FROM bins WHERE ring_ms < "));
            select
                .push_bind(coarse_ms)
                .push(" AND start_ms < ")
                .push_bind(cutoff);
            let rows = select
                .build()
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(row_data)
                .collect::<Result<Vec<_>, _>>()?;
            let n = rows.len() as u64;
            let gone = if n == 0 {
                0
            } else {
                let mut del = QueryBuilder::new("DELETE FROM bins WHERE ring_ms < ");
                del.push_bind(coarse_ms)
                    .push(" AND start_ms < ")
                    .push_bind(cutoff);
                del.build().execute(&mut *tx).await?.rows_affected()
            };
            if n == 0 || gone != n {
                tx.rollback().await?;
                conn.release();
                return Ok(0);
            }
            insert_bins!(tx, merge_rows(rows, coarse_ms));
            tx.commit().await?;
            conn.release();
            Ok(n)
        })
    }
}

/// Rows merged per (instance, run, name, tags, kind, coarse bin).
fn merge_rows(rows: Vec<RowData>, coarse_ms: i64) -> Vec<RowData> {
    type Key = (String, String, String, String, String, i64);
    let mut acc: BTreeMap<Key, (HistoryBin, bool)> = BTreeMap::new();
    for r in rows {
        let start = r.start_ms.div_euclid(coarse_ms) * coarse_ms;
        let (bin, has_sketch) = acc
            .entry((r.instance, r.run, r.name, r.tags, r.kind, start))
            .or_insert_with(|| (HistoryBin::new(start), false));
        bin.add(u64::try_from(r.count).unwrap_or(0), r.sum, r.min, r.max);
        if let Some(s) = &r.sketch {
            *has_sketch = true;
            let qs = bin.quantiles.get_or_insert_with(QuantileSketch::windowed);
            if !qs.merge_bin(s, r.min, r.max) {
                tracing::warn!(
                    start_ms = r.start_ms,
                    "stored sketch does not decode; dropped in compaction"
                );
            }
        }
    }
    acc.into_iter()
        .map(
            |((instance, run, name, tags, kind, start_ms), (b, has_sketch))| {
                let sketch = b.quantiles.as_ref().filter(|_| has_sketch).and_then(|q| {
                    let mut out = Vec::new();
                    q.encode_bin(&mut out).then_some(out)
                });
                RowData {
                    instance,
                    run,
                    name,
                    tags,
                    kind,
                    ring_ms: coarse_ms,
                    start_ms,
                    count: i64::try_from(b.count).unwrap_or(i64::MAX),
                    sum: b.sum,
                    min: b.min,
                    max: b.max,
                    sketch,
                }
            },
        )
        .collect()
}
