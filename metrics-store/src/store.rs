//! [`Store`]: one code path over SQLite and PostgreSQL.

use std::collections::BTreeMap;
#[cfg(feature = "sqlite")]
use std::path::Path;
#[cfg(feature = "postgres")]
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_core::future::BoxFuture;
use metrics_memory::{SealedBin, SealedOutcomes};
use metrics_protocol::MetricType;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::Sqlite;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row, Transaction};

use crate::StoreError;
use crate::url::StoreUrl;
#[cfg(feature = "postgres")]
use crate::url::redact;

/// Rows per `INSERT` statement (12 parameters each: within SQLite's and
/// PostgreSQL's parameter limits).
const ROWS_PER_INSERT: usize = 500;

/// A bin to persist: a [`SealedBin`] of the memory backend, or one made by
/// hand.
pub type StoredBin = SealedBin;

#[derive(Debug, Clone)]
enum Db {
    /// Reads on `read`; every write (flushes, retention) on `write`'s one
    /// connection, so this process's writes never wait on one another for
    /// SQLite's write lock.
    #[cfg(feature = "sqlite")]
    Sqlite { read: SqlitePool, write: SqlitePool },
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// A history database, SQLite or PostgreSQL, opened and migrated.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    instance: String,
    run: String,
    url: String,
    /// The SQLite page cap set by [`Store::set_sqlite_page_limit`]
    /// ([`NO_PAGE_LIMIT`] when never set).
    page_limit: Arc<AtomicU64>,
}

/// How long a SQLite reading connection stays open unused (sqlx closes it
/// between one and two of these after its last use): queries in a burst
/// share it; an idle store keeps only its writing connection.
#[cfg(feature = "sqlite")]
const READ_IDLE: Duration = Duration::from_secs(2);

/// The schema version: the newest migration applied.
const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";

/// [`Store::page_limit`] when no cap was ever set.
const NO_PAGE_LIMIT: u64 = u64::MAX;
/// SQLite's own largest `max_page_count`: what lifting a cap restores.
const SQLITE_MAX_PAGES: u64 = 4_294_967_294;

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(*v, (*d).into(), MigrationType::Simple, (*sql).into(), false)
                })
                .collect())
        })
    }
}

/// The schema versions in order, 1 the bins and 2 the outcomes, each
/// dialect's SQL from its own directory of `migrations/`.
macro_rules! migrations {
    ($dialect:literal) => {
        &[
            (
                1,
                "bins",
                include_str!(concat!("../migrations/", $dialect, "/0001_bins.sql")),
            ),
            (
                2,
                "outcomes",
                include_str!(concat!("../migrations/", $dialect, "/0002_outcomes.sql")),
            ),
        ]
    };
}
/// The schema versions of a SQLite store.
#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = migrations!("sqlite");
/// The schema versions of a PostgreSQL store.
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = migrations!("postgres");

/// The header every SQLite database file starts with.
#[cfg(feature = "sqlite")]
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

#[cfg(feature = "sqlite")]
fn check_sqlite_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    let mut head = Vec::with_capacity(16);
    f.by_ref()
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Io {
            path: path.to_owned(),
            source: e,
        })?;
    if head.is_empty() || head == SQLITE_HEADER {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: "not an SQLite database (left untouched)".into(),
        })
    }
}

