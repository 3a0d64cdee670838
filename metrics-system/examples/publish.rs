//! Publishes the readings twice into a `metrics-memory` backend and prints
//! its Prometheus text: once at start, then again when a line arrives on
//! stdin (or stdin closes). Between the two it prints `ready` on stdout, so
//! a script can make traffic between the polls and compare the network
//! counters with what the OS counted meanwhile (`.ci/interop-system.sh`).
//!
//! ```text
//! echo | cargo run -q -p metrics-system --example publish
//! ```
//!
//! Exits 1 with a message on stderr when publishing or exporting fails.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use metrics_exposition::{ExportFormat, Exporter};
use metrics_memory::MemoryMetrics;
use metrics_system::SystemMonitor;

fn main() -> ExitCode {
    match run() {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("publish: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let memory = Arc::new(MemoryMetrics::new());
    let monitor = SystemMonitor::with_collector(memory.clone())?;
    monitor.publish_once()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    monitor.publish_once()?;
    Ok(Exporter::new(memory).export(ExportFormat::Prometheus)?)
}
