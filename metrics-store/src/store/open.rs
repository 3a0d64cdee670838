//! Partial rows for bins still open: written between flushes so that a
//! process killed without warning loses only what it recorded since its
//! last write, and replaced (deleted and written again, in one
//! transaction) at every later write, the final time once the bin sealed.
//!
//! Only rows of this store's instance and run are ever replaced, so
//! other instances sharing a PostgreSQL database and earlier runs of this
//! one (a crashed run's last partial rows included) are never touched.

use metrics_memory::SealedOutcomes;
use sqlx::QueryBuilder;

use super::{Store, StoredBin, TxConn, outcomes};
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
        if bins.is_empty() && outcomes.is_empty() && replace.is_none() {
            return Ok(Replaced::default());
        }
        let orows = outcomes::outcome_rows(self, outcomes);
        let rows = self.bin_rows(bins);
        // Any failure closes the connection (TxConn): the rows count as
        // written only once COMMIT succeeded.
        on_pool!(self, write, |pool| {
            let mut conn = TxConn::acquire(pool).await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let mut deleted = 0;
            if let Some(open) = replace {
                for table in ["bins", "outcomes"] {
                    let mut b = QueryBuilder::new(format!("DELETE FROM {table} WHERE instance = "));
                    b.push_bind(self.instance.clone())
                        .push(" AND run = ")
                        .push_bind(self.run.clone())
                        .push(" AND ring_ms = ")
                        .push_bind(open.ring_ms)
                        .push(" AND start_ms >= ")
                        .push_bind(open.from_ms);
                    deleted += b.build().execute(&mut *tx).await?.rows_affected();
                }
            }
            let inserted = insert_bins!(tx, rows) + outcomes::insert_outcomes!(tx, orows);
            tx.commit().await?;
            conn.release();
            Ok(Replaced { inserted, deleted })
        })
    }
}
