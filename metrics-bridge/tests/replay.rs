//! The `replay` example against the `export` example of `metrics-exposition`:
//! the same samples, recorded once through the `metrics` macros and the
//! bridge and once by our own calls, give the same exports in every format.
//!
//! The example's program is compiled into this test (its `run` is what its
//! `main` calls); the `export` side is that example's code (`read_samples`,
//! `Sample::record_into`, `Exporter::export`) run here. `.ci/interop-bridge.sh`
//! runs both example binaries and compares their outputs.

#[path = "../examples/replay.rs"]
#[allow(dead_code)] // its `main`
mod replay_example;

use metrics_exposition::{ExportFormat, Exporter};
use metrics_kit::read_samples;
use metrics_memory::MemoryMetrics;
use std::sync::Arc;

/// Runs the example's program on `input`: (exit status, stdout, stderr).
fn run_replay(format: &str, input: &str) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = replay_example::run(&[format.to_owned()], input.as_bytes(), &mut out, &mut err);
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8 output");
    (status, text(out), text(err))
}

/// What `metrics-exposition`'s `export` example prints for `input`.
fn export_example(format: ExportFormat, input: &str) -> String {
    let m = Arc::new(MemoryMetrics::new());
    for (line, s) in read_samples(input.as_bytes()) {
        s.and_then(|s| s.record_into(&*m))
            .unwrap_or_else(|e| panic!("line {line}: {e}"));
    }
    Exporter::new(m).export(format).expect("export")
}

/// Counters (whole values, several label sets, label order varied),
/// gauges (set several times, negative) and histograms (enough samples for
/// distinct quantiles).
fn samples() -> String {
    let mut lines = vec![
        r#"{"kind":"counter","name":"http.requests","value":3,"tags":{"method":"GET","code":"200"}}"#.to_owned(),
        r#"{"kind":"counter","name":"http.requests","value":2,"tags":{"code":"200","method":"GET"}}"#.to_owned(),
        r#"{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"POST","code":"500"}}"#.to_owned(),
        r#"{"kind":"counter","name":"jobs","value":0}"#.to_owned(),
        r#"{"kind":"gauge","name":"queue.depth","value":12.5,"tags":{"queue":"mail"}}"#.to_owned(),
        r#"{"kind":"gauge","name":"queue.depth","value":-3,"tags":{"queue":"mail"}}"#.to_owned(),
        r#"{"kind":"gauge","name":"temp","value":21.25}"#.to_owned(),
        String::new(),
    ];
    for i in 0..200 {
        let v = f64::from(i * i % 997) / 7.0;
        lines.push(format!(
            r#"{{"kind":"histogram","name":"db.latency","value":{v},"tags":{{"table":"users"}}}}"#
        ));
    }
    lines.push(
        r#"{"kind":"histogram","name":"payload","value":1024,"tags":{"dir":"in \"quoted\""}}"#
            .to_owned(),
    );
    lines.join("\n")
}

#[test]
fn replay_exports_equal_the_export_examples() {
    let input = samples();
    for format in ExportFormat::ALL {
        let (status, got, stderr) = run_replay(format.as_str(), &input);
        assert_eq!(status, 0, "{format}: {stderr}");
        let want = export_example(format, &input);
        if format == ExportFormat::Json {
            let strip = |s: &str| {
                let mut v: serde_json::Value = serde_json::from_str(s).expect("json export");
                v.as_object_mut()
                    .expect("json object")
                    .remove("generated_at");
                v
            };
            let (got, want) = (strip(&got), strip(&want));
            assert_eq!(got["series"].as_array().map(Vec::len), Some(7));
            assert_eq!(got, want);
        } else {
            assert!(got.contains("db"), "{format}: {got}");
            assert_eq!(got, want, "{format}");
        }
    }
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_exit_1() {
    let input = [
        r#"{"kind":"counter","name":"ok","value":1}"#,
        r#"{"kind":"counter","name":"ok","value":"#,
        "",
        r#"{"kind":"counter","name":"half","value":1.5}"#,
        r#"{"kind":"gauge","name":"","value":1}"#,
        r#"{"kind":"gauge","name":"fine","value":2}"#,
    ]
    .join("\n");
    let (status, stdout, stderr) = run_replay("prometheus", &input);
    assert_eq!(status, 1);
    assert!(stderr.contains("line 2: "), "{stderr}");
    assert!(stderr.contains("line 4: counter value 1.5"), "{stderr}");
    assert!(
        stderr.contains("line 5: sample dropped by the collector"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("line 1:") && !stderr.contains("line 6:"),
        "{stderr}"
    );
    assert!(stderr.contains("3 line(s) not recorded"), "{stderr}");
    // The good lines are still exported.
    assert!(stdout.contains("ok_total 1"), "{stdout}");
    assert!(stdout.contains("fine 2"), "{stdout}");
}

#[test]
fn a_bad_command_line_exits_2() {
    assert_eq!(run_replay("xml", "").0, 2);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        replay_example::run(&[], "".as_bytes(), &mut out, &mut err),
        2
    );
    assert!(String::from_utf8_lossy(&err).contains("usage: replay FORMAT"));
}
