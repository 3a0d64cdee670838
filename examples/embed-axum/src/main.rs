//! An axum application that embeds the metrics system: its own routes
//! (`POST /orders`, `GET /orders/count`) beside ours (`/metrics`, the JSON
//! API under `/api/v1/`, the dashboard page at `/`), on one listener and
//! the application's tokio runtime.
//!
//! ```sh
//! cargo run -p metrics-example-axum -- 127.0.0.1:9465
//! curl -X POST 127.0.0.1:9465/orders && curl 127.0.0.1:9465/metrics
//! ```
//!
//! Ctrl-C stops it; a second argument, a number of seconds, stops it after
//! that long.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_http::HttpConfig;
use metrics_protocol::Metrics;
use metrics_protocol::app::MetricsSystem;
use metrics_sdk::{Agent, AgentConfig};

/// The application's own state: what its handlers record with, and the
/// system they read back from.
#[derive(Clone)]
struct App {
    metrics: Metrics,
    agent: Agent,
}

/// Places an order: counted, and timed with its outcome.
async fn place_order(State(app): State<App>) -> Json<&'static str> {
    let timing = app.metrics.start("orders.place", &[("channel", "web")]);
    app.metrics
        .increment("orders.placed", &[("channel", "web")]);
    timing.success();
    Json("placed")
}

/// Reads back what the handlers recorded: the orders placed so far.
async fn order_count(State(app): State<App>) -> String {
    let placed = app
        .agent
        .aggregator()
        .metric_summary("orders.placed", None)
        .map_or(0.0, |s| s.sum);
    format!("{placed}\n")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9465".into())
        .parse()?;
    let run_for = args.next().map(|s| s.parse::<u64>()).transpose()?;

    // The system, with its configuration from METRICS_* variables; it does
    // not serve on a port of its own: its routes join the application's.
    let config = AgentConfig::load(None, |k| std::env::var(k).ok())?;
    let mut running = Agent::builder().config(config).start()?;
    let app = App {
        metrics: running.metrics(),
        agent: running.agent().clone(),
    };
    let http = HttpConfig::default();
    let router = Router::new()
        .route("/orders", post(place_order))
        .route("/orders/count", get(order_count))
        .with_state(app)
        .merge(metrics_http::router(running.http_source(), &http));

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}/", listener.local_addr()?);
        // Ctrl-C (SIGINT), or the time given.
        let stop = async move {
            let timer = async {
                match run_for {
                    Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = timer => {}
            }
        };
        metrics_http::serve(listener, router, &http, stop).await;
        Ok::<(), std::io::Error>(())
    })?;
    running.shutdown()?;
    Ok(())
}
