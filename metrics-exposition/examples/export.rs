//! Reads samples as JSON lines on standard input, records them into the
//! memory backend, and prints its export.
//!
//! ```sh
//! echo '{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"GET"}}' |
//!   cargo run -q -p metrics-exposition --example export -- prometheus
//! ```
//!
//! FORMAT is json, csv, prometheus or openmetrics. A malformed line, or a
//! sample the collector dropped, is reported on standard error with its line
//! number and skipped. Exit status: 0 if every line was recorded, 1
//! otherwise, 2 for a bad command line.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use metrics_exposition::{ExportFormat, Exporter};
use metrics_kit::read_samples;
use metrics_memory::MemoryMetrics;
use metrics_protocol::MetricCollector;

fn dropped(m: &MemoryMetrics) -> u64 {
    m.health().iter().map(|h| h.total_dropped()).sum()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let format = match args.as_slice() {
        [f] => match f.parse::<ExportFormat>() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: export FORMAT < samples.jsonl   (FORMAT: json, csv, prometheus, openmetrics)"
            );
            return ExitCode::from(2);
        }
    };
    let metrics = Arc::new(MemoryMetrics::new());
    let mut failed = 0u64;
    for (line, sample) in read_samples(io::stdin().lock()) {
        let before = dropped(&metrics);
        match sample.and_then(|s| s.record_into(&metrics)) {
            Ok(()) if dropped(&metrics) == before => {}
            Ok(()) => {
                let reasons = metrics.health()[0].dropped.clone();
                eprintln!(
                    "line {line}: sample dropped by the collector (drops so far: {reasons:?})"
                );
                failed += 1;
            }
            Err(e) => {
                eprintln!("line {line}: {e}");
                failed += 1;
            }
        }
    }
    match Exporter::new(metrics).export(format) {
        Ok(text) => {
            let mut out = io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    if failed > 0 {
        eprintln!("{failed} line(s) not recorded");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
