//! Load for the interop check: THREADS threads each increment one tagged
//! counter COUNT times through one backend, then shut down. Optionally:
//! paced (`--rate`, increments a second per thread), paused once halfway
//! until a file is removed (`--pause-file`, so a script can act on a quiet
//! daemon), or a burst of `--timers` timer samples plus one counter and one
//! gauge, all queued when the backend shuts down.
//!
//! Prints `recorded=N dropped=M lost_lines=L` (samples recorded, samples
//! dropped for any reason, lines lost). Exits 1 when something was dropped,
//! unless `--allow-drops`, and 1 when `shutdown` fails.
//!
//! `cargo run -q -p metrics-statsd --example load -- --addr 127.0.0.1:8125 --threads 4 --count 25000 --tag-value 'a:b|c'`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::Parser;
use metrics_protocol::{MetricCollector, Metrics};
use metrics_statsd::{StatsdConfig, StatsdMetrics, TagFlavor};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    addr: String,
    #[arg(long, default_value_t = 4)]
    threads: usize,
    #[arg(long, default_value_t = 25_000)]
    count: usize,
    #[arg(long, default_value = "interop.hits")]
    name: String,
    #[arg(long, default_value = "plain")]
    tag_value: String,
    #[arg(long, default_value = "dogstatsd")]
    flavor: TagFlavor,
    /// Increments a second per thread (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Halfway, flush, create this file and wait until it is removed.
    #[arg(long)]
    pause_file: Option<PathBuf>,
    /// Instead of counters: this many timer samples, one counter increment
    /// and one gauge, queued at once, then shutdown.
    #[arg(long, default_value_t = 0)]
    timers: usize,
    /// Milliseconds between flushes.
    #[arg(long, default_value_t = 50)]
    flush_ms: u64,
    /// Datagrams a second at most (the backend's pacing).
    #[arg(long, default_value_t = StatsdConfig::default().max_datagrams_per_sec)]
    max_datagrams_per_sec: u64,
    /// Exit 0 even when samples were dropped (they are still printed).
    #[arg(long)]
    allow_drops: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let statsd = match StatsdMetrics::new(StatsdConfig {
        addr: args.addr.clone(),
        flavor: args.flavor,
        // Short flushes so the run also exercises several aggregated flushes.
        flush_interval_ms: if args.timers > 0 {
            3_600_000
        } else {
            args.flush_ms
        },
        queue_capacity: args.timers.max(65_536),
        shutdown_timeout_ms: 20_000,
        max_datagrams_per_sec: args.max_datagrams_per_sec,
        ..Default::default()
    }) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics = Metrics::new(statsd.clone());
    let recorded = if args.timers > 0 {
        for i in 0..args.timers {
            metrics.record_timer(
                &args.name,
                Duration::from_micros(100 + i as u64 % 5000),
                &[("kind", "burst")],
            );
        }
        metrics.increment(&format!("{}.counter", args.name), &[]);
        metrics.record_gauge(&format!("{}.gauge", args.name), 42.0, &[]);
        args.timers + 2
    } else {
        match run_counters(&args, &metrics) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    };
    let shutdown = statsd.shutdown();
    let h = &statsd.health()[0];
    println!(
        "recorded={recorded} dropped={} lost_lines={} sent_lines={} datagrams={}; dropped by reason {:?}",
        h.total_dropped(),
        h.details["lost_lines"],
        h.details["sent_lines"],
        h.details["sent_datagrams"],
        h.dropped
    );
    if let Err(e) = shutdown {
        eprintln!("shutdown: {e}");
        if !args.allow_drops {
            return ExitCode::from(1);
        }
    }
    if h.total_dropped() > 0 && !args.allow_drops {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The counter load; returns the increments recorded.
fn run_counters(args: &Args, metrics: &Metrics) -> Result<usize, String> {
    let barrier = Arc::new(Barrier::new(args.threads));
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (s, barrier) = (metrics.clone(), barrier.clone());
            let (name, value, count, rate) = (
                args.name.clone(),
                args.tag_value.clone(),
                args.count,
                args.rate,
            );
            let pause = args.pause_file.clone();
            std::thread::spawn(move || {
                let mut start = (Instant::now(), 0);
                for i in 0..count {
                    if i == count / 2
                        && let Some(path) = &pause
                        && barrier.wait().is_leader()
                    {
                        pause_until_removed(&s, path);
                    }
                    if i == count / 2 && pause.is_some() {
                        barrier.wait();
                        start = (Instant::now(), i); // the pace goes on from here
                    }
                    s.increment(&name, &[("source", value.as_str()), ("kind", "interop")]);
                    if rate > 0 {
                        let done = (i + 1 - start.1) as f64;
                        let due = start.0 + Duration::from_secs_f64(done / rate as f64);
                        if let Some(d) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a worker panicked".to_owned())?;
    }
    Ok(args.threads * args.count)
}

/// Flushes, creates `path`, and waits until it is removed.
fn pause_until_removed(s: &Metrics, path: &PathBuf) {
    if let Err(e) = s.flush() {
        eprintln!("flush before the pause: {e}");
    }
    if let Err(e) = std::fs::write(path, b"paused\n") {
        eprintln!("cannot create {}: {e}", path.display());
        return;
    }
    while path.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
}
