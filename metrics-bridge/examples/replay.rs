//! Reads samples as JSON lines on standard input (the format of
//! `metrics-memory`'s `export` example), records each through the `metrics`
//! macros into the memory backend via the bridge, and prints the export.
//!
//! ```sh
//! echo '{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"GET"}}' |
//!   cargo run -q -p metrics-bridge --example replay -- prometheus
//! ```
//!
//! FORMAT is json, csv, prometheus or openmetrics. Counter values must be
//! whole numbers from 0 to 2^53 (`metrics` counts in `u64`); timer samples
//! (milliseconds) are recorded as histograms, the `metrics` crate having no
//! timer kind. A malformed line, a value the `metrics` calls cannot carry, or
//! a sample the collector dropped is reported on standard error with its
//! line number and skipped. Exit status: 0 if every line was recorded, 1
//! otherwise, 2 for a bad command line.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use metrics::Label;
use metrics_bridge::Recorder;
use metrics_exposition::{ExportFormat, Exporter};
use metrics_kit::{Sample, read_samples};
use metrics_memory::MemoryMetrics;
use metrics_protocol::{MetricCollector, MetricType};

/// The largest whole number an `f64` holds exactly.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

fn dropped(m: &MemoryMetrics) -> u64 {
    m.health().iter().map(|h| h.total_dropped()).sum()
}

/// Records one sample through the `metrics` macros.
fn replay(s: &Sample) -> Result<(), String> {
    let labels: Vec<Label> = s
        .tags
        .iter()
        .map(|(k, v)| Label::new(k.clone(), v.clone()))
        .collect();
    let name = s.name.clone();
    match s.kind {
        MetricType::Counter => {
            let v = s.value;
            if !(v.fract() == 0.0 && (0.0..=MAX_EXACT).contains(&v)) {
                return Err(format!(
                    "counter value {v} is not a whole number from 0 to 2^53 (the `metrics` crate counts in u64)"
                ));
            }
            metrics::counter!(name, labels).increment(v as u64);
        }
        MetricType::Gauge => metrics::gauge!(name, labels).set(s.value),
        MetricType::Histogram | MetricType::Timer => {
            metrics::histogram!(name, labels).record(s.value)
        }
        MetricType::Rate => {
            return Err("kind `rate` has no `metrics` call to replay it".to_owned());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(run(
        &args,
        io::stdin().lock(),
        io::stdout().lock(),
        io::stderr().lock(),
    ))
}

/// The whole program over any input and outputs (the tests call it);
/// returns the exit status.
pub fn run(args: &[String], input: impl BufRead, mut out: impl Write, mut err: impl Write) -> u8 {
    // Writes to standard error are best effort: nothing else could report them.
    let format = match args {
        [f] => match f.parse::<ExportFormat>() {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return 2;
            }
        },
        _ => {
            let _ = writeln!(
                err,
                "usage: replay FORMAT < samples.jsonl   (FORMAT: json, csv, prometheus, openmetrics)"
            );
            return 2;
        }
    };
    let metrics = Arc::new(MemoryMetrics::new());
    let recorder = Recorder::new(metrics.clone());
    let mut failed = 0u64;
    recorder.in_scope(|| {
        for (line, sample) in read_samples(input) {
            let before = dropped(&metrics);
            let outcome = sample.map_err(|e| e.to_string()).and_then(|s| replay(&s));
            match outcome {
                Ok(()) if dropped(&metrics) == before => {}
                Ok(()) => {
                    let reasons = metrics
                        .health()
                        .into_iter()
                        .next()
                        .map(|h| h.dropped)
                        .unwrap_or_default();
                    let _ = writeln!(
                        err,
                        "line {line}: sample dropped by the collector (drops so far: {reasons:?})"
                    );
                    failed += 1;
                }
                Err(e) => {
                    let _ = writeln!(err, "line {line}: {e}");
                    failed += 1;
                }
            }
        }
    });
    match Exporter::new(metrics).export(format) {
        Ok(text) => {
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return 1;
            }
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 1;
        }
    }
    if failed > 0 {
        let _ = writeln!(err, "{failed} line(s) not recorded");
        1
    } else {
        0
    }
}
