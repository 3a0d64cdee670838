//! Reads samples as JSON lines on standard input and sends them to a StatsD
//! daemon, then shuts the backend down (flushing everything).
//!
//! ```sh
//! echo '{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"GET"}}' |
//!   cargo run -q -p metrics-statsd --example send -- --addr 127.0.0.1:8125 --flavor dogstatsd
//! ```
//!
//! A malformed line is reported on standard error with its line number and
//! skipped; the exit status is then 1.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use metrics_kit::read_samples;
use metrics_protocol::MetricCollector;
use metrics_statsd::{StatsdConfig, StatsdMetrics, TagFlavor};

#[derive(Parser)]
#[command(about = "Send JSON-lines samples from stdin to a StatsD daemon")]
struct Args {
    /// The daemon, HOST:PORT.
    #[arg(long)]
    addr: String,
    /// Tag flavor: etsy (name;k=v), dogstatsd (|#k:v) or none.
    #[arg(long, default_value = "dogstatsd")]
    flavor: TagFlavor,
    /// Prefix for every name.
    #[arg(long, default_value = "")]
    prefix: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let statsd = match StatsdMetrics::new(StatsdConfig {
        addr: args.addr,
        flavor: args.flavor,
        prefix: args.prefix,
        ..Default::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bad = 0;
    for (line, sample) in read_samples(io::stdin().lock()) {
        if let Err(e) = sample.and_then(|s| s.record_into(&statsd)) {
            eprintln!("line {line}: {e}");
            bad += 1;
        }
    }
    if let Err(e) = statsd.shutdown() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let dropped: u64 = statsd.health().iter().map(|h| h.total_dropped()).sum();
    if dropped > 0 {
        eprintln!(
            "{dropped} sample(s) dropped: {:?}",
            statsd.health()[0].dropped
        );
    }
    if bad > 0 || dropped > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
