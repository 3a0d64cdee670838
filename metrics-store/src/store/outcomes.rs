//! Outcomes in the store (schema version 2): successes and failures by
//! error type per operation and bin, written beside the bins, summed by
//! queries, compacted and deleted by retention like the bins.

use std::collections::BTreeMap;

use metrics_memory::SealedOutcomes;
use sqlx::QueryBuilder;
#[cfg(feature = "postgres")]
use sqlx::{PgConnection, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqliteConnection};

use super::{Db, ROWS_PER_INSERT, Store, TxConn};
use crate::StoreError;

/// One `outcomes` row: the successes (`error_type` `None`) or the failures
/// of one error type of one operation in one bin.
#[derive(Debug, Clone)]
pub(super) struct OutcomeRow {
    instance: String,
    run: String,
    operation: String,
    ring_ms: i64,
    start_ms: i64,
    error_type: Option<String>,
    count: i64,
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

const COLUMNS: &str = "instance, run, operation, ring_ms, start_ms, error_type, count";

macro_rules! insert_fn {
    ($name:ident, $db:ty, $conn:ty) => {
        /// Inserts `rows` on `conn` (a transaction), in statements of at
        /// most [`ROWS_PER_INSERT`] rows; returns the rows written.
        pub(super) async fn $name(
            conn: &mut $conn,
            rows: &[OutcomeRow],
        ) -> Result<u64, sqlx::Error> {
            let mut written = 0;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut q: QueryBuilder<$db> =
                    QueryBuilder::new(format!("INSERT INTO outcomes ({COLUMNS}) "));
                q.push_values(chunk, |mut r, m| {
                    r.push_bind(m.instance.clone())
                        .push_bind(m.run.clone())
                        .push_bind(m.operation.clone())
                        .push_bind(m.ring_ms)
                        .push_bind(m.start_ms)
                        .push_bind(m.error_type.clone())
                        .push_bind(m.count);
                });
                written += q.build().execute(&mut *conn).await?.rows_affected();
            }
            Ok(written)
        }
    };
}
#[cfg(feature = "sqlite")]
insert_fn!(insert_sqlite, Sqlite, SqliteConnection);
#[cfg(feature = "postgres")]
insert_fn!(insert_postgres, Postgres, PgConnection);

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
        macro_rules! build {
            ($db:ty) => {{
                let mut b: QueryBuilder<$db> = QueryBuilder::new(
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
                b
            }};
        }
        let sums: Vec<(Option<String>, i64)> = match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite { read, .. } => build!(Sqlite).build_query_as().fetch_all(read).await?,
            #[cfg(feature = "postgres")]
            Db::Postgres(p) => build!(Postgres).build_query_as().fetch_all(p).await?,
        };
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
        const TAKE_S: &str = "DELETE FROM outcomes WHERE ring_ms < ? AND start_ms < ? \
                              RETURNING instance, run, operation, start_ms, error_type, count";
        const TAKE_P: &str = "DELETE FROM outcomes WHERE ring_ms < $1 AND start_ms < $2 \
                              RETURNING instance, run, operation, start_ms, error_type, count";
        type Taken = (String, String, String, i64, Option<String>, i64);
        // Any failure closes the connection (TxConn).
        macro_rules! run {
            ($p:expr, $take:expr, $insert:ident) => {{
                let mut conn = TxConn::acquire($p).await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let taken: Vec<Taken> = sqlx::query_as($take)
                    .bind(coarse_ms)
                    .bind(cutoff)
                    .fetch_all(&mut *tx)
                    .await?;
                let n = taken.len() as u64;
                if n > 0 {
                    $insert(&mut tx, &merge(taken, coarse_ms)).await?;
                }
                tx.commit().await?;
                conn.release();
                Ok(n)
            }};
        }
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
        match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite { write, .. } => run!(write, TAKE_S, insert_sqlite),
            #[cfg(feature = "postgres")]
            Db::Postgres(p) => run!(p, TAKE_P, insert_postgres),
        }
    }

    /// Deletes the outcome rows starting before `cutoff`; returns how many.
    pub(super) async fn delete_outcomes_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        Ok(match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite { write, .. } => sqlx::query("DELETE FROM outcomes WHERE start_ms < ?")
                .bind(cutoff)
                .execute(write)
                .await?
                .rows_affected(),
            #[cfg(feature = "postgres")]
            Db::Postgres(p) => sqlx::query("DELETE FROM outcomes WHERE start_ms < $1")
                .bind(cutoff)
                .execute(p)
                .await?
                .rows_affected(),
        })
    }
}
