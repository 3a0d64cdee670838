//! [`Store`]: one code path over SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_core::future::BoxFuture;
use metrics_memory::{QuantileSketch, SealedBin, SealedOutcomes};
use metrics_protocol::MetricType;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, QueryBuilder, Row, Sqlite};

use crate::StoreError;
use crate::url::{StoreUrl, redact};

/// Rows per `INSERT` statement (12 parameters each: within SQLite's and
/// PostgreSQL's parameter limits).
const ROWS_PER_INSERT: usize = 500;

/// A bin to persist: a [`SealedBin`] of the memory backend, or one made by
/// hand.
pub type StoredBin = SealedBin;

/// What to read back: one metric, a tag filter, a time range, a step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryQuery {
    /// Metric name.
    pub name: String,
    /// Series must carry all of these tags (containment, in the database).
    pub tags: Vec<(String, String)>,
    /// Start, ms since the epoch (inclusive).
    pub start_ms: i64,
    /// End, ms since the epoch (exclusive).
    pub end_ms: i64,
    /// Step width, ms (each stored bin counts in the step holding its start).
    pub step_ms: i64,
    /// One series per value of this tag (`None`: all merged).
    pub group_by: Option<String>,
    /// Only rows of these instances (`None`: every instance).
    pub instances: Option<Vec<String>>,
    /// Only bins starting before this instant (ms), where a caller answers
    /// newer ones from memory.
    pub before_ms: Option<i64>,
    /// Leaves out the rows of this run ([`Store::run`]) starting at or
    /// after this instant (ms): what a running program answers from memory.
    /// Rows of its earlier runs (a restart within one bin included) stay.
    pub skip_run_since: Option<(String, i64)>,
}

/// One step of a [`HistorySeries`].
#[derive(Debug, Clone)]
pub struct HistoryBin {
    /// Start of the step, ms since the epoch.
    pub start_ms: i64,
    /// Samples.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Quantiles merged from the stored bins' sketches (distributions'
    /// finest bins; `None` when no bin of the step had one).
    pub quantiles: Option<QuantileSketch>,
}

impl HistoryBin {
    fn add(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            (self.min, self.max) = (min, max);
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.count += count;
        self.sum += sum;
    }
}

/// The steps of one group, oldest first.
#[derive(Debug, Clone)]
pub struct HistorySeries {
    /// The group-by tag's value (`None`: no grouping, or the tag is absent).
    pub group: Option<String>,
    /// The kind of the rows (of the newest one, should a name have been
    /// reused for another kind).
    pub kind: Option<MetricType>,
    /// Non-empty steps, oldest first.
    pub bins: Vec<HistoryBin>,
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A history database, SQLite or PostgreSQL, opened and migrated.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    instance: String,
    run: String,
    url: String,
}

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

/// The schema versions in order: 1 the bins, 2 the outcomes.
pub(crate) const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "bins",
        include_str!("../migrations/sqlite/0001_bins.sql"),
    ),
    (
        2,
        "outcomes",
        include_str!("../migrations/sqlite/0002_outcomes.sql"),
    ),
];
/// As [`SQLITE_MIGRATIONS`], for PostgreSQL.
pub(crate) const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "bins",
        include_str!("../migrations/postgres/0001_bins.sql"),
    ),
    (
        2,
        "outcomes",
        include_str!("../migrations/postgres/0002_outcomes.sql"),
    ),
];

/// The header every SQLite database file starts with.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

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

