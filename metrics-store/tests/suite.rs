//! The store suite: every test runs against SQLite, and against PostgreSQL
//! too when `METRICS_TEST_POSTGRES_URL` names a database (each test then
//! works in a schema of its own).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{app_rt, rt, temp_dir, unique, wait_until};
use metrics_memory::SealedOutcomes;
use metrics_memory::{ManualClock, MemoryConfig, MemoryMetrics};
use metrics_protocol::{MetricType, Metrics};
use metrics_store::{
    HistoryQuery, HistoryWriter, OutcomeQuery, OutcomeTotals, Store, StoreError, StoreRing,
    StoreUrl, StoredBin, WriterConfig,
};

/// The databases to run a test on: a fresh SQLite file, and a fresh
/// PostgreSQL schema when configured.
async fn backends(test: &str) -> Vec<StoreUrl> {
    let mut out = vec![StoreUrl::Sqlite(temp_dir(test).join("h.sqlite"))];
    if let Ok(base) = std::env::var("METRICS_TEST_POSTGRES_URL") {
        let schema = format!("t_{test}_{}_{}", std::process::id(), unique());
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&base)
            .await
            .expect("METRICS_TEST_POSTGRES_URL connects");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut c)
            .await
            .expect("schema created");
        c.close().await.ok();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        out.push(url.parse().expect("postgres URL parses"));
    }
    out
}

