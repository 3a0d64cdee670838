//! Tests of the configuration: every source, every error.

use super::*;
use metrics_statsd::TagFlavor;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| m.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn field_and_value(e: AgentError) -> (String, String) {
    match e {
        AgentError::Config { field, value, .. } => (field, value),
        other => panic!("expected a config error, got {other}"),
    }
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("metrics-sdk-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn nothing_configured_is_memory_with_polling() {
    let c = AgentConfig::load(None, no_env).unwrap();
    assert_eq!(c.backend, BackendChoice::Memory);
    assert!(c.system_polling);
    assert!(c.backend.memory() && !c.backend.statsd());
    assert_eq!(c, AgentConfig::default());
}

#[test]
fn json_file() {
    let p = temp_file(
        "a.json",
        r#"{"backend": "statsd", "collection_interval": 2.5, "retention_days": 7,
            "export_endpoints": ["out.prom"],
            "statsd": {"addr": "127.0.0.1:9125", "prefix": "svc", "flavor": "etsy"}}"#,
    );
    let c = AgentConfig::load(Some(&p), no_env).unwrap();
    assert_eq!(c.backend, BackendChoice::Statsd);
    assert_eq!(c.collection_interval, 2.5);
    assert_eq!(c.statsd.addr, "127.0.0.1:9125");
    assert_eq!(c.statsd.flavor, TagFlavor::Etsy);
    assert_eq!(c.metrics_config().export_endpoints, vec!["out.prom"]);
    assert_eq!(c.metrics_config().retention_days, 7.0);
}

#[test]
fn toml_file() {
    let p = temp_file(
        "a.toml",
        "backend = \"both\"\nsystem_polling = false\n[statsd]\nprefix = \"api\"\n[statsd.common_tags]\nenv = \"prod\"\n[memory]\ncardinality_limit = 50\n",
    );
    let c = AgentConfig::load(Some(&p), no_env).unwrap();
    assert_eq!(c.backend, BackendChoice::Both);
    assert!(!c.system_polling);
    assert_eq!(c.statsd.common_tags["env"], "prod");
    assert_eq!(c.memory.cardinality_limit, 50);
}

#[test]
fn former_names_still_configure() {
    // Files: `system_sampling` for `system_polling`, an aggregation's
    // `window` for `batch`.
    let c = AgentConfig::from_toml_str(
        "system_sampling = false\n[[aggregations]]\nmetric = \"lat\"\nwindow = \"2s\"\nfunctions = [\"max\"]\n",
    )
    .unwrap();
    assert!(!c.system_polling);
    assert_eq!(
        c.aggregations[0].spec("aggregations[0]").unwrap().batch,
        crate::AggregationBatch::Time(Duration::from_secs(2))
    );
    let both = r#"{"system_polling": true, "system_sampling": false}"#;
    assert!(
        AgentConfig::from_json_str(both).is_err(),
        "one name at a time"
    );
    // Variables: the former names when the new ones are unset.
    let old = [
        ("METRICS_SYSTEM_SAMPLING", "off"),
        ("METRICS_SAMPLE_INTERVAL", "2s"),
    ];
    let c = AgentConfig::load(None, env(&old)).unwrap();
    assert!(!c.system_polling);
    assert_eq!(c.collection_interval, 2.0);
    let new_wins = [
        ("METRICS_SYSTEM_SAMPLING", "off"),
        ("METRICS_SYSTEM_POLLING", "on"),
        ("METRICS_SAMPLE_INTERVAL", "2s"),
        ("METRICS_COLLECTION_INTERVAL", "3s"),
    ];
    let c = AgentConfig::load(None, env(&new_wins)).unwrap();
    assert!(c.system_polling);
    assert_eq!(c.collection_interval, 3.0);
}

#[test]
fn every_backend_choice_from_env() {
    for (v, want) in [
        ("memory", BackendChoice::Memory),
        ("statsd", BackendChoice::Statsd),
        ("BOTH", BackendChoice::Both),
    ] {
        let c = AgentConfig::load(None, env(&[("METRICS_BACKEND", v)])).unwrap();
        assert_eq!(c.backend, want);
        // Its name is its configuration value, and reads back as it.
        let name = serde_json::to_value(want).unwrap();
        assert_eq!(want.as_str(), name.as_str().unwrap());
        assert_eq!(want.to_string().parse::<BackendChoice>().unwrap(), want);
    }
}

