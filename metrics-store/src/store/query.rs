//! Reading history back: [`HistoryQuery`] steps (or calendar periods) of
//! one metric, tag containment and instances filtered in the database,
//! steps, groups and sketches merged in Rust.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use metrics_memory::{Exact, QuantileSketch};
use metrics_protocol::MetricType;
use metrics_query::Period;
use sqlx::QueryBuilder;

use super::{COLUMNS_READ, Dialect, RowData, Store, kind_from_name, row_data};
use crate::StoreError;

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
    /// One group per value of this tag (`None`: all merged).
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
    /// Steps are these calendar periods (UTC) instead of `step_ms`, which
    /// is then ignored: a rollup.
    pub calendar: Option<Period>,
}

/// One step of a [`HistoryGroup`].
#[derive(Debug, Clone)]
pub struct HistoryBin {
    /// Start of the step, ms since the epoch.
    pub start_ms: i64,
    /// Start of the earliest stored bin counted in the step (ms).
    pub covers_start_ms: i64,
    /// End of the latest stored bin counted in the step (ms, exclusive).
    pub covers_end_ms: i64,
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
    /// An empty step starting at `start_ms`.
    pub(super) fn new(start_ms: i64) -> Self {
        HistoryBin {
            start_ms,
            covers_start_ms: i64::MAX,
            covers_end_ms: i64::MIN,
            count: 0,
            sum: 0.0,
            min: 0.0,
            max: 0.0,
            quantiles: None,
        }
    }

    pub(super) fn add(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        let mut e = Exact {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
        };
        e.merge(&Exact {
            count,
            sum,
            min,
            max,
        });
        (self.count, self.sum, self.min, self.max) = (e.count, e.sum, e.min, e.max);
    }
}

/// The steps of one group, oldest first.
#[derive(Debug, Clone)]
pub struct HistoryGroup {
    /// The group-by tag's value (`None`: no grouping, or the tag is absent).
    pub group: Option<String>,
    /// The kind of the rows (of the newest one, should a name have been
    /// reused for another kind).
    pub kind: Option<MetricType>,
    /// Non-empty steps, oldest first.
    pub bins: Vec<HistoryBin>,
}

impl Store {
    /// Rows of `q.name` in range, tag containment and instance filter done
    /// by the database.
    async fn fetch(&self, q: &HistoryQuery) -> Result<Vec<RowData>, StoreError> {
        if q.instances.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let rows = on_pool!(self, read, |pool| {
            let mut b = QueryBuilder::new(format!("SELECT {COLUMNS_READ} FROM bins WHERE name = "));
            b.push_bind(q.name.clone());
            b.push(" AND start_ms >= ").push_bind(q.start_ms);
            b.push(" AND start_ms + ring_ms <= ").push_bind(q.end_ms);
            if let Some(before) = q.before_ms {
                b.push(" AND start_ms < ").push_bind(before);
            }
            push_scope!(b, q);
            Dialect::push_tags_filter(&mut b, &q.tags);
            b.build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(row_data)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Steps of `q.step_ms` (or calendar periods, `q.calendar`) over
    /// `[q.start_ms, q.end_ms)`: only stored bins wholly inside the range
    /// count, each in the step holding its start (as the memory backend's
    /// range queries and rollups); quantile sketches merged; each step
    /// says what its bins cover.
    pub async fn query(&self, q: &HistoryQuery) -> Result<Vec<HistoryGroup>, StoreError> {
        if (q.calendar.is_none() && q.step_ms <= 0) || q.end_ms <= q.start_ms {
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
            let step = match q.calendar {
                Some(c) => DateTime::<Utc>::from_timestamp_millis(r.start_ms)
                    .map_or(r.start_ms, |t| c.start_of(t).timestamp_millis()),
                None => q.start_ms + (r.start_ms - q.start_ms).div_euclid(q.step_ms) * q.step_ms,
            };
            let bin = groups
                .entry(group)
                .or_default()
                .entry(step)
                .or_insert_with(|| HistoryBin::new(step));
            bin.add(u64::try_from(r.count).unwrap_or(0), r.sum, r.min, r.max);
            bin.covers_start_ms = bin.covers_start_ms.min(r.start_ms);
            bin.covers_end_ms = bin.covers_end_ms.max(r.start_ms.saturating_add(r.ring_ms));
            if let Some(s) = &r.sketch {
                let qs = bin.quantiles.get_or_insert_with(QuantileSketch::windowed);
                if !qs.merge_bin(s, r.min, r.max) {
                    tracing::warn!(name = %r.name, start_ms = r.start_ms, "stored sketch does not decode; skipped");
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(|(group, bins)| HistoryGroup {
                kind: kinds.get(&group).and_then(|k| k.1),
                group,
                bins: bins.into_values().filter(|b| b.count > 0).collect(),
            })
            .collect())
    }

    /// The instances that wrote rows of `name`.
    pub async fn instances(&self, name: &str) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, read, |pool| {
            let mut b = QueryBuilder::new("SELECT DISTINCT instance FROM bins WHERE name = ");
            b.push_bind(name.to_owned()).push(" ORDER BY instance");
            b.build_query_scalar().fetch_all(pool).await?
        }))
    }
}