fn bin(name: &str, tags: &[(&str, &str)], start_ms: i64, width_ms: i64, value: f64) -> StoredBin {
    StoredBin {
        name: name.into(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        kind: MetricType::Counter,
        start_ms,
        width_ms,
        count: 1,
        sum: value,
        min: value,
        max: value,
        sketch: None,
    }
}

fn query(name: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> HistoryQuery {
    HistoryQuery {
        name: name.into(),
        start_ms,
        end_ms,
        step_ms,
        ..HistoryQuery::default()
    }
}

/// Sealed bins with real sketches: 1..=100 recorded into one 10 s bin.
fn distribution_bins(start_ms: i64) -> Vec<StoredBin> {
    let clock = Arc::new(ManualClock::new(start_ms));
    let m = Arc::new(
        MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).expect("memory"),
    );
    let metrics = Metrics::new(m.clone());
    for v in 1..=100 {
        metrics.record_histogram("latency", f64::from(v), &[("route", "/a")]);
    }
    clock.advance(Duration::from_secs(10));
    m.sealed_bins(start_ms, start_ms + 10_000)
}

#[test]
fn written_history_survives_reopening() {
    rt().block_on(async {
        for url in backends("reopen").await {
            let s = Store::open(&url, "a").await.expect("opens");
            assert_eq!(s.schema_version().await.unwrap(), 2, "{url}");
            let n = s
                .write(&[
                    bin("req", &[("code", "200")], 0, 10_000, 1.0),
                    bin("req", &[("code", "200")], 10_000, 10_000, 2.0),
                ])
                .await
                .unwrap();
            assert_eq!(n, 2);
            let first_run = s.run().to_owned();
            s.close().await;
            // A second open finds the schema and the rows (migrations are
            // not re-run).
            let s = Store::open(&url, "a").await.expect("reopens");
            assert_eq!(s.schema_version().await.unwrap(), 2);
            let got = s.query(&query("req", 0, 20_000, 10_000)).await.unwrap();
            assert_eq!(got.len(), 1, "{url}");
            let sums: Vec<f64> = got[0].bins.iter().map(|b| b.sum).collect();
            assert_eq!(sums, vec![1.0, 2.0], "{url}");
            // This run's rows can be left out (a program answers them from
            // memory); the earlier run's stay, in the same bin too.
            assert_ne!(first_run, s.run());
            s.write(&[bin("req", &[("code", "200")], 10_000, 10_000, 4.0)])
                .await
                .unwrap();
            let mut q = query("req", 0, 20_000, 10_000);
            assert_eq!(s.query(&q).await.unwrap()[0].bins[1].sum, 6.0);
            q.skip_run_since = Some((s.run().to_owned(), 0));
            let sums: Vec<f64> = s.query(&q).await.unwrap()[0]
                .bins
                .iter()
                .map(|b| b.sum)
                .collect();
            assert_eq!(sums, vec![1.0, 2.0], "{url}");
            s.close().await;
        }
    });
}

#[test]
fn ranges_filter_by_tag_containment_and_group() {
    rt().block_on(async {
        for url in backends("range").await {
            let s = Store::open(&url, "a").await.unwrap();
            let mut rows = Vec::new();
            for (i, (route, code)) in [("/a", "200"), ("/a", "500"), ("/b", "200")]
                .into_iter()
                .enumerate()
            {
                for t in 0..6 {
                    rows.push(bin(
                        "req",
                        &[("route", route), ("code", code), ("host", "h1")],
                        t * 10_000,
                        10_000,
                        (i + 1) as f64,
                    ));
                }
            }
            rows.push(bin("other", &[("route", "/a")], 0, 10_000, 100.0));
            s.write(&rows).await.unwrap();

            // All of `req` in one step: 6 * (1 + 2 + 3).
            let all = s.query(&query("req", 0, 60_000, 60_000)).await.unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!(all[0].bins.len(), 1);
            assert_eq!((all[0].bins[0].count, all[0].bins[0].sum), (18, 36.0));
            assert_eq!((all[0].bins[0].min, all[0].bins[0].max), (1.0, 3.0));

            // Containment: code=200 (any route); code=200 & route=/b.
            let mut q = query("req", 0, 60_000, 30_000);
            q.tags = vec![("code".into(), "200".into())];
            let got = s.query(&q).await.unwrap();
            let sums: Vec<f64> = got[0].bins.iter().map(|b| b.sum).collect();
            assert_eq!(sums, vec![12.0, 12.0], "{url}");
            q.tags.push(("route".into(), "/b".into()));
            let got = s.query(&q).await.unwrap();
            assert_eq!(got[0].bins.iter().map(|b| b.sum).sum::<f64>(), 18.0);
            q.tags = vec![("code".into(), "404".into())];
            assert!(s.query(&q).await.unwrap().is_empty());

            // Group by route.
            let mut q = query("req", 0, 60_000, 60_000);
            q.group_by = Some("route".into());
            let got = s.query(&q).await.unwrap();
            let groups: Vec<(Option<String>, f64)> = got
                .iter()
                .map(|g| (g.group.clone(), g.bins[0].sum))
                .collect();
            assert_eq!(
                groups,
                vec![(Some("/a".into()), 18.0), (Some("/b".into()), 18.0)]
            );

            // A bin reaching past the end is left out; `before_ms` cuts.
            let got = s.query(&query("req", 0, 55_000, 60_000)).await.unwrap();
            assert_eq!(got[0].bins[0].count, 15);
            let mut q = query("req", 0, 60_000, 60_000);
            q.before_ms = Some(20_000);
            assert_eq!(s.query(&q).await.unwrap()[0].bins[0].count, 6);
            s.close().await;
        }
    });
}

#[test]
fn calendar_periods_say_what_their_bins_cover() {
    rt().block_on(async {
        for url in backends("calendar").await {
            let s = Store::open(&url, "a").await.unwrap();
            let hour = 3_600_000;
            s.write(&[
                bin("req", &[], hour - 10_000, 10_000, 1.0),
                bin("req", &[], hour, 10_000, 2.0),
                bin("req", &[], 2 * hour, 300_000, 4.0),
            ])
            .await
            .unwrap();
            let mut q = query("req", 0, 3 * hour, 0);
            q.calendar = Some(metrics_query::Period::Hour);
            let got = s.query(&q).await.unwrap();
            let periods: Vec<(i64, i64, i64, f64)> = got[0]
                .bins
                .iter()
                .map(|b| (b.start_ms, b.covers_start_ms, b.covers_end_ms, b.sum))
                .collect();
            assert_eq!(
                periods,
                vec![
                    (0, hour - 10_000, hour, 1.0),
                    (hour, hour, hour + 10_000, 2.0),
                    (2 * hour, 2 * hour, 2 * hour + 300_000, 4.0),
                ],
                "{url}"
            );
            q.calendar = Some(metrics_query::Period::Day);
            let got = s.query(&q).await.unwrap();
            assert_eq!(got[0].bins.len(), 1);
            assert_eq!((got[0].bins[0].start_ms, got[0].bins[0].sum), (0, 7.0));
            s.close().await;
        }
    });
}

#[test]
fn percentiles_merge_from_stored_sketches() {
    rt().block_on(async {
        for url in backends("sketch").await {
            let s = Store::open(&url, "a").await.unwrap();
            let mut rows = distribution_bins(0);
            rows.extend(distribution_bins(10_000));
            assert!(rows.iter().all(|b| b.sketch.is_some()));
            s.write(&rows).await.unwrap();
            let got = s.query(&query("latency", 0, 60_000, 60_000)).await.unwrap();
            let b = &got[0].bins[0];
            assert_eq!(b.count, 200);
            let q = b.quantiles.as_ref().expect("sketches merged");
            assert_eq!(q.count(), 200);
            let p90 = q.quantile(0.9).unwrap();
            assert!((p90 - 90.0).abs() <= 90.0 * 0.01, "{url}: p90 {p90}");
            s.close().await;
        }
    });
}

#[test]
fn retention_merges_into_coarser_rings_then_deletes() {
    rt().block_on(async {
        for url in backends("retention").await {
            let s = Store::open(&url, "a").await.unwrap();
            let minute = 60_000;
            // 10 s bins over 20 minutes, with sketches in the first bins.
            let mut rows: Vec<StoredBin> = (0..120)
                .map(|i| bin("req", &[("k", "v")], i * 10_000, 10_000, 1.0))
                .collect();
            rows.extend(distribution_bins(0));
            s.write(&rows).await.unwrap();
            let rings = [
                StoreRing {
                    bin: Duration::from_secs(10),
                    keep: Duration::from_secs(5 * 60),
                },
                StoreRing {
                    bin: Duration::from_secs(5 * 60),
                    keep: Duration::from_secs(60 * 60),
                },
            ];
            // At 20 min: 10 s bins before 15 min merge into 5 min bins.
            let (merged, deleted) = s.apply_retention(&rings, 20 * minute).await.unwrap();
            assert_eq!((merged, deleted), (91, 0), "{url}");
            let per_ring = s.rows_per_ring().await.unwrap();
            assert_eq!(per_ring.get(&10_000), Some(&30));
            assert_eq!(per_ring.get(&300_000), Some(&4));
            let got = s
                .query(&query("req", 0, 20 * minute, 20 * minute))
                .await
                .unwrap();
            assert_eq!((got[0].bins[0].count, got[0].bins[0].sum), (120, 120.0));
            let lat = s
                .query(&query("latency", 0, 20 * minute, 20 * minute))
                .await
                .unwrap();
            let p50 = lat[0].bins[0]
                .quantiles
                .as_ref()
                .unwrap()
                .quantile(0.5)
                .unwrap();
            assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
            // Applying again changes nothing.
            assert_eq!(
                s.apply_retention(&rings, 20 * minute).await.unwrap(),
                (0, 0)
            );
            // At 80 min everything before 20 min is past the last ring.
            let (_, deleted) = s.apply_retention(&rings, 80 * minute).await.unwrap();
            assert_eq!(deleted, 5, "{url}");
            assert!(s.rows_per_ring().await.unwrap().is_empty());
            s.close().await;
        }
    });
}

#[test]
fn two_instances_share_one_database() {
    rt().block_on(async {
        for url in backends("fleet").await {
            let a = Store::open(&url, "host-a").await.unwrap();
            let b = Store::open(&url, "host-b").await.unwrap();
            a.write(&[bin("req", &[("code", "200")], 0, 10_000, 1.0)])
                .await
                .unwrap();
            b.write(&[bin("req", &[("code", "200")], 0, 10_000, 5.0)])
                .await
                .unwrap();
            let both = a.query(&query("req", 0, 10_000, 10_000)).await.unwrap();
            assert_eq!(both[0].bins[0].sum, 6.0, "{url}");
            let mut q = query("req", 0, 10_000, 10_000);
            q.instances = Some(vec!["host-b".into()]);
            assert_eq!(a.query(&q).await.unwrap()[0].bins[0].sum, 5.0);
            assert_eq!(a.instances("req").await.unwrap(), vec!["host-a", "host-b"]);
            a.close().await;
            b.close().await;
        }
    });
}

fn outcome(
    op: &str,
    start_ms: i64,
    width_ms: i64,
    ok: u64,
    failed: &[(&str, u64)],
) -> SealedOutcomes {
    SealedOutcomes {
        operation: op.into(),
        start_ms,
        width_ms,
        success: ok,
        failures: failed.iter().map(|(e, c)| ((*e).into(), *c)).collect(),
    }
}

fn totals(ok: u64, failed: &[(&str, u64)]) -> OutcomeTotals {
    OutcomeTotals {
        success: ok,
        failures: failed.iter().map(|(e, c)| ((*e).into(), *c)).collect(),
    }
}

fn outcome_query(op: &str) -> OutcomeQuery {
    OutcomeQuery {
        operation: op.into(),
        ..OutcomeQuery::default()
    }
}

#[test]
fn outcomes_are_stored_beside_the_bins_across_runs_and_instances() {
    rt().block_on(async {
        for url in backends("outcomes").await {
            let first = Store::open(&url, "host-a").await.unwrap();
            let n = first
                .write_batch(
                    &[bin("req", &[], 0, 10_000, 1.0)],
                    &[
                        outcome("pay", 0, 10_000, 3, &[("timeout", 1)]),
                        outcome("pay", 10_000, 10_000, 0, &[("timeout", 2), ("refused", 1)]),
                    ],
                )
                .await
                .unwrap();
            // One bin row, and one outcome row per non-zero count.
            assert_eq!(n, 1 + 2 + 2, "{url}");
            let first_run = first.run().to_owned();
            first.close().await;
            // A second run of the same instance, and another instance.
            let second = Store::open(&url, "host-a").await.unwrap();
            second
                .write_batch(&[], &[outcome("pay", 20_000, 10_000, 5, &[])])
                .await
                .unwrap();
            let other = Store::open(&url, "host-b").await.unwrap();
            other
                .write_batch(&[], &[outcome("pay", 0, 10_000, 100, &[("timeout", 7)])])
                .await
                .unwrap();

            let mut q = outcome_query("pay");
            q.instances = Some(vec!["host-a".into()]);
            assert_eq!(
                second.outcomes(&q).await.unwrap(),
                totals(8, &[("refused", 1), ("timeout", 3)]),
                "{url}"
            );
            // This run's rows left out (memory answers them).
            q.skip_run_since = Some((second.run().to_owned(), 0));
            let earlier = second.outcomes(&q).await.unwrap();
            assert_eq!(earlier, totals(3, &[("refused", 1), ("timeout", 3)]));
            assert_ne!(first_run, second.run());
            // A time range counts the bins wholly inside it.
            q.start_ms = Some(10_000);
            q.end_ms = Some(20_000);
            assert_eq!(
                second.outcomes(&q).await.unwrap(),
                totals(0, &[("refused", 1), ("timeout", 2)])
            );
            q.end_ms = Some(19_999);
            assert_eq!(second.outcomes(&q).await.unwrap().total(), 0);
            // Every instance; an unknown operation is empty.
            let all = second.outcomes(&outcome_query("pay")).await.unwrap();
            assert_eq!(all, totals(108, &[("refused", 1), ("timeout", 10)]));
            let none = second.outcomes(&outcome_query("nope")).await.unwrap();
            assert_eq!(none, OutcomeTotals::default());
            second.close().await;
            other.close().await;
        }
    });
}

#[test]
fn retention_merges_and_deletes_outcomes_too() {
    rt().block_on(async {
        for url in backends("outcome_retention").await {
            let s = Store::open(&url, "a").await.unwrap();
            let minute = 60_000;
            let rows: Vec<SealedOutcomes> = (0..120)
                .map(|i| outcome("job", i * 10_000, 10_000, 1, &[("oom", i as u64 % 2)]))
                .collect();
            s.write_batch(&[], &rows).await.unwrap();
            let rings = [
                StoreRing {
                    bin: Duration::from_secs(10),
                    keep: Duration::from_secs(5 * 60),
                },
                StoreRing {
                    bin: Duration::from_secs(5 * 60),
                    keep: Duration::from_secs(60 * 60),
                },
            ];
            let before = s.outcomes(&outcome_query("job")).await.unwrap();
            assert_eq!(before, totals(120, &[("oom", 60)]));
            // At 20 min: the 90 bins before 15 min (90 success rows, 45
            // failure rows) merge into three 5 min bins of two rows each.
            let (merged, deleted) = s.apply_retention(&rings, 20 * minute).await.unwrap();
            assert_eq!((merged, deleted), (135, 0), "{url}");
            assert_eq!(s.outcomes(&outcome_query("job")).await.unwrap(), before);
            let mut q = outcome_query("job");
            q.end_ms = Some(15 * minute);
            assert_eq!(s.outcomes(&q).await.unwrap(), totals(90, &[("oom", 45)]));
            // At 80 min the rest merges (two rows for 15 min) and everything
            // before 20 min is past the last ring: four 5 min bins' rows.
            let (merged, deleted) = s.apply_retention(&rings, 80 * minute).await.unwrap();
            assert_eq!((merged, deleted), (45, 8), "{url}");
            assert_eq!(s.outcomes(&outcome_query("job")).await.unwrap().total(), 0);
            s.close().await;
        }
    });
}

/// A store written by schema version 1 (the bins only): made by applying
/// the version 1 migration alone and inserting rows as version 1 did, then
/// opened by the current code, which migrates it and reads the old rows.
#[test]
fn a_version_1_store_opens_migrated_with_its_rows() {
    rt().block_on(async {
        for url in backends("v1").await {
            let v1_dir = temp_dir("v1-migrations");
            std::fs::create_dir_all(&v1_dir).unwrap();
            let dialect = if matches!(url, StoreUrl::Postgres(_)) {
                "postgres"
            } else {
                "sqlite"
            };
            let v1_sql = std::fs::read_to_string(format!(
                "{}/migrations/{dialect}/0001_bins.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            std::fs::write(v1_dir.join("0001_bins.sql"), v1_sql).unwrap();
            let v1 = sqlx::migrate::Migrator::new(v1_dir.as_path())
                .await
                .unwrap();
            let insert = "INSERT INTO bins (instance, run, name, tags, kind, ring_ms, start_ms, \
                          count, sum, min, max, sketch) VALUES ('old', 'r1', 'req', \
                          '{\"code\":\"200\"}', 'counter', 10000, 0, 2, 5.0, 2.0, 3.0, NULL)";
            match &url {
                StoreUrl::Sqlite(path) => {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    let opts = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .create_if_missing(true);
                    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
                    v1.run(&pool).await.unwrap();
                    sqlx::query(insert).execute(&pool).await.unwrap();
                    pool.close().await;
                }
                StoreUrl::Postgres(u) => {
                    let pool = sqlx::PgPool::connect(u).await.unwrap();
                    v1.run(&pool).await.unwrap();
                    sqlx::query(insert).execute(&pool).await.unwrap();
                    pool.close().await;
                }
                StoreUrl::Off => unreachable!(),
            }
            let s = Store::open(&url, "new")
                .await
                .expect("a version 1 store opens");
            assert_eq!(s.schema_version().await.unwrap(), 2, "{url}");
            let mut q = query("req", 0, 10_000, 10_000);
            q.tags = vec![("code".into(), "200".into())];
            let got = s.query(&q).await.unwrap();
            let b = &got[0].bins[0];
            assert_eq!((b.count, b.sum, b.min, b.max), (2, 5.0, 2.0, 3.0), "{url}");
            assert_eq!(s.instances("req").await.unwrap(), vec!["old"]);
            // The new table is there and written.
            s.write_batch(&[], &[outcome("pay", 0, 10_000, 1, &[])])
                .await
                .unwrap();
            assert_eq!(s.outcomes(&outcome_query("pay")).await.unwrap().success, 1);
            s.close().await;
            std::fs::remove_dir_all(&v1_dir).ok();
        }
    });
}

#[test]
fn the_writer_persists_everything_by_shutdown() {
    let urls = rt().block_on(backends("writer"));
    for url in urls {
        let t0 = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::new(t0));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let mut cfg = WriterConfig::new(url.clone(), "w");
        cfg.flush_interval = Duration::from_millis(20);
        let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
        let metrics = Metrics::new(m.clone());
        metrics.record_counter("jobs", 1.0, &[("q", "x")]);
        metrics.record_histogram("latency", 3.0, &[]);
        metrics.record_success("pay", &[]);
        clock.advance(Duration::from_secs(10));
        metrics.record_counter("jobs", 2.0, &[("q", "x")]);
        // The first bins are written in the background...
        wait_until("a flush", || w.status().written >= 3);
        assert!(w.status().healthy, "{:?}", w.status());
        // ...and the open bin at shutdown.
        metrics.record_counter("jobs", 4.0, &[("q", "x")]);
        metrics.record_failure("pay", "timeout", &[]);
        w.shutdown();
        rt().block_on(async {
            let s = Store::open(&url, "reader").await.unwrap();
            let got = s
                .query(&query("jobs", t0, t0 + 20_000, 10_000))
                .await
                .unwrap();
            let sums: Vec<f64> = got[0].bins.iter().map(|b| b.sum).collect();
            assert_eq!(sums, vec![1.0, 6.0], "{url}");
            assert_eq!(s.instances("jobs").await.unwrap(), vec!["w"]);
            let pay = s.outcomes(&outcome_query("pay")).await.unwrap();
            assert_eq!(pay, totals(1, &[("timeout", 1)]), "{url}");
            s.close().await;
        });
    }
}

#[test]
fn a_database_that_is_down_leaves_recording_alone_and_counts_drops() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    // Nothing listens on port 1.
    let url: StoreUrl = "postgres://u@127.0.0.1:1/none".parse().unwrap();
    let mut cfg = WriterConfig::new(url, "w");
    cfg.flush_interval = Duration::from_millis(20);
    cfg.retry_interval = Duration::from_millis(20);
    cfg.max_pending = 3;
    let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
    let metrics = Metrics::new(m.clone());
    for i in 0..5 {
        metrics.record_counter(&format!("c{i}"), 1.0, &[]);
    }
    clock.advance(Duration::from_secs(10));
    wait_until("drops", || w.status().dropped == 2);
    let st = w.status();
    assert!(!st.healthy);
    assert_eq!(st.pending, 3);
    assert!(st.last_error.is_some());
    assert_eq!(m.counter_value("c0", &[]), Some(1.0));
    w.shutdown();
}

#[test]
fn a_corrupt_sqlite_file_is_reported_by_path_and_left_alone() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.sqlite");
    let junk = b"this is not a database, but someone's notes".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let url = StoreUrl::Sqlite(path.clone());
    let err = rt().block_on(Store::open(&url, "a")).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), junk);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn writing_resumes_when_the_store_comes_back() {
    let dir = temp_dir("resume");
    std::fs::create_dir_all(&dir).unwrap();
    // A file where the store's directory should be: the store cannot open.
    let blocker = dir.join("data");
    std::fs::write(&blocker, "in the way").unwrap();
    let url = StoreUrl::Sqlite(blocker.join("h.sqlite"));
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let mut cfg = WriterConfig::new(url.clone(), "w");
    cfg.flush_interval = Duration::from_millis(20);
    cfg.retry_interval = Duration::from_millis(20);
    let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
    let metrics = Metrics::new(m.clone());
    metrics.record_counter("jobs", 1.0, &[]);
    metrics.record_counter("other", 1.0, &[]);
    clock.advance(Duration::from_secs(10));
    wait_until("bins pending", || w.status().pending == 2);
    let st = w.status();
    assert!(!st.healthy);
    assert!(st.last_error.unwrap().contains("data"));
    // The way is cleared: the queued bins are written, none dropped.
    std::fs::remove_file(&blocker).unwrap();
    wait_until("the queue written", || w.status().written == 2);
    let st = w.status();
    assert!(st.healthy, "{st:?}");
    assert_eq!((st.pending, st.dropped), (0, 0));
    w.shutdown();
    std::fs::remove_dir_all(&dir).ok();
}