/// Maps SQLite's "corrupt" and "not a database" errors to
/// [`StoreError::Corrupt`] naming the file.
fn sqlite_err(path: &Path, e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if matches!(d.code().as_deref(), Some("11" | "26")) {
            return StoreError::Corrupt {
                path: path.to_owned(),
                reason: format!("{d} (left untouched)"),
            };
        }
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

/// Inserts `$rows` (a slice of [`RowData`]) in the transaction `$tx` of
/// database `$db`, in statements of at most [`ROWS_PER_INSERT`] rows, the
/// tags cast by `$tags_cast` (`"::jsonb"` on PostgreSQL); evaluates to the
/// rows written.
macro_rules! insert_rows {
    ($db:ty, $tx:ident, $rows:expr, $tags_cast:expr) => {{
        let mut written = 0u64;
        for chunk in $rows.chunks(ROWS_PER_INSERT) {
            let mut q: QueryBuilder<$db> =
                QueryBuilder::new(format!("INSERT INTO bins ({COLUMNS}) "));
            q.push_values(chunk, |mut r, m: &RowData| {
                r.push_bind(m.instance.clone())
                    .push_bind(m.run.clone())
                    .push_bind(m.name.clone())
                    .push_bind(m.tags.clone())
                    .push_unseparated($tags_cast)
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
        let db = match url {
            StoreUrl::Off => return Err(StoreError::Off),
            StoreUrl::Sqlite(path) => Db::Sqlite(Self::open_sqlite(path).await?),
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
        })
    }

    async fn open_sqlite(path: &Path) -> Result<SqlitePool, StoreError> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
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
        Ok(pool)
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
        matches!(self.db, Db::Postgres(_))
    }

    /// The schema version (the newest migration applied).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        Ok(match &self.db {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        })
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
        if bins.is_empty() && outcomes.is_empty() {
            return Ok(0);
        }
        let orows = outcomes::outcome_rows(self, outcomes);
        let rows: Vec<RowData> = bins
            .iter()
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
            .collect();
        let n = match &self.db {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let n = insert_rows!(Sqlite, tx, &rows, "");
                let n = n + outcomes::insert_sqlite(&mut tx, &orows).await?;
                tx.commit().await?;
                n
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                let n = insert_rows!(Postgres, tx, &rows, "::jsonb");
                let n = n + outcomes::insert_postgres(&mut tx, &orows).await?;
                tx.commit().await?;
                n
            }
        };
        Ok(n)
    }

    /// Rows of `q.name` in range, tag containment and instance filter done
    /// by the database.
    async fn fetch(&self, q: &HistoryQuery) -> Result<Vec<RowData>, StoreError> {
        macro_rules! build {
            ($db:ty, $contain:expr) => {{
                let mut b: QueryBuilder<$db> =
                    QueryBuilder::new(format!("SELECT {COLUMNS_READ} FROM bins WHERE name = "));
                b.push_bind(q.name.clone());
                b.push(" AND start_ms >= ").push_bind(q.start_ms);
                b.push(" AND start_ms + ring_ms <= ").push_bind(q.end_ms);
                if let Some(before) = q.before_ms {
                    b.push(" AND start_ms < ").push_bind(before);
                }
                if let Some((run, since)) = &q.skip_run_since {
                    b.push(" AND NOT (run = ")
                        .push_bind(run.clone())
                        .push(" AND start_ms >= ")
                        .push_bind(*since)
                        .push(")");
                }
                if let Some(inst) = &q.instances {
                    if inst.is_empty() {
                        return Ok(Vec::new());
                    }
                    b.push(" AND instance IN (");
                    let mut sep = b.separated(", ");
                    for i in inst {
                        sep.push_bind(i.clone());
                    }
                    b.push(")");
                }
                $contain(&mut b);
                b
            }};
        }
        let rows = match &self.db {
            Db::Sqlite(p) => {
                let mut b = build!(Sqlite, |b: &mut QueryBuilder<Sqlite>| {
                    for (k, v) in &q.tags {
                        b.push(" AND EXISTS (SELECT 1 FROM json_each(bins.tags) j WHERE j.key = ")
                            .push_bind(k.clone())
                            .push(" AND j.value = ")
                            .push_bind(v.clone())
                            .push(")");
                    }
                });
                b.build()
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(row_data)
                    .collect::<Result<Vec<_>, _>>()?
            }
            Db::Postgres(p) => {
                let mut b = build!(Postgres, |b: &mut QueryBuilder<Postgres>| {
                    if !q.tags.is_empty() {
                        b.push(" AND tags @> ")
                            .push_bind(tags_json(&q.tags))
                            .push("::jsonb");
                    }
                });
                b.build()
                    .fetch_all(p)
                    .await?
                    .iter()
                    .map(row_data)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    /// Steps of `q.step_ms` over `[q.start_ms, q.end_ms)`: only stored bins
    /// wholly inside the range count, each in the step holding its start
    /// (as the memory backend's range queries); quantile sketches merged.
    pub async fn query(&self, q: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError> {
        if q.step_ms <= 0 || q.end_ms <= q.start_ms {
            return Err(StoreError::Query(
                "step must be positive and end after start".into(),
            ));
        }
        let rows = self.fetch(q).await?;
        let mut groups: BTreeMap<Option<String>, BTreeMap<i64, HistoryBin>> = BTreeMap::new();
        let mut kinds: BTreeMap<Option<String>, (i64, Option<MetricType>)> = BTreeMap::new();
        for r in rows {
            let group = match &q.group_by {
                None => None,
                Some(g) => serde_json::from_str::<BTreeMap<String, String>>(&r.tags)
                    .ok()
                    .and_then(|mut t| t.remove(g)),
            };
            let kind = kinds.entry(group.clone()).or_insert((i64::MIN, None));
            if r.start_ms >= kind.0 {
                *kind = (r.start_ms, kind_from_name(&r.kind));
            }
            let step = q.start_ms + (r.start_ms - q.start_ms).div_euclid(q.step_ms) * q.step_ms;
            let bin = groups
                .entry(group)
                .or_default()
                .entry(step)
                .or_insert_with(|| HistoryBin {
                    start_ms: step,
                    count: 0,
                    sum: 0.0,
                    min: 0.0,
                    max: 0.0,
                    quantiles: None,
                });
            bin.add(u64::try_from(r.count).unwrap_or(0), r.sum, r.min, r.max);
            if let Some(s) = &r.sketch {
                let qs = bin.quantiles.get_or_insert_with(QuantileSketch::windowed);
                if !qs.merge_bin(s, r.min, r.max) {
                    tracing::warn!(name = %r.name, start_ms = r.start_ms, "stored sketch does not decode; skipped");
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(|(group, bins)| HistorySeries {
                kind: kinds.get(&group).and_then(|k| k.1),
                group,
                bins: bins.into_values().filter(|b| b.count > 0).collect(),
            })
            .collect())
    }

    /// The instances that wrote rows of `name`.
    pub async fn instances(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let sql_s = "SELECT DISTINCT instance FROM bins WHERE name = ? ORDER BY instance";
        let sql_p = "SELECT DISTINCT instance FROM bins WHERE name = $1 ORDER BY instance";
        Ok(match &self.db {
            Db::Sqlite(p) => sqlx::query_scalar(sql_s).bind(name).fetch_all(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sql_p).bind(name).fetch_all(p).await?,
        })
    }

    /// Number of rows per ring width (ms), for tests and diagnostics.
    pub async fn rows_per_ring(&self) -> Result<BTreeMap<i64, i64>, StoreError> {
        let sql = "SELECT ring_ms, COUNT(*) FROM bins GROUP BY ring_ms";
        let pairs: Vec<(i64, i64)> = match &self.db {
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await?,
            Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await?,
        };
        Ok(pairs.into_iter().collect())
    }

    /// Closes the connections.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// Columns as read: PostgreSQL's JSONB tags as text.
const COLUMNS_READ: &str = "instance, run, name, CAST(tags AS TEXT), kind, ring_ms, start_ms, count, sum, min, max, sketch";

mod outcomes;
mod retention;
pub use outcomes::{OutcomeQuery, OutcomeTotals};
pub use retention::StoreRing;
