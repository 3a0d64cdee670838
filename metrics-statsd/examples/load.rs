//! Load for the interop check: THREADS threads each increment one tagged
//! counter COUNT times through one backend, then shut down.
//!
//! `cargo run -q -p metrics-statsd --example load -- --addr 127.0.0.1:8125 --threads 4 --count 25000 --tag-value 'a:b|c'`

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use metrics_protocol::{CollectorExt, MetricCollector};
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let statsd = match StatsdMetrics::new(StatsdConfig {
        addr: args.addr.clone(),
        flavor: args.flavor,
        // Short flushes so the run also exercises several aggregated flushes.
        flush_interval_ms: 50,
        ..Default::default()
    }) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (s, name, value, count) = (
                statsd.clone(),
                args.name.clone(),
                args.tag_value.clone(),
                args.count,
            );
            std::thread::spawn(move || {
                for _ in 0..count {
                    s.increment(&name, &[("source", value.as_str()), ("kind", "interop")]);
                }
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            eprintln!("a worker panicked");
            return ExitCode::from(1);
        }
    }
    if let Err(e) = statsd.shutdown() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let h = &statsd.health()[0];
    println!(
        "sent {} lines in {} datagrams; dropped {:?}",
        h.details["sent_lines"], h.details["sent_datagrams"], h.dropped
    );
    if h.total_dropped() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