/// Pages in the SQLite file at `path` (read on a connection of its own).
async fn sqlite_pages(path: &std::path::Path) -> u64 {
    use sqlx::Connection;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let n: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.ok();
    u64::try_from(n).unwrap()
}

/// Rows in the `bins` table of the store at `url`, opened afresh.
async fn rows_in(url: &StoreUrl) -> u64 {
    let s = Store::open(url, "reader").await.unwrap();
    let n = s.rows_per_ring().await.unwrap().values().sum::<i64>();
    s.close().await;
    u64::try_from(n).unwrap()
}

/// Writes batches of `rows` rows to `store` until one fails, which must
/// be for lack of room; returns the rows reported written. The `i`th row
/// of all written starts at `i` * 10 s.
async fn write_until_full(store: &Store, next: &mut i64, rows: i64) -> u64 {
    let wide = "x".repeat(200);
    let mut reported = 0;
    for _ in 0..10_000 {
        let batch: Vec<StoredBin> = (*next..*next + rows)
            .map(|i| bin("req", &[("k", &wide)], i * 10_000, 10_000, 1.0))
            .collect();
        *next += rows;
        match store.write(&batch).await {
            Ok(n) => reported += n,
            Err(e) => {
                assert!(e.to_string().contains("full"), "not for lack of room: {e}");
                return reported;
            }
        }
    }
    panic!("the store never filled up");
}

