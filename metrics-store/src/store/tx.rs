//! [`TxConn`]: a pooled connection that holds one transaction and goes back
//! to its pool only when that transaction ended cleanly.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

/// A connection taken from a pool for one transaction.
///
/// Dropped without [`release`](Self::release) (an error inside the
/// transaction, or the future holding it cancelled by a timeout) it is
/// closed instead of returned to the pool: once a `BEGIN`, a statement, a
/// `COMMIT` or a `ROLLBACK` failed, what the connection believes about its
/// transaction may no longer be what the database holds. (SQLite rolls a
/// transaction back itself when a `COMMIT` or a one-row `INSERT` fails for
/// lack of room; sqlx still counts it open, so its next `BEGIN` is a
/// `SAVEPOINT` whose failure leaves a transaction open that no later
/// `COMMIT` on that connection ever ends: writes reported done, lost when
/// the connection closes, and the write lock held meanwhile.) Closing the
/// connection rolls back whatever it had open.
pub(super) struct TxConn<DB: Database> {
    conn: PoolConnection<DB>,
    clean: bool,
}

impl<DB: Database> TxConn<DB> {
    /// A connection of `pool`.
    pub(super) async fn acquire(pool: &Pool<DB>) -> Result<Self, sqlx::Error> {
        Ok(TxConn {
            conn: pool.acquire().await?,
            clean: false,
        })
    }

    /// Returns the connection to its pool: its transaction was committed
    /// or rolled back without error.
    pub(super) fn release(mut self) {
        self.clean = true;
    }
}

impl<DB: Database> Deref for TxConn<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> DerefMut for TxConn<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

impl<DB: Database> Drop for TxConn<DB> {
    fn drop(&mut self) {
        if !self.clean {
            tracing::debug!("history store connection closed after a failed transaction");
            self.conn.close_on_drop();
        }
    }
}
