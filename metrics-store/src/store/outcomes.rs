//! Outcomes in the store (schema version 2): successes and failures by
//! error type per operation and bin, written beside the bins, summed by
//! queries, compacted and deleted by retention like the bins.

use std::collections::BTreeMap;

use metrics_memory::SealedOutcomes;
use sqlx::QueryBuilder;

use super::{Store, TxConn};
use crate::StoreError;

/// One `outcomes` row: the successes (`error_type` `None`) or the failures
/// of one error type of one operation in one bin.
#[derive(Debug, Clone)]
pub(super) struct OutcomeRow {
    pub(super) instance: String,
    pub(super) run: String,
    pub(super) operation: String,
    pub(super) ring_ms: i64,
    pub(super) start_ms: i64,
    pub(super) error_type: Option<String>,
    pub(super) count: i64,
}

/// The rows of `outcomes` as written by `store` (one per non-zero count).
pub(super) fn outcome_rows(store: &Store, outcomes: &[SealedOutcomes]) -> Vec<OutcomeRow> {
    let mut rows = Vec::new();
    for o in outcomes {
        let kinds = std::iter::once((None, o.success))
            .chain(o.failures.iter().map(|(e, c)| (Some(e.clone()), *c)));
        for (error_type, count) in kinds.filter(|(_, c)| *c > 0) {
            rows.push(OutcomeRow {
                instance: store.instance.clone(),
                run: store.run.clone(),
                operation: o.operation.clone(),
                ring_ms: o.width_ms,
                start_ms: o.start_ms,
                error_type,
                count: i64::try_from(count).unwrap_or(i64::MAX),
            });
        }
    }
    rows
}

pub(super) const COLUMNS: &str = "instance, run, operation, ring_ms, start_ms, error_type, count";

/// Inserts `$rows` (a slice of [`OutcomeRow`]) into `outcomes` in the
/// transaction `$tx`, in statements of at most [`ROWS_PER_INSERT`] rows;
/// evaluates to the rows written.
macro_rules! insert_outcomes {
    ($tx:ident, $rows:expr) => {{
        let mut written = 0u64;
        for chunk in $rows.chunks($crate::store::ROWS_PER_INSERT) {
            let mut q = QueryBuilder::new(format!(
                "INSERT INTO outcomes ({}) ",
                $crate::store::outcomes::COLUMNS
            ));
            q.push_values(chunk, |mut r, m: &$crate::store::outcomes::OutcomeRow| {
                r.push_bind(m.instance.clone())
                    .push_bind(m.run.clone())
                    .push_bind(m.operation.clone())
                    .push_bind(m.ring_ms)
                    .push_bind(m.start_ms)
                    .push_bind(m.error_type.clone())
                    .push_bind(m.count);
            });
            written += q.build().execute(&mut *$tx).await?.rows_affected();
        }
        written
    }};
}
pub(super) use insert_outcomes;

/// Which outcomes to sum: one operation, a time range, instances.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutcomeQuery {
    /// The operation.
    pub operation: String,
    /// Only bins starting at or after this instant (ms; `None`: from the
    /// oldest kept).
    pub start_ms: Option<i64>,
    /// Only bins ending at or before this instant (ms; `None`: to the
    /// newest).
    pub end_ms: Option<i64>,
    /// Only rows of these instances (`None`: every instance).
    pub instances: Option<Vec<String>>,
    /// Leaves out the rows of this run starting at or after this instant
    /// (ms): what a running program answers from memory (as
    /// [`HistoryQuery::skip_run_since`](crate::HistoryQuery::skip_run_since)).
    pub skip_run_since: Option<(String, i64)>,
}

/// Outcomes summed over the rows of an [`OutcomeQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutcomeTotals {
    /// Successes.
    pub success: u64,
    /// Failures by error type.
    pub failures: BTreeMap<String, u64>,
}

impl OutcomeTotals {
    /// Successes and failures together.
    pub fn total(&self) -> u64 {
        self.success + self.failures.values().sum::<u64>()
    }
}

impl Store {
    /// Successes and failures by error type of `q.operation`, summed over
    /// the rows `q` selects (in the database).
    pub async fn outcomes(&self, q: &OutcomeQuery) -> Result<OutcomeTotals, StoreError> {
        if q.instances.as_ref().is_some_and(Vec::is_empty) {
            return Ok(OutcomeTotals::default());
        }
        let sums: Vec<(Option<String>, i64)> = on_pool!(self, read, |pool| {
            let mut b = QueryBuilder::new(
                "SELECT error_type, CAST(SUM(count) AS BIGINT) FROM outcomes WHERE operation = ",
            );
            b.push_bind(q.operation.clone());
            if let Some(start) = q.start_ms {
                b.push(" AND start_ms >= ").push_bind(start);
            }
            if let Some(end) = q.end_ms {
                b.push(" AND start_ms + ring_ms <= ").push_bind(end);
            }
            push_scope!(b, q);
            b.push(" GROUP BY error_type");
            b.build_query_as().fetch_all(pool).await?
        });
        let mut out = OutcomeTotals::default();
        for (error_type, n) in sums {
            let n = u64::try_from(n).unwrap_or(0);
            match error_type {
                None => out.success += n,
                Some(e) => *out.failures.entry(e).or_default() += n,
            }
        }
        Ok(out)
    }

    /// Merges every outcome row finer than `coarse_ms` starting before
    /// `cutoff` into rows `coarse_ms` wide, in one transaction (the rows
    /// taken are those deleted, so rows written meanwhile are never lost).
    /// Returns the rows merged away.
    pub(super) async fn compact_outcomes(
        &self,
        coarse_ms: i64,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        type Taken = (String, String, String, i64, Option<String>, i64);
        fn merge(taken: Vec<Taken>, coarse_ms: i64) -> Vec<OutcomeRow> {
            type Key = (String, String, String, i64, Option<String>);
            let mut acc: BTreeMap<Key, i64> = BTreeMap::new();
            for (instance, run, operation, start, error_type, count) in taken {
                let start = start.div_euclid(coarse_ms) * coarse_ms;
                let c = acc
                    .entry((instance, run, operation, start, error_type))
                    .or_default();
                *c = c.saturating_add(count);
            }
            acc.into_iter()
                .map(
                    |((instance, run, operation, start_ms, error_type), count)| OutcomeRow {
                        instance,
                        run,
                        operation,
                        ring_ms: coarse_ms,
                        start_ms,
                        error_type,
                        count,
                    },
                )
                .collect()
        }
        // Any failure closes the connection (TxConn).
        on_pool!(self, write, |pool| {
            let mut conn = TxConn::acquire(pool).await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let mut take = QueryBuilder::new("DELETE FROM outcomes WHERE ring_ms < ");
            take.push_bind(coarse_ms)
                .push(" AND start_ms < ")
                .push_bind(cutoff)
                .push(" RETURNING instance, run, operation, start_ms, error_type, count");
            let taken: Vec<Taken> = take.build_query_as().fetch_all(&mut *tx).await?;
            let n = taken.len() as u64;
            if n > 0 {
                insert_outcomes!(tx, merge(taken, coarse_ms));
            }
            tx.commit().await?;
            conn.release();
            Ok(n)
        })
    }
}