/// Writes four batches (1, 50, 1 and 50 rows) that must all succeed;
/// returns the rows reported written.
async fn write_with_room(store: &Store, next: &mut i64) -> u64 {
    let mut written = 0;
    for rows in [1, 50, 1, 50] {
        let batch: Vec<StoredBin> = (*next..*next + rows)
            .map(|i| bin("req", &[], i * 10_000, 10_000, 1.0))
            .collect();
        *next += rows;
        written += store.write(&batch).await.expect("a write with room");
    }
    assert_eq!(written, 102);
    written
}

/// A SQLite store whose file fills up (capped with `max_page_count` on
/// every connection, as a full disk) and is then given room again: after
/// the store is closed and reopened, the file holds exactly the rows
/// reported written (none lost after being reported), and writing resumed.
/// Failed writes of one row (which SQLite answers by rolling back the whole
/// transaction) and of many rows (it rolls back only the statement) and a
/// retention pass happen while it is full.
#[test]
fn a_full_sqlite_file_holds_exactly_the_rows_reported_written() {
    rt().block_on(async {
        let dir = temp_dir("full");
        let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
        let StoreUrl::Sqlite(path) = &url else {
            unreachable!()
        };
        let s = Store::open(&url, "a").await.unwrap();
        let mut reported = s
            .write(
                &(0..100)
                    .map(|i| bin("req", &[], i * 10_000, 10_000, 1.0))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        let mut next = 100;
        s.set_sqlite_page_limit(Some(sqlite_pages(path).await + 20));
        // Full: many-row writes fail first, then one-row writes too.
        reported += write_until_full(&s, &mut next, 50).await;
        reported += write_until_full(&s, &mut next, 1).await;
        for rows in [50, 1, 50, 1, 50] {
            reported += write_until_full(&s, &mut next, rows).await;
        }
        let rings = StoreRing::defaults();
        let _ = s.apply_retention(&rings, next * 10_000).await;
        // Room again: writing resumes.
        s.set_sqlite_page_limit(None);
        reported += write_with_room(&s, &mut next).await;
        s.close().await;
        let stored = rows_in(&url).await;
        assert_eq!(
            stored, reported,
            "rows in the file vs rows reported written"
        );
        std::fs::remove_dir_all(&dir).ok();
    });
}

/// As above on a real file system that fills up: `METRICS_TEST_SMALL_FS`
/// names an empty directory on a small file system of its own (the store
/// interop script mounts a 1 MiB tmpfs there). A ballast file takes all but
/// 200 KiB of it, the store is written until the disk is full (and a
/// retention pass runs), the ballast is deleted, and writing resumes: the
/// file then holds exactly the rows reported written. Without the variable
/// the test has nothing to run on and passes; with it, anything that keeps
/// it from running fails it.
#[test]
fn a_full_file_system_holds_exactly_the_rows_reported_written() {
    let Some(dir) = std::env::var_os("METRICS_TEST_SMALL_FS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let ballast = dir.join("ballast");
    let url = StoreUrl::Sqlite(dir.join("full.sqlite"));
    rt().block_on(async {
        let s = Store::open(&url, "a")
            .await
            .unwrap_or_else(|e| panic!("METRICS_TEST_SMALL_FS={}: {e}", dir.display()));
        let mut next = 0;
        let mut reported = write_with_room(&s, &mut next).await;
        fill_but(&ballast, 200 * 1024);
        reported += write_until_full(&s, &mut next, 50).await;
        reported += write_until_full(&s, &mut next, 1).await;
        let _ = s
            .apply_retention(&StoreRing::defaults(), next * 10_000)
            .await;
        std::fs::remove_file(&ballast).unwrap();
        reported += write_with_room(&s, &mut next).await;
        s.close().await;
        let stored = rows_in(&url).await;
        eprintln!(
            "{}: {reported} rows reported written, {stored} in the file",
            dir.display()
        );
        assert_eq!(
            stored, reported,
            "rows in the file vs rows reported written"
        );
    });
    for f in ["full.sqlite", "full.sqlite-wal", "full.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
}

/// Fills the file system holding `path` with the file `path`, then shrinks
/// it to leave `room` bytes; panics unless the file system fills within
/// 256 MiB.
fn fill_but(path: &std::path::Path, room: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("writing {}: {e}", path.display()),
        }
        if written > 256 << 20 {
            drop(f);
            let _ = std::fs::remove_file(path);
            panic!(
                "{} is not on a small file system: 256 MiB fit",
                path.display()
            );
        }
    }
    f.set_len(written.saturating_sub(room)).unwrap();
    f.sync_all().unwrap();
}

/// A listener on 127.0.0.1 that accepts connections and never answers:
/// a database server that hangs. Returns its port; it lives as long as the
/// test process.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    port
}

