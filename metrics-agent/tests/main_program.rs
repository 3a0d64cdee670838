//! The main program as a user runs it: a short run with many workers, a
//! configuration error, a closed stdout pipe, and its HTTP endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metrics-agent"));
    c.env_remove("METRICS_BACKEND")
        .env_remove("METRICS_STATSD_ADDR")
        .env_remove("METRICS_EXPORT_ENDPOINTS")
        .env_remove("METRICS_HTTP_TOKEN")
        .env_remove("RUST_LOG")
        .env("METRICS_LISTEN", "off") // the HTTP tests below pass --listen
        .env("METRICS_SYSTEM_POLLING", "off")
        // No history store in the package directory (the store tests below
        // choose one in a temporary directory).
        .env("METRICS_STORE", "off");
    c
}

fn temp_dir(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("metrics-agent-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn history_goes_to_metrics_data_by_default_and_is_flushed_at_the_end() {
    let dir = temp_dir("store");
    let out = agent()
        .env_remove("METRICS_STORE")
        .current_dir(&dir)
        .args(["--duration", "1s", "--no-export"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("history: "))
        .unwrap_or_else(|| panic!("no history line: {stderr}"));
    let written: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(written > 0, "{line}");
    assert!(line.contains("metrics-data/history.sqlite"), "{line}");
    assert!(dir.join("metrics-data/history.sqlite").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_store_url_exits_2_naming_it_and_a_corrupt_file_is_left_alone() {
    let out = agent()
        .args(["--duration", "1s", "--store", "mysql://db/metrics"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--store = `mysql://db/metrics`"),
        "{stderr}"
    );

    // A file that is not a database: the run goes on, health says why, and
    // the file is untouched.
    let dir = temp_dir("corrupt");
    let file = dir.join("notes.sqlite");
    std::fs::write(&file, "not a database").unwrap();
    let out = agent()
        .current_dir(&dir)
        .args(["--duration", "1s", "--no-export", "--report-every", "500ms"])
        .args(["--store", "notes.sqlite"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("corrupt history database notes.sqlite"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a database");
    std::fs::remove_dir_all(&dir).ok();
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

/// One HTTP/1.1 GET on a fresh connection: the status line, the headers
/// (lowercase names) and the body.
fn http_get(addr: SocketAddr, path: &str, headers: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Stdout = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts `command` (which passes `--listen`) with its stdout piped and
/// stderr discarded: the program, the address it printed it serves on, and
/// the rest of its stdout.
fn serving(mut command: Command) -> (Running, SocketAddr, Stdout) {
    let mut child = Running(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the program printed its URL").unwrap();
        if let Some(rest) = line.strip_prefix("serving http://") {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    (child, addr, lines)
}

#[test]
fn the_main_program_serves_metrics_and_the_api_while_it_runs() {
    let mut command = agent();
    command
        .args(["--listen", "127.0.0.1:0", "--duration", "5m"])
        .args(["--report-every", "1h", "--no-export"]);
    let (_child, addr, _stdout) = serving(command);
    // The workload records from the start; wait (generously) for a scrape
    // that shows its request timer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, headers, body) = loop {
        let got = http_get(addr, "/metrics", "");
        if got.2.contains("http_request_seconds_count") || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    assert!(body.contains("http_request_seconds_count"), "{body}");

    let (status, headers, body) =
        http_get(addr, "/metrics", "Accept: application/openmetrics-text\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, _, body) = http_get(addr, "/api/v1/summary?name=http.request&window=5m", "");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(summary["count"].as_u64().unwrap() > 0, "{summary}");
    let (status, _, body) = http_get(addr, "/api/v1/summary?name=http.request&window=soon", "");
    assert_eq!(status, "HTTP/1.1 400 Bad Request", "{body}");
    assert!(body.contains("\"parameter\":\"window\""), "{body}");
}

#[test]
fn an_address_the_user_chose_that_is_taken_exits_2_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = agent()
        .env("METRICS_LISTEN", &addr)
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot listen on") && stderr.contains(&addr),
        "{stderr}"
    );

    let out = agent()
        .args(["--listen", "nowhere", "--duration", "1s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

/// The history writer's warnings reach stderr (info for this project's
/// crates, warn for the others, by default), and `RUST_LOG` sets the level.
#[test]
fn the_writers_warnings_reach_stderr_at_the_level_rust_log_sets() {
    let dir = temp_dir("log");
    // A file where the store's directory should be: the store cannot open.
    std::fs::write(dir.join("data"), "in the way").unwrap();
    let run = |rust_log: Option<&str>| {
        let mut c = agent();
        c.args(["--duration", "1s", "--no-export"])
            .args(["--store", "sqlite://data/h.sqlite"])
            .current_dir(&dir);
        if let Some(l) = rust_log {
            c.env("RUST_LOG", l);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warning = "bins are queued and retried";
    let stderr = run(None);
    let line = stderr
        .lines()
        .find(|l| l.contains(warning))
        .unwrap_or_else(|| panic!("no warning on stderr: {stderr}"));
    assert!(line.contains("WARN") && line.contains("data"), "{line}");
    assert!(!run(Some("error")).contains(warning));
    std::fs::remove_dir_all(&dir).ok();
}

/// The `disk` check watches the file system the SQLite store writes to,
/// naming the store's directory.
#[test]
fn the_disk_check_watches_the_stores_file_system() {
    let dir = temp_dir("disk");
    let store = dir.join("history-here");
    let out = agent()
        .args([
            "--duration",
            "1500ms",
            "--no-export",
            "--report-every",
            "500ms",
        ])
        .arg("--store")
        .arg(format!("sqlite://{}/h.sqlite", store.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("check   disk"))
        .unwrap_or_else(|| panic!("no disk check: {stdout}"));
    assert!(
        line.contains(&format!("{} (file system ", store.display())),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The names of the process's threads (Linux: `/proc/PID/task/*/comm`).
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Everything on: HTTP, a SQLite store, resource polling, a summary (and
/// so a health report) every second. Once the store has answered, the
/// program runs on at most 8 OS threads, sampled for a few seconds.
#[cfg(target_os = "linux")]
#[test]
fn the_main_program_runs_on_at_most_eight_threads() {
    let dir = temp_dir("threads");
    let mut command = agent();
    command
        .current_dir(&dir)
        .env("METRICS_SYSTEM_POLLING", "on")
        .env("METRICS_COLLECTION_INTERVAL", "1s")
        .env_remove("METRICS_STORE")
        .args(["--listen", "127.0.0.1:0", "--duration", "5m"])
        .args(["--report-every", "1s", "--no-export"]);
    let (child, addr, lines) = serving(command);
    let pid = child.0.id();
    // Keep reading the summaries, so the program never waits on its pipe.
    let reader = std::thread::spawn(move || for _ in lines {});
    // Steady state: the store is connected and the poller has run.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, _, body) = http_get(addr, "/api/v1/health", "");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let check = |name: &str| {
            health["checks"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["name"] == name && c["status"] == "healthy")
            })
        };
        let polled = health["backends"].as_array().is_some_and(|b| {
            b.iter()
                .any(|b| b["name"] == "system" && b["details"]["samples"].as_f64() > Some(1.0))
        });
        if check("store") && polled {
            break;
        }
        assert!(Instant::now() < deadline, "no steady state: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The blocking-pool threads this test's own requests woke have gone
    // idle (they linger half a second); the program's own reports go on.
    std::thread::sleep(Duration::from_secs(3));
    let mut most = Vec::new();
    for _ in 0..20 {
        let names = thread_names(pid);
        if names.len() > most.len() {
            most = names;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(!most.is_empty(), "no threads read for {pid}");
    assert!(most.len() <= 8, "{} threads: {most:?}", most.len());
    drop(child);
    let _ = reader.join();
}

/// The samples of `http.request` a store holds (every run and instance).
fn stored_requests(url: &str) -> u64 {
    let url: metrics_store::StoreUrl = url.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = metrics_store::Store::open(&url, "reader").await.unwrap();
        let end = 4_102_444_800_000; // 2100-01-01
        let q = metrics_store::HistoryQuery {
            name: "http.request".into(),
            start_ms: 0,
            end_ms: end,
            step_ms: end,
            ..metrics_store::HistoryQuery::default()
        };
        let got = s.query(&q).await.unwrap();
        s.close().await;
        got.iter()
            .flat_map(|g| g.bins.iter().map(|b| b.count))
            .sum()
    })
}

/// `http.request`'s count over the whole run, from the running program.
fn live_requests(addr: SocketAddr) -> u64 {
    let (status, _, body) = http_get(addr, "/api/v1/summary?name=http.request", "");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    summary["count"].as_u64().unwrap()
}

/// Killed with SIGKILL, the main program loses only what it recorded in
/// the last flush interval (2 s): every sample it had recorded 4 s before
/// the kill (2 s of slack for a busy machine) is in the store, the open
/// bin's included. Prints the loss measured.
#[test]
fn a_sigkill_loses_at_most_the_last_flush_interval() {
    let dir = temp_dir("sigkill");
    let url = format!("sqlite://{}/", dir.display());
    let start = || {
        let mut command = agent();
        command
            .env_remove("METRICS_STORE")
            .args(["--store", &url, "--listen", "127.0.0.1:0"])
            .args(["--duration", "5m", "--report-every", "1h", "--no-export"]);
        serving(command)
    };
    let started = Instant::now();
    let (mut child, addr, _stdout) = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while live_requests_or_zero(addr) == 0 {
        assert!(Instant::now() < deadline, "no requests recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let early = live_requests(addr);
    std::thread::sleep(Duration::from_secs(4));
    let at_kill = live_requests(addr);
    let ran = started.elapsed();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let stored = stored_requests(&format!("sqlite://{}/history.sqlite", dir.display()));
    let lost = at_kill.saturating_sub(stored);
    let rate = at_kill as f64 / ran.as_secs_f64();
    eprintln!(
        "SIGKILL: {at_kill} requests recorded by the last read before the kill, {stored} \
         stored: {lost} lost, about {:.2} s of the workload ({rate:.0}/s)",
        lost as f64 / rate.max(1.0)
    );
    assert!(
        stored >= early,
        "{stored} stored, {early} recorded 4 s before the kill"
    );
    // Restarted on the same store, the program's window counts what the
    // killed run left there, its open bin's partial rows included.
    let (child, addr, _stdout) = start();
    // The window less this run's own count (read after it, so at least
    // what the window had of this run) is what it took from the store.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = http_get(addr, "/api/v1/summary?name=http.request&window=5m", "");
        let window = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|s| s["count"].as_u64())
            .filter(|_| status == "HTTP/1.1 200 OK");
        let mine = live_requests_or_zero(addr);
        if window.is_some_and(|w| w.saturating_sub(mine) >= stored) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the window after the restart: {body}, this run {mine}, {stored} stored"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(child);
    std::fs::remove_dir_all(&dir).ok();
}

/// As [`live_requests`], 0 until the program answers with a count.
fn live_requests_or_zero(addr: SocketAddr) -> u64 {
    let (status, _, body) = http_get(addr, "/api/v1/summary?name=http.request", "");
    if status != "HTTP/1.1 200 OK" {
        return 0;
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|s| s["count"].as_u64())
        .unwrap_or(0)
}