#[test]
#[cfg(feature = "push")]
fn env_sets_every_field() {
    let c = AgentConfig::load(
        None,
        env(&[
            ("METRICS_BACKEND", "both"),
            ("METRICS_STATSD_ADDR", "127.0.0.1:9999"),
            ("METRICS_STATSD_FLAVOR", "none"),
            ("METRICS_PREFIX", "web"),
            ("METRICS_COMMON_TAGS", "env=prod, region=eu"),
            ("METRICS_SYSTEM_POLLING", "off"),
            ("METRICS_COLLECTION_INTERVAL", "500ms"),
            ("METRICS_RETENTION_DAYS", "3"),
            ("METRICS_EXPORT_ENDPOINTS", "a.json, http://127.0.0.1:1/x"),
            ("METRICS_STREAM_BUFFER", "16"),
            ("METRICS_HEALTH_CHECK_TIMEOUT", "250ms"),
        ]),
    )
    .unwrap();
    assert_eq!(c.backend, BackendChoice::Both);
    assert_eq!(c.statsd.addr, "127.0.0.1:9999");
    assert_eq!(c.statsd.flavor, TagFlavor::None);
    assert_eq!(c.statsd.prefix, "web");
    assert_eq!(c.statsd.common_tags.len(), 2);
    assert_eq!(c.statsd.common_tags["region"], "eu");
    assert!(!c.system_polling);
    assert_eq!(c.collection_interval, 0.5);
    assert_eq!(c.retention_days, 3.0);
    assert_eq!(c.export_endpoints, vec!["a.json", "http://127.0.0.1:1/x"]);
    assert_eq!(c.stream_buffer, 16);
    assert_eq!(c.health.check_timeout_ms, 250);
    let m = c.memory_config().unwrap();
    assert_eq!(
        m.windows.last().unwrap().span,
        Duration::from_secs(3 * 86_400)
    );
}

#[test]
fn env_overrides_file_which_overrides_defaults() {
    let p = temp_file(
        "b.json",
        r#"{"backend": "statsd", "statsd": {"prefix": "file", "addr": "127.0.0.1:7000"}}"#,
    );
    let c = AgentConfig::load(
        Some(&p),
        env(&[("METRICS_BACKEND", "both"), ("METRICS_PREFIX", "env")]),
    )
    .unwrap();
    assert_eq!(c.backend, BackendChoice::Both, "env wins over the file");
    assert_eq!(c.statsd.prefix, "env");
    assert_eq!(c.statsd.addr, "127.0.0.1:7000", "the file's value stays");
    assert_eq!(c.collection_interval, 10.0, "the default stays");
}

#[test]
fn bad_env_values_name_variable_and_value() {
    for (k, v) in [
        ("METRICS_BACKEND", "memcache"),
        ("METRICS_STATSD_FLAVOR", "influx"),
        ("METRICS_COMMON_TAGS", "env"),
        ("METRICS_SYSTEM_POLLING", "sometimes"),
        ("METRICS_SYSTEM_SAMPLING", "sometimes"),
        ("METRICS_COLLECTION_INTERVAL", "10 parsecs"),
        ("METRICS_COLLECTION_INTERVAL", "50ms"),
        ("METRICS_COLLECTION_INTERVAL", "-1s"),
        ("METRICS_SAMPLE_INTERVAL", "-1s"),
        ("METRICS_RETENTION_DAYS", "-2"),
        ("METRICS_STREAM_BUFFER", "0"),
        ("METRICS_HEALTH_CHECK_TIMEOUT", "0s"),
    ] {
        let e = AgentConfig::load(None, env(&[(k, v)])).unwrap_err();
        let msg = e.to_string();
        let (field, value) = field_and_value(e);
        assert_eq!((field.as_str(), value.as_str()), (k, v), "{msg}");
        assert!(msg.contains(k) && msg.contains(v), "{msg}");
        assert_eq!(msg.matches(v).count(), 1, "the value appears once: {msg}");
    }
}