/// Sets `PRAGMA max_page_count` on `conn` to the cap in `limit`, if one
/// was ever set.
#[cfg(feature = "sqlite")]
async fn apply_page_limit(
    conn: &mut sqlx::SqliteConnection,
    limit: &AtomicU64,
) -> Result<(), sqlx::Error> {
    let n = limit.load(Ordering::Acquire);
    if n != NO_PAGE_LIMIT {
        sqlx::query(&format!("PRAGMA max_page_count = {n}"))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Maps SQLite's "corrupt" and "not a database" errors to
/// [`StoreError::Corrupt`] naming the file.
#[cfg(feature = "sqlite")]
fn sqlite_err(path: &Path, e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && matches!(d.code().as_deref(), Some("11" | "26"))
    {
        return StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("{d} (left untouched)"),
        };
    }
    StoreError::Database(e)
}

fn tags_json(tags: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn kind_name(k: MetricType) -> &'static str {
    match k {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::Timer => "timer",
        MetricType::Rate => "rate",
    }
}

fn kind_from_name(k: &str) -> Option<MetricType> {
    [
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::Timer,
        MetricType::Rate,
    ]
    .into_iter()
    .find(|t| kind_name(*t) == k)
}

/// Appends to a query builder `b` the filters the bins' and the outcomes'
/// queries share: `q.skip_run_since` (leave out a run's rows from a time
/// on) and `q.instances` (only these instances; the caller answers an
/// empty list itself).
macro_rules! push_scope {
    ($b:ident, $q:ident) => {
        if let Some((run, since)) = &$q.skip_run_since {
            $b.push(" AND NOT (run = ")
                .push_bind(run.clone())
                .push(" AND start_ms >= ")
                .push_bind(*since)
                .push(")");
        }
        if let Some(inst) = &$q.instances {
            $b.push(" AND instance IN (");
            let mut sep = $b.separated(", ");
            for i in inst {
                sep.push_bind(i.clone());
            }
            $b.push(")");
        }
    };
}

/// What differs between the SQL of the two drivers, in one place. Every
/// statement is otherwise written once: built with [`QueryBuilder`], whose
/// `push_bind` writes each driver's placeholder (`?`, `$1`), and run on
/// the store's pool by `on_pool!`, which compiles it for each driver.
trait Dialect: sqlx::Database {
    /// What makes a bound JSON text the `tags` column's type.
    const TAGS_CAST: &'static str;

    /// Appends to a `WHERE` clause on `bins`: the row's tags include every
    /// one of `tags`.
    fn push_tags_filter(b: &mut QueryBuilder<'_, Self>, tags: &[(String, String)]);
}

#[cfg(feature = "sqlite")]
impl Dialect for Sqlite {
    /// Tags are JSON text.
    const TAGS_CAST: &'static str = "";

    fn push_tags_filter(b: &mut QueryBuilder<'_, Self>, tags: &[(String, String)]) {
        for (k, v) in tags {
            b.push(" AND EXISTS (SELECT 1 FROM json_each(bins.tags) j WHERE j.key = ")
                .push_bind(k.clone())
                .push(" AND j.value = ")
                .push_bind(v.clone())
                .push(")");
        }
    }
}

#[cfg(feature = "postgres")]
impl Dialect for Postgres {
    /// Tags are JSONB.
    const TAGS_CAST: &'static str = "::jsonb";

    fn push_tags_filter(b: &mut QueryBuilder<'_, Self>, tags: &[(String, String)]) {
        if !tags.is_empty() {
            b.push(" AND tags @> ")
                .push_bind(tags_json(tags))
                .push(Self::TAGS_CAST);
        }
    }
}

/// Evaluates `$body` with `$pool` the store's pool for reading (`read`)
/// or for writing (`write`: on SQLite, its one writing connection): the
/// body is written once and compiled for each driver.
macro_rules! on_pool {
    ($store:expr, read, |$pool:ident| $body:expr) => {
        match &$store.db {
            #[cfg(feature = "sqlite")]
            $crate::store::Db::Sqlite { read: $pool, .. } => $body,
            #[cfg(feature = "postgres")]
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
    ($store:expr, write, |$pool:ident| $body:expr) => {
        match &$store.db {
            #[cfg(feature = "sqlite")]
            $crate::store::Db::Sqlite { write: $pool, .. } => $body,
            #[cfg(feature = "postgres")]
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Inserts `$rows` (a slice of [`RowData`]) into `bins` in the
/// transaction `$tx`, in statements of at most [`ROWS_PER_INSERT`] rows;
/// evaluates to the rows written.
macro_rules! insert_bins {
    ($tx:ident, $rows:expr) => {{
        let cast = $crate::store::tags_cast(&$tx);
        let mut written = 0u64;
        for chunk in $rows.chunks($crate::store::ROWS_PER_INSERT) {
            let mut q =
                QueryBuilder::new(format!("INSERT INTO bins ({}) ", $crate::store::COLUMNS));
            q.push_values(chunk, |mut r, m: &$crate::store::RowData| {
                r.push_bind(m.instance.clone())
                    .push_bind(m.run.clone())
                    .push_bind(m.name.clone())
                    .push_bind(m.tags.clone())
                    .push_unseparated(cast)
                    .push_bind(m.kind.clone())
                    .push_bind(m.ring_ms)
                    .push_bind(m.start_ms)
                    .push_bind(m.count)
                    .push_bind(m.sum)
                    .push_bind(m.min)
                    .push_bind(m.max)
                    .push_bind(m.sketch.clone());
            });
            written += q.build().execute(&mut *$tx).await?.rows_affected();
        }
        written
    }};
}

/// What follows a bound tags JSON text in a transaction of `DB`.
fn tags_cast<DB: Dialect>(_: &Transaction<'_, DB>) -> &'static str {
    DB::TAGS_CAST
}

/// One row as read back.
struct RowData {
    instance: String,
    run: String,
    name: String,
    tags: String,
    kind: String,
    ring_ms: i64,
    start_ms: i64,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    sketch: Option<Vec<u8>>,
}

fn row_data<R: Row>(r: &R) -> Result<RowData, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<Vec<u8>>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RowData {
        instance: r.try_get(0)?,
        run: r.try_get(1)?,
        name: r.try_get(2)?,
        tags: r.try_get(3)?,
        kind: r.try_get(4)?,
        ring_ms: r.try_get(5)?,
        start_ms: r.try_get(6)?,
        count: r.try_get(7)?,
        sum: r.try_get(8)?,
        min: r.try_get(9)?,
        max: r.try_get(10)?,
        sketch: r.try_get(11)?,
    })
}

const COLUMNS: &str =
    "instance, run, name, tags, kind, ring_ms, start_ms, count, sum, min, max, sketch";

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema
    /// up to date; rows written through it carry `instance`.
    ///
    /// A SQLite file that is not a database, or is corrupt, is reported by
    /// path ([`StoreError::Corrupt`]) and never written to. A PostgreSQL
    /// server refusing connections is [`StoreError::Database`] (a caller
    /// retries: see [`HistoryWriter`](crate::HistoryWriter)).
    pub async fn open(url: &StoreUrl, instance: &str) -> Result<Store, StoreError> {
        let page_limit = Arc::new(AtomicU64::new(NO_PAGE_LIMIT));
        let db = match url {
            StoreUrl::Off => return Err(StoreError::Off),
            #[cfg(feature = "sqlite")]
            StoreUrl::Sqlite(path) => Self::open_sqlite(path, &page_limit).await?,
            #[cfg(not(feature = "sqlite"))]
            StoreUrl::Sqlite(path) => {
                return Err(crate::url::not_compiled_in(
                    &path.display().to_string(),
                    "SQLite",
                    "sqlite",
                ));
            }
            #[cfg(not(feature = "postgres"))]
            StoreUrl::Postgres(u) => {
                return Err(crate::url::not_compiled_in(u, "PostgreSQL", "postgres"));
            }
            #[cfg(feature = "postgres")]
            StoreUrl::Postgres(u) => {
                let opts = PgConnectOptions::from_str(u).map_err(|e| StoreError::Url {
                    url: redact(u),
                    reason: e.to_string(),
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(opts)
                    .await?;
                Migrator::new(Embedded(POSTGRES_MIGRATIONS))
                    .await?
                    .run(&pool)
                    .await?;
                Db::Postgres(pool)
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Store {
            db,
            instance: instance.to_owned(),
            run: format!("{}-{nanos:x}", std::process::id()),
            url: url.to_string(),
            page_limit,
        })
    }

    /// Caps a SQLite store's file at `pages` database pages (`None` lifts
    /// the cap), from the next statement on: a write that needs more fails
    /// as on a full disk (`database or disk is full`) and nothing of it is
    /// kept. For bounding the disk a store may take, and for testing what
    /// a full disk does. No effect on PostgreSQL.
    pub fn set_sqlite_page_limit(&self, pages: Option<u64>) {
        let n = pages.map_or(SQLITE_MAX_PAGES, |p| p.clamp(1, SQLITE_MAX_PAGES));
        self.page_limit.store(n, Ordering::Release);
    }

    #[cfg(feature = "sqlite")]
    async fn open_sqlite(path: &Path, page_limit: &Arc<AtomicU64>) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.to_owned(),
                source: e,
            })?;
        }
        check_sqlite_file(path)?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // Every connection applies the page cap (if any) when made and
        // whenever it is taken from its pool.
        let pool_options = |connections: u32, idle: Option<Duration>| {
            let (on_connect, on_acquire) = (page_limit.clone(), page_limit.clone());
            SqlitePoolOptions::new()
                .max_connections(connections)
                .min_connections(0)
                .idle_timeout(idle)
                .after_connect(move |conn, _| {
                    let limit = on_connect.clone();
                    Box::pin(async move { apply_page_limit(conn, &limit).await })
                })
                .before_acquire(move |conn, _| {
                    let limit = on_acquire.clone();
                    Box::pin(async move {
                        apply_page_limit(conn, &limit).await?;
                        Ok(true)
                    })
                })
        };
        // sqlx runs a thread per open SQLite connection. Reads (queries,
        // and the checks and migrations below) open connections as needed
        // and close them once idle for READ_IDLE; the writer's one
        // connection (flushes, retention, pings) stays open: at steady
        // state, one connection and one thread.
        let pool = pool_options(4, Some(READ_IDLE))
            .connect_with(opts.clone())
            .await
            .map_err(|e| sqlite_err(path, e))?;
        let check: Result<String, _> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&pool)
            .await;
        match check {
            Ok(s) if s == "ok" => {}
            Ok(s) => {
                pool.close().await;
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    reason: format!("integrity check: {s} (left untouched)"),
                });
            }
            Err(e) => {
                pool.close().await;
                return Err(sqlite_err(path, e));
            }
        }
        let migrator = Migrator::new(Embedded(SQLITE_MIGRATIONS)).await?;
        migrator.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => sqlite_err(path, e),
            e => StoreError::Migrate(e),
        })?;
        let write = pool_options(1, None).connect_lazy_with(opts);
        Ok(Db::Sqlite { read: pool, write })
    }

    /// The instance rows written through this store carry.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// This run's id, written in every row beside the instance (by
    /// default the process id and the time the store was opened).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Writes the following rows under run `run` (a writer keeps one id
    /// across reconnections).
    pub fn set_run(&mut self, run: impl Into<String>) {
        self.run = run.into();
    }

    /// The store's URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a PostgreSQL store.
    pub fn is_postgres(&self) -> bool {
        #[cfg(feature = "postgres")]
        return matches!(self.db, Db::Postgres(_));
        #[cfg(not(feature = "postgres"))]
        false
    }

    /// The schema version (the newest migration applied).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, read, |p| sqlx::query_scalar(SCHEMA_VERSION)
            .fetch_one(p)
            .await?))
    }

    /// Asks the database a question that reads a table (the schema
    /// version): whether it answers at all, however long that takes (the
    /// caller bounds it).
    ///
    /// On SQLite it asks on the connection writes go through (the one a
    /// writer keeps open), so that pinging opens no reading connection.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: i64 = on_pool!(self, write, |p| sqlx::query_scalar(SCHEMA_VERSION)
            .fetch_one(p)
            .await?);
        Ok(())
    }

    /// Writes `bins` in one transaction: all or none. Returns the rows
    /// written.
    pub async fn write(&self, bins: &[StoredBin]) -> Result<u64, StoreError> {
        self.write_batch(bins, &[]).await
    }

    /// Writes `bins` and `outcomes` in one transaction: all or none.
    /// Returns the rows written (an outcome bin is one row per non-zero
    /// count: successes, and each error type's failures).
    pub async fn write_batch(
        &self,
        bins: &[StoredBin],
        outcomes: &[SealedOutcomes],
    ) -> Result<u64, StoreError> {
        Ok(self.write_replacing(bins, outcomes, None).await?.inserted)
    }

    /// `bins` as rows of this store's instance and run.
    fn bin_rows(&self, bins: &[StoredBin]) -> Vec<RowData> {
        bins.iter()
            .map(|b| RowData {
                instance: self.instance.clone(),
                run: self.run.clone(),
                name: b.name.clone(),
                tags: tags_json(&b.tags),
                kind: kind_name(b.kind).to_owned(),
                ring_ms: b.width_ms,
                start_ms: b.start_ms,
                count: i64::try_from(b.count).unwrap_or(i64::MAX),
                sum: b.sum,
                min: b.min,
                max: b.max,
                sketch: b.sketch.clone(),
            })
            .collect()
    }

    /// Number of rows per ring width (ms), for tests and diagnostics.
    pub async fn rows_per_ring(&self) -> Result<BTreeMap<i64, i64>, StoreError> {
        let sql = "SELECT ring_ms, COUNT(*) FROM bins GROUP BY ring_ms";
        let pairs: Vec<(i64, i64)> =
            on_pool!(self, read, |p| sqlx::query_as(sql).fetch_all(p).await?);
        Ok(pairs.into_iter().collect())
    }

    /// Closes the connections.
    pub async fn close(&self) {
        match &self.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite { read, write } => {
                write.close().await;
                read.close().await;
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// Columns as read: PostgreSQL's JSONB tags as text.
const COLUMNS_READ: &str = "instance, run, name, CAST(tags AS TEXT), kind, ring_ms, start_ms, count, sum, min, max, sketch";

mod open;
mod outcomes;
mod query;
mod retention;
mod tx;
pub use open::{OpenRows, Replaced};
pub use outcomes::{OutcomeQuery, OutcomeTotals};
pub use query::{HistoryBin, HistoryGroup, HistoryQuery};
pub use retention::StoreRing;
use tx::TxConn;
