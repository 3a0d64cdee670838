//! `metrics-agent`: the main program of the metrics facade, an application
//! built on `metrics-sdk` as any other would be.
//!
//! It builds an [`Agent`] from the configuration (defaults, then
//! `--config FILE` in JSON or TOML, then `METRICS_*` environment
//! variables), runs a small workload written against the protocol traits
//! only (as a library would be), prints a live summary every few seconds,
//! and a final export on Ctrl-C or after `--duration`. While it runs it
//! serves `/metrics`, the JSON API and a live dashboard page at `/`
//! (`metrics-http`) on
//! `127.0.0.1:9464`, or where `--listen`, `METRICS_LISTEN` or the config
//! file's `listen` say (`off`: nowhere). History is kept across restarts
//! in `metrics-data/` (SQLite) under the working directory, or where
//! `--store`, `METRICS_STORE` or the config file's `store` say
//! (`postgres://...` for a database shared by several agents, `off` for
//! none). A clean stop writes everything; a killed process loses at most
//! what it recorded since the last flush (every 2 s, the open bin's state
//! so far included).
//!
//! Everything runs on one tokio runtime of two worker threads: the HTTP
//! service, the history writer, the resource poller, health checks, the
//! aggregation ticker, the stream subscriber, Ctrl-C and the workload are
//! tasks on it; the main thread prints the summaries.
//!
//! This crate is the program only; everything it composes is in
//! `metrics-sdk`. This file holds the command line, the choices it drives
//! (listen address, store, instance name) and the run loop; `report.rs`
//! what the demo prints (the live summary, the stream subscriber);
//! `workload.rs` the workload.

mod report;
mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use metrics_http::HttpConfig;
use metrics_protocol::app::{AsyncMetricsSystem, MetricsSystem};
use metrics_sdk::config::parse_duration;
use metrics_sdk::{
    Agent, AgentConfig, AgentError, AggregationSpec, CheckOutcome, ExportFormat, FnCheck, Running,
};
use report::{Out, StreamCounts, summary, watch_failures};

#[derive(Parser)]
#[command(
    about = "Run a workload through the metrics facade and watch it live",
    after_help = "Environment: METRICS_BACKEND=memory|statsd|both, METRICS_STATSD_ADDR, \
METRICS_STATSD_FLAVOR, METRICS_PREFIX, METRICS_COMMON_TAGS=k=v,k2=v2, \
METRICS_SYSTEM_POLLING=on|off, METRICS_COLLECTION_INTERVAL, METRICS_RETENTION_DAYS, \
METRICS_EXPORT_ENDPOINTS, METRICS_STREAM_BUFFER, METRICS_HEALTH_CHECK_TIMEOUT \
(they override the --config file); METRICS_LISTEN=ADDR|off (--listen wins over it), \
METRICS_HTTP_TOKEN (a bearer token every HTTP request must carry); \
METRICS_STORE=URL|off (--store wins over it), METRICS_INSTANCE (this agent's name in a shared store); \
METRICS_REMOTE_WRITE_URL=http://HOST:PORT/api/v1/write|off, METRICS_REMOTE_WRITE_INTERVAL, \
METRICS_REMOTE_WRITE_TIMEOUT, METRICS_REMOTE_WRITE_QUEUE, METRICS_REMOTE_WRITE_HEADERS=Name=value,... \
(pushes to a Prometheus remote write receiver)."
)]
struct Args {
    /// A JSON or TOML configuration file (see the README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Stop after this long (e.g. 10s, 500ms, 2m); default: run until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Time between two live summaries.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    report_every: Duration,
    /// Format of the final export printed at the end (json, csv,
    /// prometheus, openmetrics).
    #[arg(long, default_value = "prometheus")]
    format: ExportFormat,
    /// Do not print the final export (the export endpoints still get it).
    #[arg(long)]
    no_export: bool,
    /// Workload tasks (concurrent requests).
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Where to serve /metrics and the JSON API: an address such as
    /// 127.0.0.1:9464 (the default), or `off`.
    #[arg(long, value_name = "ADDR|off")]
    listen: Option<String>,
    /// Where history is kept across restarts: sqlite://PATH, a path,
    /// postgres://..., or `off` (default: metrics-data/ here).
    #[arg(long, value_name = "URL|off")]
    store: Option<String>,
}

