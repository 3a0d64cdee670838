//! The builder: an embedded system serves every API path and keeps history
//! as the main program does, every setting is honoured or refused by name,
//! and a part that cannot start leaves nothing running.

use std::net::{TcpListener, TcpStream};

use metrics_sdk::{Agent, AgentConfig, AgentError};

mod common;
use common::get;

fn field(e: AgentError) -> String {
    match e {
        AgentError::Config { field, .. } => field,
        other => panic!("expected a config error, got {other}"),
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("metrics-sdk-builder-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn the_agent_alone_refuses_to_drop_listen_or_store() {
    for (config, want) in [
        (
            AgentConfig {
                listen: Some("127.0.0.1:0".into()),
                ..AgentConfig::default()
            },
            "listen",
        ),
        (
            AgentConfig {
                store: Some("sqlite://x.db".into()),
                ..AgentConfig::default()
            },
            "store",
        ),
    ] {
        assert_eq!(field(Agent::new(config).unwrap_err()), want);
    }
    // `off` asks for nothing, so there is nothing to drop.
    let off = AgentConfig {
        listen: Some("off".into()),
        store: Some("off".into()),
        ..AgentConfig::default()
    };
    Agent::new(off).unwrap();
}

#[test]
fn an_embedded_system_serves_ranges_and_history_from_its_configuration() {
    let dir = temp_dir("serve");
    let config = AgentConfig {
        listen: Some("127.0.0.1:0".into()),
        store: Some(format!("sqlite://{}/h.sqlite", dir.display())),
        system_polling: false,
        ..AgentConfig::default()
    };
    let mut running = Agent::builder()
        .config(config)
        .instance("embedded")
        .start()
        .unwrap();
    let addr = running
        .http_addr()
        .expect("the configuration's listen is honoured");
    let metrics = running.metrics();
    for _ in 0..5 {
        metrics.record_histogram("jobs.latency", 12.0, &[("queue", "email")]);
    }
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("jobs_latency"), "{body}");
    // Range queries are wired: the explorer's query answers, not 501.
    let now = chrono::Utc::now().timestamp();
    let (status, body) = get(
        addr,
        &format!(
            "/api/v1/query_range?name=jobs.latency&start={}&end={}&step=10s",
            now - 600,
            now + 60
        ),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let counted: u64 = v["series"][0]["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    // Only bins wholly inside the range count; the open bin is not yet.
    assert!(counted <= 5, "{body}");
    // History is kept: the store's health check is registered (unhealthy
    // until the writer's first connection, so 200 or 503).
    let (status, body) = get(addr, "/api/v1/health");
    assert!(status == 200 || status == 503, "{status} {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(checks.contains(&"store"), "{body}");
    running.shutdown().unwrap();
    let st = running.history_status().expect("a store was asked for");
    assert!(st.written > 0, "{st:?}");
    assert!(running.http_addr().is_none());
    // The service is gone with the shutdown.
    assert!(TcpStream::connect(addr).is_err() || get(addr, "/metrics").0 != 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_part_that_cannot_start_is_an_error_naming_its_setting() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = Agent::builder().serve(addr).start().unwrap_err();
    assert_eq!(field(e), "listen");
    let e = Agent::builder().store("mysql://h/db").start().unwrap_err();
    assert_eq!(field(e), "store");
    let bad_listen = AgentConfig {
        listen: Some("nowhere".into()),
        ..AgentConfig::default()
    };
    let e = Agent::builder().config(bad_listen).start().unwrap_err();
    assert_eq!(field(e), "listen");
    // History is kept from the memory backend.
    let statsd_only = AgentConfig {
        backend: metrics_sdk::BackendChoice::Statsd,
        ..AgentConfig::default()
    };
    let e = Agent::builder()
        .config(statsd_only)
        .store(format!(
            "sqlite://{}/h.sqlite",
            temp_dir("statsd").display()
        ))
        .start()
        .unwrap_err();
    assert_eq!(field(e), "store");
}

#[test]
fn a_second_serve_is_refused_and_the_first_goes_on() {
    let mut running = Agent::builder()
        .serve("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let first = running.http_addr().unwrap();
    let e = running
        .serve("127.0.0.1:0".parse().unwrap(), Default::default())
        .unwrap_err();
    assert_eq!(field(e), "listen");
    assert_eq!(get(first, "/metrics").0, 200);
}

#[test]
fn a_system_serving_with_history_shuts_down_inside_an_async_runtime() {
    let dir = temp_dir("async");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut running = Agent::builder()
            .store(format!("sqlite://{}/h.sqlite", dir.display()))
            .serve("127.0.0.1:0".parse().unwrap())
            .start()
            .unwrap();
        running.metrics().increment("jobs", &[]);
        running.shutdown().unwrap();
        assert!(running.history_status().unwrap().written > 0);
        // And one dropped without a shutdown.
        let dropped = Agent::builder()
            .store(format!("sqlite://{}/h2.sqlite", dir.display()))
            .serve("127.0.0.1:0".parse().unwrap())
            .start()
            .unwrap();
        dropped.metrics().increment("jobs", &[]);
        drop(dropped);
    });
    let _ = std::fs::remove_dir_all(&dir);
}