/// A writer whose database stops answering (its write lock taken and held
/// by another connection, so the writer's flush waits on it) reads as
/// unhealthy, "not answering", while it waits, long before the wait gives
/// up; and healthy again, with nothing lost, once the database answers.
#[test]
fn a_store_that_stops_answering_is_unhealthy_while_it_does() {
    let dir = temp_dir("stall");
    let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let mut cfg = WriterConfig::new(url.clone(), "w");
    cfg.flush_interval = Duration::from_millis(20);
    cfg.ping_interval = Duration::from_millis(20);
    cfg.answer_timeout = Duration::from_millis(500);
    let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
    let metrics = Metrics::new(m.clone());
    wait_until("connected", || w.status().healthy);
    let StoreUrl::Sqlite(path) = &url else {
        unreachable!()
    };
    let rt = rt();
    let mut lock = rt.block_on(async {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        c
    });
    metrics.record_counter("jobs", 1.0, &[]);
    clock.advance(Duration::from_secs(10));
    wait_until("not answering", || {
        let st = w.status();
        !st.healthy
            && st
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("not answering"))
    });
    assert_eq!(m.counter_value("jobs", &[]), Some(1.0), "recording goes on");
    rt.block_on(async {
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    });
    wait_until("written", || w.status().written == 1);
    wait_until("healthy", || w.status().healthy);
    assert_eq!(w.status().last_error, None);
    w.shutdown();
    std::fs::remove_dir_all(&dir).ok();
}

