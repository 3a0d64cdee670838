//! Prints every reading as one JSON object with the top-level keys `memory`,
//! `cpu`, `disk` (the file system holding `/`), `disks`, `network` and
//! `process`; sizes in bytes, percentages 0 to 100.
//!
//! ```text
//! cargo run -q -p metrics-system --example snapshot
//! cargo run -q -p metrics-system --example snapshot -- --pid 1234   # `process` of another pid
//! ```
//!
//! Exits 1 with a message on stderr when a reading fails, 2 on bad arguments.

use std::process::ExitCode;

use metrics_system::SystemMonitor;

fn main() -> ExitCode {
    let mut pid = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<u32>())) {
            ("--pid", Some(Ok(p))) => pid = Some(p),
            _ => {
                eprintln!("usage: snapshot [--pid PID]");
                return ExitCode::from(2);
            }
        }
    }
    match run(pid) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("snapshot: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(pid: Option<u32>) -> Result<String, Box<dyn std::error::Error>> {
    let monitor = SystemMonitor::new()?;
    let mut snapshot = monitor.snapshot()?;
    if let Some(pid) = pid {
        snapshot.process = monitor.process_usage_of(pid)?;
    }
    Ok(serde_json::to_string_pretty(&snapshot)?)
}
