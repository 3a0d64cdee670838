//! The composed system pushes to a remote write receiver when the
//! configuration names one, reports on it in health, and pushes everything
//! recorded once more when it stops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use metrics_exposition::remote_write::{WriteRequest, decode};
use metrics_protocol::app::MetricsSystem;
use metrics_protocol::backend::HealthStatus;
use metrics_sdk::{Agent, AgentConfig};
use parking_lot::Mutex;

/// A receiver on a thread of its own: plain HTTP/1.1, keep-alive, every
/// request decoded and answered 204.
fn receiver() -> (String, Arc<Mutex<Vec<WriteRequest>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut len = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    g.lock().push(decode(&body).unwrap());
                    w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                }
            });
        }
    });
    (url, got)
}

fn total(got: &Mutex<Vec<WriteRequest>>) -> Option<f64> {
    got.lock().iter().rev().find_map(|r| {
        r.timeseries
            .iter()
            .find(|t| t.label("__name__") == Some("orders_total"))
            .map(|t| t.samples[0].value)
    })
}

#[test]
fn the_configured_receiver_gets_the_totals() {
    let (url, got) = receiver();
    let mut config = AgentConfig {
        system_polling: false,
        ..AgentConfig::default()
    };
    config.remote_write.url = Some(url);
    config.remote_write.interval = 0.05;
    let mut running = Agent::builder().config(config).start().unwrap();
    let metrics = running.metrics();
    metrics.record_counter("orders", 3.0, &[("channel", "web")]);
    for _ in 0..6000 {
        if total(&got) == Some(3.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(total(&got), Some(3.0));
    let health = running.agent().system_health();
    let check = health
        .checks
        .iter()
        .find(|c| c.name == "remote_write")
        .expect("a remote_write check");
    assert_eq!(check.status, HealthStatus::Healthy, "{check:?}");
    let message = check.message.as_deref().unwrap_or("");
    assert!(
        message.contains(" sent (") && message.contains("0 samples dropped"),
        "{message}"
    );

    // Recorded just before the stop: the last push carries it.
    metrics.record_counter("orders", 2.0, &[("channel", "web")]);
    running.shutdown().unwrap();
    assert_eq!(total(&got), Some(5.0));
    let st = running.remote_write_status().unwrap();
    assert_eq!((st.dropped, st.queued), (0, 0), "{st:?}");
    assert_eq!(st.sent as usize, got.lock().len());
}