/// A PostgreSQL server that accepts connections and never answers: the
/// writer reads as unhealthy, "not answering", while its connection
/// attempt hangs, and asking for its status never waits.
#[test]
fn a_server_that_never_answers_reads_as_not_answering() {
    let url: StoreUrl = format!("postgres://u@127.0.0.1:{}/none", silent_server())
        .parse()
        .unwrap();
    let m = Arc::new(MemoryMetrics::new());
    let mut cfg = WriterConfig::new(url, "w");
    cfg.answer_timeout = Duration::from_millis(200);
    let w = HistoryWriter::start(m, cfg, app_rt()).unwrap();
    wait_until("not answering", || {
        let st = w.status();
        !st.healthy
            && st
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("not answering"))
    });
    assert!(w.store().is_none());
    w.shutdown();
}

/// Records a counter in one bin and opens the next: what a writer stopped
/// now must write (the sealed bin and the open one).
fn two_bins(clock: &ManualClock, m: &Arc<MemoryMetrics>) {
    let metrics = Metrics::new(m.clone());
    metrics.record_counter("jobs", 1.0, &[]);
    clock.advance(Duration::from_secs(10));
    metrics.record_counter("jobs", 2.0, &[]);
}

/// The sums of `jobs` per 10 s bin from `t0`, read back from `url`.
fn stored_jobs(url: &StoreUrl, t0: i64) -> Vec<f64> {
    rt().block_on(async {
        let s = Store::open(url, "reader").await.unwrap();
        let got = s
            .query(&query("jobs", t0, t0 + 20_000, 10_000))
            .await
            .unwrap();
        s.close().await;
        got.first()
            .map(|g| g.bins.iter().map(|b| b.sum).collect())
            .unwrap_or_default()
    })
}