/// `--store`, else `METRICS_STORE`, else the config file's `store`, else
/// `metrics-data/`; an unusable value is a configuration error naming its
/// source.
fn store_choice(
    flag: Option<&str>,
    env: Option<String>,
    file: Option<&str>,
) -> Result<metrics_store::StoreUrl, AgentError> {
    let env = env.filter(|v| !v.trim().is_empty());
    match (flag, env.as_deref(), file) {
        (Some(v), _, _) => metrics_sdk::config::store_url("--store", v),
        (None, Some(v), _) => metrics_sdk::config::store_url("METRICS_STORE", v),
        (None, None, Some(v)) => metrics_sdk::config::store_url("store", v),
        (None, None, None) => Ok(metrics_store::StoreUrl::default_dir()),
    }
}

/// The default HTTP address: loopback, the port registered for
/// OpenTelemetry's Prometheus exporter.
const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Where to listen, and whether the user asked for it.
struct Listen {
    addr: Option<SocketAddr>,
    explicit: bool,
}

/// `--listen`, else `METRICS_LISTEN`, else the config file's `listen`, else
/// the default; an unusable value is a configuration error naming its source.
fn listen_choice(
    flag: Option<&str>,
    env: Option<String>,
    file: Option<&str>,
) -> Result<Listen, AgentError> {
    let env = env.filter(|v| !v.trim().is_empty());
    let (source, value, explicit) = match (flag, env.as_deref(), file) {
        (Some(v), _, _) => ("--listen", v, true),
        (None, Some(v), _) => ("METRICS_LISTEN", v, true),
        (None, None, Some(v)) => ("listen", v, true),
        (None, None, None) => ("listen", DEFAULT_LISTEN, false),
    };
    Ok(Listen {
        addr: metrics_sdk::config::listen_addr(source, value)?,
        explicit,
    })
}

/// Starts the HTTP service. A busy default port is a warning (the run goes
/// on without HTTP); an address the user chose that cannot be bound is an
/// error, before anything is recorded.
fn start_http(listen: &Listen, running: &mut Running) -> Result<Option<SocketAddr>, AgentError> {
    let Some(addr) = listen.addr else {
        return Ok(None);
    };
    let config = HttpConfig::from_env(|k| std::env::var(k).ok());
    if !addr.ip().is_loopback() && config.token.is_none() {
        eprintln!(
            "warning: serving metrics on {addr}, beyond this machine, without METRICS_HTTP_TOKEN"
        );
    }
    match running.serve(addr, config) {
        Ok(local) => Ok(Some(local)),
        Err(AgentError::Config { reason, .. }) if listen.explicit => Err(AgentError::config(
            "listen",
            addr.to_string(),
            format!("{reason} (choose another address with --listen ADDR, or --listen off)"),
        )),
        Err(e) => {
            eprintln!(
                "warning: {e}; running without HTTP (choose another address with --listen ADDR, or --listen off)"
            );
            Ok(None)
        }
    }
}

/// Worker threads of the program's one runtime.
const RUNTIME_WORKERS: usize = 2;