#[test]
fn aggregations_from_a_file_and_their_errors() {
    let c = AgentConfig::from_toml_str(
        "[[aggregations]]\nmetric = \"lat\"\nbatch = \"500ms\"\nfunctions = [\"p99\", \"max\"]\n\
         [[aggregations]]\nmetric = \"size\"\ncount = 10\nfunctions = [\"sum\"]\ntarget = \"stream\"\n",
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.aggregations[1].target, AggregationTarget::Stream);
    let spec = c.aggregations[0].spec("aggregations[0]").unwrap();
    assert_eq!(
        spec.batch,
        crate::AggregationBatch::Time(Duration::from_millis(500))
    );
    let cases = [
        (
            r#"{"aggregations": [{"metric": "m", "functions": ["sum"]}]}"#,
            "aggregations[0].batch",
            "",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "batch": "1s", "count": 5, "functions": ["sum"]}]}"#,
            "aggregations[0].batch",
            "1s (and count = 5)",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "batch": "soon", "functions": ["sum"]}]}"#,
            "aggregations[0].batch",
            "soon",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "window": "soon", "functions": ["sum"]}]}"#,
            "aggregations[0].batch",
            "soon",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "count": 3, "functions": ["median-ish"]}]}"#,
            "aggregations[0].functions",
            "median-ish",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "count": 0, "functions": ["sum"]}]}"#,
            "aggregations[0].batch",
            "0",
        ),
        (
            r#"{"aggregations": [{"metric": "", "count": 3, "functions": ["sum"]}]}"#,
            "aggregations[0].metric",
            "",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "count": 3, "functions": []}]}"#,
            "aggregations[0].functions",
            "[]",
        ),
        (
            r#"{"aggregations": [{"metric": "m", "count": 3, "functions": ["sum"], "target": "disk"}]}"#,
            "aggregations[0].target",
            "disk",
        ),
    ];
    for (json, field, value) in cases {
        let e = AgentConfig::from_json_str(json)
            .and_then(|c| c.validate())
            .unwrap_err();
        assert_eq!(
            field_and_value(e),
            (field.to_owned(), value.to_owned()),
            "{json}"
        );
    }
}