/// Shut down from a task on a worker of the runtime the writer runs on
/// (one worker: the writer's last flush needs the very thread that waits),
/// it writes everything and returns; so does `shutdown_async`.
#[test]
fn a_writer_stops_from_inside_its_own_runtime() {
    for asynchronous in [false, true] {
        let dir = temp_dir("inside");
        let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
        let t0 = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::new(t0));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let one = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let w = HistoryWriter::start(
            m.clone(),
            WriterConfig::new(url.clone(), "w"),
            one.handle().clone(),
        )
        .unwrap();
        two_bins(&clock, &m);
        let task = one.spawn(async move {
            if asynchronous {
                w.shutdown_async().await;
            } else {
                w.shutdown();
            }
            w.status()
        });
        let st = one.block_on(task).unwrap();
        assert_eq!((st.written, st.pending), (2, 0), "{st:?}");
        drop(one);
        assert_eq!(
            stored_jobs(&url, t0),
            vec![1.0, 2.0],
            "async: {asynchronous}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Dropped inside a task of a current-thread runtime (where blocking is
/// not allowed), a writer on the application's runtime neither panics nor
/// blocks, and its last flush still lands.
#[test]
fn a_writer_dropped_in_a_current_thread_task_still_writes_everything() {
    let dir = temp_dir("current");
    let url = StoreUrl::Sqlite(dir.join("h.sqlite"));
    let t0 = 1_800_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let m = Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
    let w = HistoryWriter::start(m.clone(), WriterConfig::new(url.clone(), "w"), app_rt()).unwrap();
    two_bins(&clock, &m);
    // Connected (the schema made) before the test reads the file itself.
    wait_until("connected", || w.store().is_some());
    rt().block_on(async move { drop(w) });
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored_jobs(&url, t0) != vec![1.0, 2.0] {
        assert!(Instant::now() < deadline, "{:?}", stored_jobs(&url, t0));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The open bin reaches the store at every flush, before it ends: its
/// partial rows are replaced at each later flush (and by the sealed row),
/// never added to, so the store holds exactly what was recorded up to the
/// last flush, which is all a process killed then loses. On SQLite, writes
/// that fail for lack of room meanwhile are retried, the open bin counted
/// once. The rows the writer reports are the rows in the database.
#[test]
fn the_open_bin_is_written_between_flushes_and_replaced_not_added() {
    let r = rt();
    for url in r.block_on(backends("open")) {
        let t0 = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::new(t0 + 1_000));
        let m =
            Arc::new(MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap());
        let mut cfg = WriterConfig::new(url.clone(), "w");
        cfg.flush_interval = Duration::from_millis(20);
        cfg.retry_interval = Duration::from_millis(20);
        let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
        let metrics = Metrics::new(m.clone());
        wait_until("connected", || w.store().is_some());
        let reader = r.block_on(Store::open(&url, "reader")).unwrap();
        // (count, sum) per 10 s bin of `jobs` in the store, and its outcomes.
        let stored = || {
            let got = r
                .block_on(reader.query(&query("jobs", t0, t0 + 60_000, 10_000)))
                .unwrap();
            let bins: Vec<(u64, f64)> = got
                .first()
                .map(|g| g.bins.iter().map(|b| (b.count, b.sum)).collect())
                .unwrap_or_default();
            let pay = r.block_on(reader.outcomes(&outcome_query("pay"))).unwrap();
            (bins, pay)
        };
        let wait_for = |want: Vec<(u64, f64)>, ok: u64| {
            wait_until(&format!("{want:?} stored"), || {
                let (bins, pay) = stored();
                bins == want && pay.success == ok
            });
        };
        metrics.record_counter("jobs", 1.0, &[]);
        metrics.record_success("pay", &[]);
        wait_for(vec![(1, 1.0)], 1);
        metrics.record_counter("jobs", 2.0, &[]);
        metrics.record_success("pay", &[]);
        wait_for(vec![(2, 3.0)], 2);
        metrics.record_counter("jobs", 4.0, &[]);
        wait_for(vec![(3, 7.0)], 2);
        // Several flushes later (another series changing), still replaced,
        // not added to.
        for _ in 0..3 {
            let flushes = w.status().flushes;
            metrics.record_counter("tick", 1.0, &[]);
            wait_until("another flush", || w.status().flushes > flushes);
        }
        assert_eq!(stored().0, vec![(3, 7.0)], "{url}");
        if let StoreUrl::Sqlite(path) = &url {
            // A full file: the open bin's writes fail (and are retried) while
            // many new series wait; then there is room again.
            let store = w.store().unwrap();
            store.set_sqlite_page_limit(Some(r.block_on(sqlite_pages(path))));
            let wide = "x".repeat(200);
            for i in 0..200 {
                metrics.record_counter("wide", 1.0, &[("k", &format!("{wide}{i}"))]);
            }
            metrics.record_counter("jobs", 8.0, &[]);
            wait_until("a failed write", || !w.status().healthy);
            assert_eq!(stored().0, vec![(3, 7.0)], "{url}");
            store.set_sqlite_page_limit(None);
            wait_for(vec![(4, 15.0)], 2);
        }
        // The bin seals: its final row replaces the partial one.
        let before = stored().0;
        clock.advance(Duration::from_secs(10));
        metrics.record_counter("jobs", 16.0, &[]);
        let mut want = before.clone();
        want.push((1, 16.0));
        wait_for(want.clone(), 2);
        wait_until("the sealed bins written", || w.status().written >= 2);
        assert_eq!(stored().0, want, "{url}");
        let rows = w.status().rows;
        let outcome_rows = 1;
        assert_eq!(rows, r.block_on(rows_in(&url)) + outcome_rows, "{url}");
        w.shutdown();
        assert_eq!(stored().0, want, "{url}");
        assert_eq!(
            w.status().rows,
            r.block_on(rows_in(&url)) + outcome_rows,
            "{url}"
        );
        r.block_on(reader.close());
    }
}

/// Two instances writing their open bins into one database, and a run
/// that stops while another run of the same instance goes on: each
/// flush replaces only its own run's partial rows, so the store holds
/// every instance's and run's samples exactly once.
#[test]
fn partial_rows_of_other_instances_and_runs_are_left_alone() {
    let r = rt();
    for url in r.block_on(backends("open_fleet")) {
        let t0 = 1_800_000_000_000;
        let start = |instance: &str| {
            let clock = Arc::new(ManualClock::new(t0 + 1_000));
            let m = Arc::new(
                MemoryMetrics::with_clock(MemoryConfig::default(), clock.clone()).unwrap(),
            );
            let mut cfg = WriterConfig::new(url.clone(), instance);
            cfg.flush_interval = Duration::from_millis(20);
            let w = HistoryWriter::start(m.clone(), cfg, app_rt()).unwrap();
            wait_until("connected", || w.store().is_some());
            (Metrics::new(m), w)
        };
        let (a, wa) = start("a");
        let (b, wb) = start("b");
        // A second run of `a`, sharing the database while the first goes on.
        let (a2, wa2) = start("a");
        let reader = r.block_on(Store::open(&url, "reader")).unwrap();
        let per_instance = |instance: &str| -> (u64, f64) {
            let mut q = query("jobs", t0, t0 + 60_000, 60_000);
            q.instances = Some(vec![instance.into()]);
            let got = r.block_on(reader.query(&q)).unwrap();
            got.first()
                .and_then(|g| g.bins.first())
                .map_or((0, 0.0), |b| (b.count, b.sum))
        };
        let mut want_a = (0, 0.0);
        let mut want_b = (0, 0.0);
        for round in 1..=3 {
            let v = f64::from(round);
            a.record_counter("jobs", v, &[]);
            a2.record_counter("jobs", 10.0 * v, &[]);
            b.record_counter("jobs", 100.0 * v, &[]);
            want_a = (want_a.0 + 2, want_a.1 + 11.0 * v);
            want_b = (want_b.0 + 1, want_b.1 + 100.0 * v);
            wait_until(&format!("round {round} stored"), || {
                per_instance("a") == want_a && per_instance("b") == want_b
            });
        }
        // One run of `a` stops: its final rows replace its partial ones,
        // and the other run's partial rows stay.
        wa.shutdown();
        assert_eq!(per_instance("a"), want_a, "{url}");
        a2.record_counter("jobs", 1000.0, &[]);
        want_a = (want_a.0 + 1, want_a.1 + 1000.0);
        wait_until("the other run's flush", || per_instance("a") == want_a);
        assert_eq!(per_instance("b"), want_b, "{url}");
        wa2.shutdown();
        wb.shutdown();
        assert_eq!(
            (per_instance("a"), per_instance("b")),
            (want_a, want_b),
            "{url}"
        );
        r.block_on(reader.close());
        drop((a, b));
    }
}
