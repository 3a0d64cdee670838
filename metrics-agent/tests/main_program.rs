//! The main program as a user runs it: a short run with many workers, a
//! configuration error, and a closed stdout pipe.

use std::io::Read;
use std::process::{Command, Stdio};

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metrics-agent"));
    c.env_remove("METRICS_BACKEND")
        .env_remove("METRICS_STATSD_ADDR")
        .env_remove("METRICS_EXPORT_ENDPOINTS")
        .env("METRICS_SYSTEM_SAMPLING", "off");
    c
}

#[test]
fn a_short_run_with_many_workers_prints_summaries_and_the_export() {
    let out = agent()
        .args([
            "--duration",
            "1s",
            "--report-every",
            "500ms",
            "--workers",
            "16",
        ])
        .args(["--format", "openmetrics"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("metrics-agent: backend memory"), "{stdout}");
    assert!(stdout.contains("http.request"), "{stdout}");
    assert!(stdout.contains("health: "), "{stdout}");
    assert!(stdout.contains("jobs.processed"), "{stdout}");
    // The component instrumented with the `metrics` macros, through the bridge.
    assert!(stdout.contains("response cache "), "{stdout}");
    assert!(
        stdout.contains("cache_lookups_total{result=\"hit\",route=\"/api/users\"}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--- final export (openmetrics) ---"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("# EOF"), "{stdout}");
}

#[test]
fn a_bad_configuration_exits_2_naming_the_variable_and_value() {
    let out = agent()
        .env("METRICS_BACKEND", "carrier-pigeon")
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("METRICS_BACKEND") && stderr.contains("carrier-pigeon"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_ends_the_run_without_a_panic() {
    let mut child = agent()
        .args(["--duration", "30s", "--report-every", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status:?} {stderr}");
}
