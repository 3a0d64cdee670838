//! Partial rows for bins still open: written between flushes so that a
//! process killed without warning loses only what it recorded since its
//! last write, and replaced (deleted and written again, in one
//! transaction) at every later write, the final time once the bin sealed.
//!
//! Only rows of this store's instance and run are ever replaced, so
//! other instances sharing a PostgreSQL database and earlier runs of this
//! one (a crashed run's last partial rows included) are never touched.

use metrics_memory::SealedOutcomes;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
use sqlx::QueryBuilder;
#[cfg(feature = "sqlite")]
use sqlx::Sqlite;

use super::{COLUMNS, Db, ROWS_PER_INSERT, RowData, Store, StoredBin, TxConn, outcomes};
use crate::StoreError;

/// This run's partial rows a write replaces: those an earlier write left
/// for bins that were open then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRows {
    /// Their ring: the finest bin width, ms.
    pub ring_ms: i64,
    /// The earliest start among them, ms: this run's rows of that ring
    /// (bins and outcomes) starting at or after it are replaced.
    pub from_ms: i64,
}

/// What a replacing write ([`Store::write_replacing`]) committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replaced {
    /// Rows inserted (bins and outcomes).
    pub inserted: u64,
    /// Partial rows of earlier writes deleted.
    pub deleted: u64,
}

/// The partial rows' deletes, bins then outcomes: instance, run, ring,
/// earliest start.
#[cfg(feature = "sqlite")]
const DELETE_SQLITE: [&str; 2] = [
    "DELETE FROM bins WHERE instance = ? AND run = ? AND ring_ms = ? AND start_ms >= ?",
    "DELETE FROM outcomes WHERE instance = ? AND run = ? AND ring_ms = ? AND start_ms >= ?",
];
/// The partial rows' deletes, for PostgreSQL.
#[cfg(feature = "postgres")]
const DELETE_POSTGRES: [&str; 2] = [
    "DELETE FROM bins WHERE instance = $1 AND run = $2 AND ring_ms = $3 AND start_ms >= $4",
    "DELETE FROM outcomes WHERE instance = $1 AND run = $2 AND ring_ms = $3 AND start_ms >= $4",
];

impl Store {
    /// Deletes this run's rows `replace` names, then writes `bins` and
    /// `outcomes` (sealed ones and the open bins' state so far alike), in
    /// one transaction: all or none. A failed write changes nothing, so
    /// it is retried with the same `replace` and never counts a bin
    /// twice.
    pub async fn write_replacing(
        &self,
        bins: &[StoredBin],
        outcomes: &[SealedOutcomes],
        replace: Option<OpenRows>,
    ) -> Result<Replaced, StoreError> {
        let Some(open) = replace else {
            let inserted = self.write_batch(bins, outcomes).await?;
            return Ok(Replaced {
                inserted,
                deleted: 0,
            });
        };
        let orows = outcomes::outcome_rows(self, outcomes);
        let rows = self.bin_rows(bins);
        // As `write_batch`: any failure closes the connection (TxConn).
        let done = match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite { write, .. } => {
                let mut conn = TxConn::acquire(write).await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let mut deleted = 0;
                for sql in DELETE_SQLITE {
                    deleted += sqlx::query(sql)
                        .bind(&self.instance)
                        .bind(&self.run)
                        .bind(open.ring_ms)
                        .bind(open.from_ms)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let n = insert_rows!(Sqlite, tx, &rows, "");
                let n = n + outcomes::insert_sqlite(&mut tx, &orows).await?;
                tx.commit().await?;
                conn.release();
                Replaced {
                    inserted: n,
                    deleted,
                }
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(p) => {
                let mut conn = TxConn::acquire(p).await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let mut deleted = 0;
                for sql in DELETE_POSTGRES {
                    deleted += sqlx::query(sql)
                        .bind(&self.instance)
                        .bind(&self.run)
                        .bind(open.ring_ms)
                        .bind(open.from_ms)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let n = insert_rows!(Postgres, tx, &rows, "::jsonb");
                let n = n + outcomes::insert_postgres(&mut tx, &orows).await?;
                tx.commit().await?;
                conn.release();
                Replaced {
                    inserted: n,
                    deleted,
                }
            }
        };
        Ok(done)
    }
}