fn run(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    config: AgentConfig,
    out: &Out,
) -> Result<bool, AgentError> {
    let endpoints = config.export_endpoints.clone();
    let listen = listen_choice(
        args.listen.as_deref(),
        std::env::var("METRICS_LISTEN").ok(),
        config.listen.as_deref(),
    )?;
    let store = store_choice(
        args.store.as_deref(),
        std::env::var("METRICS_STORE").ok(),
        config.store.as_deref(),
    )?;
    let disk = disk_watched(&store);
    // Resolved above, from the flag, the environment or the file.
    let mut config = config;
    (config.listen, config.store) = (None, None);
    let mut running = Agent::builder()
        .config(config)
        .runtime(rt.handle().clone())
        .store_url(store)
        .start()?;
    let server = start_http(&listen, &mut running)?;
    let agent = running.agent().clone();
    let config = agent.config();

    // Health checks an application would register: the disk the history
    // store writes to (the root file system without a SQLite store).
    let monitor = agent.resource_monitor();
    agent.register_health_check(Arc::new(FnCheck::new("disk", move || {
        let at = existing_ancestor(&disk);
        disk_outcome(&disk, monitor.disk_usage(&at))
    })));
    // The request latency per route, in 5-second batches, back into the agent.
    let spec = AggregationSpec::time(workload::LATENCY, Duration::from_secs(5))
        .functions(["mean", "p95"])?;
    agent.aggregate(spec)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            match tokio::signal::ctrl_c().await {
                Ok(()) => stop.store(true, Ordering::SeqCst),
                Err(e) => eprintln!("warning: Ctrl-C handler not installed: {e}"),
            }
        });
    }
    let counts = Arc::new(StreamCounts::default());
    let watcher = watch_failures(rt.handle(), &agent, counts.clone());
    out.print(&format!(
        "metrics-agent: backend {}{}, system polling {}, {} workers, {}\n",
        config.backend,
        if config.backend.statsd() {
            format!(
                " (StatsD at {}, {})",
                config.statsd.addr, config.statsd.flavor
            )
        } else {
            String::new()
        },
        if agent.resource_monitor().is_monitoring() {
            format!("every {}s", config.collection_interval)
        } else {
            "off".into()
        },
        args.workers,
        args.duration
            .map(|d| format!("running {d:?}"))
            .unwrap_or_else(|| "Ctrl-C to stop".into())
    ));
    if let Some(addr) = server {
        out.print(&format!(
            "serving http://{0}/metrics and http://{0}/api/v1/ (--listen off to stop)\n\
             dashboard: http://{0}/{1}\n",
            addr,
            if std::env::var("METRICS_HTTP_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
                " (add ?token=<METRICS_HTTP_TOKEN> once, or type it into the page)"
            } else {
                ""
            }
        ));
    }
    // The workload's response cache records through the `metrics` macros.
    if let Err(e) = agent.install_metrics_recorder() {
        eprintln!("warning: the `metrics` crate's macros will not reach the agent: {e}");
    }
    let workers = workload::start(rt.handle(), args.workers, agent.metrics(), stop.clone());
    let started = Instant::now();
    let mut next_report = started + args.report_every;
    while !stop.load(Ordering::SeqCst) && !out.closed.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::SeqCst);
        }
        if Instant::now() >= next_report {
            out.print(&summary(&agent, started, &counts));
            next_report += args.report_every;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = rt.block_on(w);
    }
    // Shut down first: partial aggregation batches land, StatsD is flushed,
    // the stream ends; the memory backend still answers afterwards.
    let mut ok = true;
    if let Err(e) = agent.shutdown_metrics() {
        eprintln!("error: shutdown: {e}");
        ok = false;
    }
    let _ = rt.block_on(watcher);
    out.print(&summary(&agent, started, &counts));
    if agent.memory().is_some() {
        if !args.no_export {
            match agent.export(args.format) {
                Ok(text) => out.print(&format!("\n--- final export ({}) ---\n{text}", args.format)),
                Err(e) => {
                    eprintln!("error: export failed: {e}");
                    ok = false;
                }
            }
        }
        if !endpoints.is_empty() {
            for (endpoint, result) in rt.block_on(agent.export_metrics_async(&[])) {
                match result {
                    Ok(()) => eprintln!("exported to {endpoint}"),
                    Err(e) => {
                        eprintln!("error: export to {endpoint} failed: {e}");
                        ok = false;
                    }
                }
            }
        }
    }
    // The HTTP service, then the history writer: everything recorded, the
    // open bin included, reaches the store.
    if let Err(e) = running.shutdown() {
        eprintln!("error: shutdown: {e}");
        ok = false;
    }
    if let Some(st) = running.remote_write_status() {
        eprintln!(
            "remote write: {} requests ({} samples) accepted by {}, {} failed attempts, {} samples dropped{}",
            st.sent,
            st.sent_samples,
            st.url,
            st.failed_attempts,
            st.dropped_samples,
            st.last_error
                .as_deref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
    }
    if let Some(st) = running.history_status() {
        eprintln!(
            "history: {} bins written to {} ({} rows){}",
            st.written,
            st.url,
            st.rows,
            match (&st.last_error, st.pending + st.dropped as usize) {
                (Some(e), lost) if lost > 0 => format!(" ({lost} lost: {e})"),
                _ => String::new(),
            }
        );
    }
    Ok(ok)
}

