//! Durable history for the metrics facade: the memory backend's sealed bins
//! (count, sum, min, max and the quantile sketch of every series' bins) in
//! an embedded SQLite database by default, or in PostgreSQL shared by a
//! fleet of instances.
//!
//! ```
//! use metrics_store::{HistoryQuery, Store, StoreUrl, StoredBin};
//! use metrics_protocol::MetricType;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("metrics-store-doc-{}", std::process::id()));
//! let url: StoreUrl = format!("sqlite://{}/history.sqlite", dir.display()).parse().unwrap();
//! let store = Store::open(&url, "host-a").await.unwrap();
//! let bin = |start_ms, sum| StoredBin {
//!     name: "http.requests".into(),
//!     tags: vec![("route".into(), "/api".into()), ("code".into(), "200".into())],
//!     kind: MetricType::Counter,
//!     start_ms,
//!     width_ms: 10_000,
//!     count: 1,
//!     sum,
//!     min: sum,
//!     max: sum,
//!     sketch: None,
//! };
//! store.write(&[bin(0, 2.0), bin(10_000, 3.0)]).await.unwrap();
//!
//! // Tag containment is a database query; steps merge the bins in them.
//! let q = HistoryQuery {
//!     name: "http.requests".into(),
//!     tags: vec![("code".into(), "200".into())],
//!     start_ms: 0,
//!     end_ms: 60_000,
//!     step_ms: 60_000,
//!     ..HistoryQuery::default()
//! };
//! let series = store.query(&q).await.unwrap();
//! assert_eq!(series[0].bins[0].sum, 5.0);
//! # store.close().await;
//! # std::fs::remove_dir_all(&dir).ok();
//! # });
//! ```
//!
//! # How it fits
//!
//! - [`Store`]: one code path (sqlx) over SQLite and PostgreSQL, schema
//!   versioned by embedded migrations per dialect (a store written by an
//!   older version is migrated when opened). Each statement is written
//!   once, built with sqlx's `QueryBuilder` (which writes each driver's
//!   placeholders) and compiled for each driver; what differs between the
//!   dialects (the tags column's type, tag containment) is in one place. One `bins` table: instance,
//!   run (of that instance), name, tags (JSON text on SQLite, JSONB on
//!   PostgreSQL), kind, ring (bin width), bin start, count, sum, min, max
//!   and the bin's sketch. A bin written at shutdown and the rest of it
//!   after a restart are two rows, merged by queries. A bin still open is
//!   written as it is so far (partial rows) and replaced at every later
//!   write of that run, the last time sealed
//!   ([`Store::write_replacing`]: the partial rows deleted and the new
//!   ones written in one transaction, only that instance's and run's), so
//!   other instances and earlier runs are never touched and a bin is
//!   never counted twice.
//!   Tag containment runs in the database (`@>` on PostgreSQL, `json_each`
//!   on SQLite); steps, groups and sketches merge in Rust.
//!   A write succeeds only once the database committed it. A connection
//!   on which anything inside a transaction failed (a full disk, a lost
//!   server, a timeout) is closed, never used again, so no later write can
//!   be reported done inside a transaction the database never commits. On
//!   SQLite every write (flushes, retention) goes through one connection
//!   of its own and reads through others: this process's writes never
//!   wait on one another for SQLite's write lock. sqlx runs a thread per
//!   open SQLite connection; reading connections close after two idle
//!   seconds, so an idle store holds one connection (the writer's) and
//!   one such thread.
//!   Schema version 2 adds an `outcomes` table: successes and failures
//!   by error type per operation and bin (one row per non-zero count),
//!   written in the same transaction as the bins, summed by
//!   [`Store::outcomes`] and under the same retention.
//! - [`HistoryWriter`]: a task on the application's tokio runtime (no
//!   thread or runtime of its own) that moves sealed bins, and
//!   the open bins' state so far, from the memory backend to the store,
//!   one transaction per flush (every 2 s: a process killed without
//!   warning loses at most what it recorded since the last one), bounded
//!   while the database is down (drops counted in [`WriterStatus`]),
//!   retrying, checking between flushes that the database answers (its
//!   status turns unhealthy while a wait on the database lasts longer than
//!   a short bound), and applying retention per ring ([`StoreRing`]: bins
//!   older than a ring's `keep` merge into the next ring's wider bins,
//!   sketches included; the last ring's are deleted).
//! - A SQLite file that is not a database is reported by path
//!   ([`StoreError::Corrupt`]) and never overwritten.
//!
//! # Cost of a flush
//!
//! For N series recording in every 10 s bin, one transaction every 2 s:
//! two `DELETE`s (the previous flush's partial rows, by an index on ring
//! and bin start), an `INSERT` per 500 rows of bins and of outcomes: about
//! 3 statements, N/2 rows written and as many deleted per second, where
//! writing sealed bins alone wrote N/10 (each bin is written five or six
//! times instead of once; outcome rows likewise per operation). A flush in
//! which no open bin changed and none sealed writes nothing.
//!
//! # Limits
//!
//! - Only the finest bins (10 s by default) carry sketches; a bin collected
//!   after it cascaded into a coarser ring of the memory backend is stored
//!   without one. The memory backend holds the finest bins the writer has
//!   not had yet for one more span of its finest ring, so that takes a
//!   writer stalled for over 10 minutes with the default windows (a wall
//!   clock stepping forward, however far, does not).
//! - A write whose commit succeeded but was reported as failed (a
//!   connection lost at that instant) is written again on retry: counted
//!   twice.
//! - A panic in the writer restarts it from the present: the bins sealed
//!   since its last collection are not written (logged), and the partial
//!   rows of the bins open then are deleted by the next flush.
//! - Outcomes are stored per operation and bin, not per tag set (the memory
//!   backend's outcome rings hold no tags); all-time success answers
//!   reach back as far as retention keeps rows.

#![deny(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("metrics-store needs a database driver: enable its `sqlite` or `postgres` feature");

mod store;
mod url;
mod writer;

use std::path::PathBuf;

pub use store::{
    HistoryBin, HistoryGroup, HistoryQuery, OpenRows, OutcomeQuery, OutcomeTotals, Replaced, Store,
    StoreRing, StoredBin,
};
pub use url::{SQLITE_FILE, StoreUrl};
pub use writer::{HistoryWriter, WriterConfig, WriterStatus};

/// What can go wrong with a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL does not parse.
    #[error("invalid store URL `{url}`: {reason}")]
    Url {
        /// The URL (password hidden).
        url: String,
        /// Why.
        reason: String,
    },
    /// The store is `off`.
    #[error("the store is off")]
    Off,
    /// The SQLite file is not a database or is corrupt; it is left as is.
    #[error("corrupt history database {}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// A file or directory of the store cannot be used.
    #[error("history store {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The database refused or failed.
    #[error("history database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("history schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query that cannot be answered.
    #[error("history query: {0}")]
    Query(String),
    /// The database did not answer in time.
    #[error("history database not answering: no answer within {after:?} ({what})")]
    Timeout {
        /// What was asked (`writing 80 bins`, `checking the connection`).
        what: String,
        /// How long it was given.
        after: std::time::Duration,
    },
}