#[test]
fn bad_file_values_name_field_path_and_value() {
    let cases = [
        (r#"{"backend": "memcache"}"#, "backend", "memcache"),
        (
            r#"{"statsd": {"flavor": "influx"}}"#,
            "statsd.flavor",
            "influx",
        ),
        (
            r#"{"collection_interval": "often"}"#,
            "collection_interval",
            "often",
        ),
        (r#"{"statsd": {"adr": "x"}}"#, "statsd.adr", "x"),
        (r#"{"colection_interval": 5}"#, "colection_interval", "5"),
        (
            r#"{"collection_interval": 0.01}"#,
            "collection_interval",
            "0.01",
        ),
        (r#"{"retention_days": 0}"#, "retention_days", "0"),
        (
            r#"{"backend": "statsd", "statsd": {"max_datagram_bytes": 10}}"#,
            "statsd.max_datagram_bytes",
            "10",
        ),
        (
            r#"{"memory": {"cardinality_limit": 0}}"#,
            "memory.cardinality_limit",
            "0",
        ),
        (
            r#"{"health": {"error_rate_degraded": 2}}"#,
            "health.error_rate_degraded",
            "2",
        ),
        (r#"{"export_endpoints": [""]}"#, "export_endpoints", ""),
    ];
    for (json, field, value) in cases {
        let e = AgentConfig::from_json_str(json)
            .and_then(|c| c.validate().map(|()| c))
            .unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            field_and_value(e),
            (field.to_owned(), value.to_owned()),
            "{json}: {msg}"
        );
    }
    let e = AgentConfig::from_toml_str("backend = 3").unwrap_err();
    assert_eq!(field_and_value(e), ("backend".into(), "3".into()));
}

#[test]
fn unreadable_or_malformed_files_say_so() {
    let p = temp_file("c.yaml", "backend: memory");
    let (field, value) = field_and_value(AgentConfig::load(Some(&p), no_env).unwrap_err());
    assert_eq!(field, "config file");
    assert!(value.ends_with("c.yaml"));
    let p = temp_file("d.json", "{not json");
    assert!(matches!(
        AgentConfig::load(Some(&p), no_env),
        Err(AgentError::Parse(_))
    ));
    let missing = std::env::temp_dir().join("metrics-sdk-no-such-file.toml");
    assert!(matches!(
        AgentConfig::load(Some(&missing), no_env),
        Err(AgentError::Io { .. })
    ));
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    for bad in ["-1s", "-1", "10 parsecs", "s", "1.5.2s"] {
        let e = parse_duration(bad).unwrap_err();
        assert!(
            bad.len() < 3 || !e.contains(bad),
            "the message does not repeat the input: {e}"
        );
    }
}

#[test]
fn an_empty_variable_is_an_error_naming_it() {
    for k in ENV_VARS {
        let e = AgentConfig::load(None, env(&[(k, " ")])).unwrap_err();
        let msg = e.to_string();
        assert_eq!(field_and_value(e).0, k, "{msg}");
        assert!(msg.starts_with("invalid configuration: "), "{msg}");
        assert!(msg.contains("empty"), "{msg}");
    }
}

#[test]
fn a_bad_statsd_address_names_the_variable_or_the_field() {
    for bad in ["nonsense", "127.0.0.1", "host:0", ":8125", "host:99999"] {
        let e = AgentConfig::load(None, env(&[("METRICS_STATSD_ADDR", bad)])).unwrap_err();
        assert_eq!(
            field_and_value(e),
            ("METRICS_STATSD_ADDR".into(), bad.into())
        );
    }
    for good in ["127.0.0.1:8125", "localhost:8125", "[::1]:8125"] {
        AgentConfig::load(None, env(&[("METRICS_STATSD_ADDR", good)])).unwrap();
    }
    let e = AgentConfig::from_toml_str("backend = \"statsd\"\n[statsd]\naddr = \"nope\"\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(field_and_value(e), ("statsd.addr".into(), "nope".into()));
}

#[cfg(feature = "store-postgres")]
#[test]
fn the_store_url_is_checked_and_named() {
    let c = AgentConfig::from_toml_str("store = \"postgres://me@127.0.0.1/m\"").unwrap();
    assert_eq!(c.store.as_deref(), Some("postgres://me@127.0.0.1/m"));
    c.validate().unwrap();
    for bad in ["mysql://h/db", ""] {
        let c = AgentConfig {
            store: Some(bad.into()),
            ..AgentConfig::default()
        };
        assert_eq!(field_and_value(c.validate().unwrap_err()).0, "store");
    }
    // A password is not repeated in the error.
    let (_, value) =
        field_and_value(store_url("METRICS_STORE", "postgres://u:pw@h:x/db").unwrap_err());
    assert_eq!(value, "postgres://u:***@h:x/db");
}

#[cfg(any(feature = "store-sqlite", feature = "store-postgres"))]
#[test]
fn store_retention_is_a_list_of_rings() {
    let c = AgentConfig::from_toml_str("store_retention = [\"10s:1h\", \"1m:1d\"]").unwrap();
    let rings = c.store_rings().unwrap();
    assert_eq!(rings.len(), 2);
    assert_eq!(rings[1].bin, Duration::from_secs(60));
    assert_eq!(rings[1].keep, Duration::from_secs(86_400));
    assert_eq!(
        AgentConfig::default().store_rings().unwrap(),
        metrics_store::StoreRing::defaults()
    );
    for (bad, at) in [
        (vec!["10s"], 0),
        (vec!["10s:1h", "15s:2h"], 1),
        (vec!["10s:1h", "1m:30m"], 1),
        (vec!["1h:1m"], 0),
        (vec!["soon:1h"], 0),
    ] {
        let c = AgentConfig {
            store_retention: bad.iter().map(|s| (*s).to_owned()).collect(),
            ..AgentConfig::default()
        };
        let (field, _) = field_and_value(c.validate().unwrap_err());
        assert_eq!(field, format!("store_retention[{at}]"), "{bad:?}");
    }
}

#[test]
#[cfg(feature = "logging")]
fn the_store_query_timeout_and_the_log_are_read_and_checked() {
    let c = AgentConfig::from_toml_str(
        "store_query_timeout_ms = 250\nlog = \"warn,metrics_store=debug\"",
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.store_query_timeout(), Duration::from_millis(250));
    assert_eq!(c.log.as_deref(), Some("warn,metrics_store=debug"));
    assert_eq!(
        AgentConfig::default().store_query_timeout(),
        Duration::from_secs(1)
    );
    let zero = AgentConfig {
        store_query_timeout_ms: 0,
        ..AgentConfig::default()
    };
    assert_eq!(
        field_and_value(zero.validate().unwrap_err()).0,
        "store_query_timeout_ms"
    );
    let loud = AgentConfig {
        log: Some("metrics_store=loud".into()),
        ..AgentConfig::default()
    };
    assert_eq!(
        field_and_value(loud.validate().unwrap_err()),
        ("log".into(), "metrics_store=loud".into())
    );
}

#[test]
#[cfg(not(any(feature = "store-sqlite", feature = "store-postgres")))]
fn without_the_store_feature_a_store_is_refused_by_name() {
    for (c, field) in [
        (
            AgentConfig {
                store: Some("sqlite://h.db".into()),
                ..AgentConfig::default()
            },
            "store",
        ),
        (
            AgentConfig {
                store_retention: vec!["10s:1h".into()],
                ..AgentConfig::default()
            },
            "store_retention[0]",
        ),
    ] {
        let (got, _) = field_and_value(c.validate().unwrap_err());
        assert_eq!(got, field);
    }
    let off = AgentConfig {
        store: Some("off".into()),
        ..AgentConfig::default()
    };
    off.validate().unwrap();
    // The builder, which takes `store` out of the configuration it hands
    // the agent, refuses it too.
    let stored = AgentConfig {
        store: Some("sqlite://h.db".into()),
        ..AgentConfig::default()
    };
    let e = crate::Agent::builder().config(stored).start().unwrap_err();
    assert_eq!(field_and_value(e).0, "store");
}

#[test]
#[cfg(not(feature = "push"))]
fn without_the_push_feature_only_file_endpoints_are_accepted() {
    let c = AgentConfig {
        export_endpoints: vec!["http://127.0.0.1:9/x.json".into()],
        ..AgentConfig::default()
    };
    assert_eq!(
        field_and_value(c.validate().unwrap_err()).0,
        "export_endpoints"
    );
    let c = AgentConfig {
        export_endpoints: vec!["/tmp/x.json".into()],
        ..AgentConfig::default()
    };
    c.validate().unwrap();
}

#[test]
#[cfg(not(feature = "logging"))]
fn without_the_logging_feature_a_log_setting_is_refused_by_name() {
    let c = AgentConfig {
        log: Some("info".into()),
        ..AgentConfig::default()
    };
    assert_eq!(
        field_and_value(c.validate().unwrap_err()),
        ("log".into(), "info".into())
    );
}

#[test]
fn every_duration_setting_takes_a_human_form_or_its_number() {
    let human = AgentConfig::from_toml_str(
        r#"
        collection_interval = "500ms"
        retention_days = "36h"
        store_query_timeout_ms = "2s"
        [health]
        check_timeout_ms = "1s"
        error_rate_window_secs = "5m"
        [statsd]
        flush_interval_ms = "250ms"
        shutdown_timeout_ms = "3s"
        shutdown_probe_ms = "20ms"
        retry_max_age_ms = "1m"
        [memory]
        idle_expiry_secs = "10m"
        windows = [{ span = "5m", bin = "10s" }, { span = "1h", bin = "1m" }]
        "#,
    )
    .unwrap();
    human.validate().unwrap();
    let numbers = AgentConfig::from_toml_str(
        r#"
        collection_interval = 0.5
        retention_days = 1.5
        store_query_timeout_ms = 2000
        [health]
        check_timeout_ms = 1000
        error_rate_window_secs = 300
        [statsd]
        flush_interval_ms = 250
        shutdown_timeout_ms = 3000
        shutdown_probe_ms = 20
        retry_max_age_ms = 60000
        [memory]
        idle_expiry_secs = 600
        windows = [{ span = 300, bin = 10 }, { span = 3600, bin = 60 }]
        "#,
    )
    .unwrap();
    assert_eq!(human, numbers);
    assert_eq!(human.health.error_rate_window(), Duration::from_secs(300));
    assert_eq!(human.statsd.flush_interval_ms, 250);
    assert_eq!(human.memory.windows[1].bin, Duration::from_secs(60));
}

#[test]
fn a_duration_that_does_not_fit_names_its_field() {
    for (json, field, value) in [
        (
            r#"{"statsd": {"flush_interval_ms": "soon"}}"#,
            "statsd.flush_interval_ms",
            "soon",
        ),
        (
            r#"{"health": {"error_rate_window_secs": "1500ms"}}"#,
            "health.error_rate_window_secs",
            "1500ms",
        ),
        (
            r#"{"memory": {"idle_expiry_secs": -5}}"#,
            "memory.idle_expiry_secs",
            "-5",
        ),
        (
            r#"{"memory": {"windows": [{"span": "an hour", "bin": 10}]}}"#,
            "memory.windows[0].span",
            "an hour",
        ),
        (
            r#"{"store_query_timeout_ms": true}"#,
            "store_query_timeout_ms",
            "true",
        ),
    ] {
        let e = AgentConfig::from_json_str(json).unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            field_and_value(e),
            (field.to_owned(), value.to_owned()),
            "{json}: {msg}"
        );
    }
}

#[test]
fn retention_days_from_the_environment_takes_a_duration() {
    let c = AgentConfig::load(None, env(&[("METRICS_RETENTION_DAYS", "36h")])).unwrap();
    assert_eq!(c.retention_days, 1.5);
    let c = AgentConfig::load(None, env(&[("METRICS_RETENTION_DAYS", "7")])).unwrap();
    assert_eq!(c.retention_days, 7.0);
}

#[test]
fn an_error_in_a_file_names_the_file() {
    let p = temp_file("e.toml", "[statsd]\nflush_interval_ms = \"soon\"\n");
    let e = AgentConfig::load(Some(&p), no_env).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&p.display().to_string()), "{msg}");
    assert_eq!(
        field_and_value(e),
        ("statsd.flush_interval_ms".into(), "soon".into())
    );
    let p = temp_file("f.json", "{not json");
    let msg = AgentConfig::load(Some(&p), no_env).unwrap_err().to_string();
    assert!(msg.contains(&p.display().to_string()), "{msg}");
}

#[test]
#[cfg(all(feature = "store-sqlite", not(feature = "store-postgres")))]
fn a_postgres_store_in_a_sqlite_only_build_is_refused_naming_the_feature() {
    let c = AgentConfig {
        store: Some("postgres://u@db/metrics".into()),
        ..AgentConfig::default()
    };
    let (field, _) = field_and_value(c.validate().unwrap_err());
    assert_eq!(field, "store");
    let c = AgentConfig {
        store: Some("postgres://u@db/metrics".into()),
        ..AgentConfig::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("store-postgres"), "{e}");
    let ok = AgentConfig {
        store: Some("sqlite://h.db".into()),
        ..AgentConfig::default()
    };
    ok.validate().unwrap();
}

#[test]
fn the_exposition_table_sets_the_agents_exporter_and_bad_buckets_are_refused() {
    let c = AgentConfig::from_toml_str(
        "system_polling = false\n[exposition]\ndistributions = \"summary\"\n",
    )
    .unwrap();
    assert_eq!(
        c.exposition.distributions,
        metrics_exposition::DistributionFormat::Summary
    );
    let e = AgentConfig::from_toml_str("[exposition]\ntimer_buckets = [1.0, 0.5]\n")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        field_and_value(e),
        ("exposition.timer_buckets".into(), "[1.0, 0.5]".into())
    );
    // The former place, under the memory backend, is refused by name.
    let e = AgentConfig::from_toml_str("[memory.exposition]\ndistributions = \"summary\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("exposition"), "{e}");
}

#[test]
fn remote_write_is_off_until_a_url_is_set() {
    let c = AgentConfig::load(None, no_env).unwrap();
    assert_eq!(c.remote_write.enabled_url(), None);
    let c = AgentConfig::load(None, env(&[("METRICS_REMOTE_WRITE_URL", "off")])).unwrap();
    assert_eq!(c.remote_write.enabled_url(), None);
}

#[cfg(feature = "remote-write")]
#[test]
fn remote_write_from_a_file_and_the_environment() {
    let p = temp_file(
        "rw.toml",
        r#"
        [remote_write]
        url = "http://127.0.0.1:9090/api/v1/write"
        interval = "1s"
        timeout = 2
        queue = 10
        headers = { "X-Scope-OrgID" = "team-a" }
        "#,
    );
    let c = AgentConfig::load(Some(&p), no_env).unwrap();
    let rw = &c.remote_write;
    assert_eq!(rw.enabled_url(), Some("http://127.0.0.1:9090/api/v1/write"));
    assert_eq!((rw.interval, rw.timeout, rw.queue), (1.0, 2.0, 10));
    let push = rw.push_config(rw.enabled_url().unwrap());
    assert_eq!(push.interval, std::time::Duration::from_secs(1));
    assert_eq!(push.headers, [("X-Scope-OrgID".into(), "team-a".into())]);

    // The environment wins.
    let c = AgentConfig::load(
        Some(&p),
        env(&[
            (
                "METRICS_REMOTE_WRITE_URL",
                "http://10.0.0.1:8428/api/v1/write",
            ),
            ("METRICS_REMOTE_WRITE_INTERVAL", "500ms"),
            ("METRICS_REMOTE_WRITE_TIMEOUT", "3s"),
            ("METRICS_REMOTE_WRITE_QUEUE", "7"),
            (
                "METRICS_REMOTE_WRITE_HEADERS",
                "Authorization=Basic dXNlcjpwYXNz==",
            ),
        ]),
    )
    .unwrap();
    let rw = &c.remote_write;
    assert_eq!(rw.enabled_url(), Some("http://10.0.0.1:8428/api/v1/write"));
    assert_eq!((rw.interval, rw.timeout, rw.queue), (0.5, 3.0, 7));
    assert_eq!(rw.headers["Authorization"], "Basic dXNlcjpwYXNz==");
}

#[test]
fn bad_remote_write_settings_are_named() {
    let e = AgentConfig::from_toml_str("[remote_write]\nurl = \"http://x:1/\"\nbatch = 3\n")
        .unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");
    let (field, _) = field_and_value(
        AgentConfig::load(None, env(&[("METRICS_REMOTE_WRITE_QUEUE", "0")])).unwrap_err(),
    );
    assert_eq!(field, "METRICS_REMOTE_WRITE_QUEUE");
    let e = AgentConfig::load(
        None,
        env(&[("METRICS_REMOTE_WRITE_HEADERS", "Bearer secret")]),
    )
    .unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
    let mut c = AgentConfig::default();
    c.remote_write.queue = 0;
    assert_eq!(
        field_and_value(c.validate().unwrap_err()).0,
        "remote_write.queue"
    );
}

#[cfg(feature = "remote-write")]
#[test]
fn a_remote_write_url_that_cannot_work_is_refused_by_name() {
    let mut c = AgentConfig::default();
    c.remote_write.url = Some("https://mimir.example/api/v1/push".into());
    assert_eq!(
        field_and_value(c.validate().unwrap_err()).0,
        "remote_write.url"
    );
    c.remote_write.url = Some("http://127.0.0.1:9090/api/v1/write".into());
    c.remote_write
        .headers
        .insert("Content-Type".into(), "text/plain".into());
    assert_eq!(
        field_and_value(c.validate().unwrap_err()).0,
        "remote_write.headers.Content-Type"
    );
    c.remote_write.headers.clear();
    c.backend = BackendChoice::Statsd;
    assert_eq!(
        field_and_value(c.validate().unwrap_err()).0,
        "remote_write.url"
    );
}

#[cfg(not(feature = "remote-write"))]
#[test]
fn without_the_remote_write_feature_a_url_is_refused() {
    let e = AgentConfig::load(
        None,
        env(&[("METRICS_REMOTE_WRITE_URL", "http://127.0.0.1:9/")]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("remote-write"), "{e}");
}