/// The directory whose file system the `disk` check watches: the SQLite
/// store's, else the root.
fn disk_watched(store: &metrics_store::StoreUrl) -> PathBuf {
    match store {
        metrics_store::StoreUrl::Sqlite(file) => match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        },
        _ => PathBuf::from("/"),
    }
}

/// `path`, or its nearest ancestor that exists (a store directory not
/// made yet is on its parent's file system).
fn existing_ancestor(path: &std::path::Path) -> PathBuf {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_owned)
}

/// The `disk` check's outcome for the file system holding `path`:
/// unhealthy from 95% full, degraded from 85%, each saying which
/// directory and file system.
fn disk_outcome(
    path: &std::path::Path,
    usage: Result<metrics_protocol::app::DiskUsage, metrics_protocol::MetricsError>,
) -> CheckOutcome {
    match usage {
        Ok(d) => {
            let what = format!(
                "{} (file system {}) is {:.0}% full, {} MiB free",
                path.display(),
                d.mount_point,
                d.percent,
                d.free_bytes >> 20
            );
            if d.percent >= 95.0 {
                CheckOutcome::unhealthy(what)
            } else if d.percent >= 85.0 {
                CheckOutcome::degraded(what)
            } else {
                CheckOutcome {
                    message: Some(what),
                    ..CheckOutcome::healthy()
                }
            }
        }
        Err(e) => CheckOutcome::degraded(format!("cannot read {}: {e}", path.display())),
    }
}

/// Sends the log (`tracing`: the history writer's warnings among others)
/// to stderr, filtered by `RUST_LOG`, else the configuration's `log`,
/// else `info` for this project's crates and `warn` for the others.
fn install_log(config: &AgentConfig) -> Result<(), AgentError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = metrics_sdk::logging::filter(rust_log.as_deref(), config.log.as_deref())?;
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if let Err(e) = installed {
        eprintln!("warning: no log on stderr: {e}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match AgentConfig::load(args.config.as_deref(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = install_log(&config) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let out = Out {
        closed: AtomicBool::new(false),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKERS)
        // Blocking-pool threads (health checks, polls, queries) that sat
        // idle this long exit, so a burst leaves no threads behind.
        .thread_keep_alive(Duration::from_millis(500))
        .thread_name("metrics-runtime")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = run(&rt, &args, config, &out);
    // Everything was written by the shutdown in `run`; a health check
    // that still hangs must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_protocol::app::DiskUsage;
    use metrics_protocol::backend::HealthStatus;

    #[test]
    fn the_disk_watched_is_the_sqlite_stores_else_the_root() {
        let url = |s: &str| s.parse::<metrics_store::StoreUrl>().unwrap();
        assert_eq!(
            disk_watched(&url("sqlite:///var/lib/m/h.sqlite")),
            PathBuf::from("/var/lib/m")
        );
        assert_eq!(disk_watched(&url("sqlite://h.sqlite")), PathBuf::from("."));
        assert_eq!(
            disk_watched(&url("postgres://u@127.0.0.1/m")),
            PathBuf::from("/")
        );
        let missing = std::env::temp_dir().join("metrics-agent-no-such-dir/a/b");
        assert_eq!(existing_ancestor(&missing), std::env::temp_dir());
    }

    #[test]
    fn a_full_disk_is_unhealthy_naming_the_directory_and_file_system() {
        let usage = |percent: f64| {
            Ok(DiskUsage {
                mount_point: "/srv".into(),
                device: None,
                file_system: None,
                total_bytes: 100 << 20,
                used_bytes: (percent as u64) << 20,
                free_bytes: (100 - percent as u64) << 20,
                percent,
            })
        };
        let dir = std::path::Path::new("/srv/metrics-data");
        let o = disk_outcome(dir, usage(97.0));
        assert_eq!(o.status, HealthStatus::Unhealthy);
        assert_eq!(
            o.message.as_deref(),
            Some("/srv/metrics-data (file system /srv) is 97% full, 3 MiB free")
        );
        assert_eq!(
            disk_outcome(dir, usage(90.0)).status,
            HealthStatus::Degraded
        );
        assert_eq!(disk_outcome(dir, usage(10.0)).status, HealthStatus::Healthy);
    }
}
