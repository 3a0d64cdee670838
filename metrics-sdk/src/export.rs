//! Exports to endpoints: files, and HTTP URLs receiving a POST.

use std::path::PathBuf;
use std::time::Duration;

use metrics_exposition::{ExportFormat, Exporter};
use metrics_protocol::MetricsError;
use metrics_protocol::app::EndpointResults;

use crate::error::AgentError;

/// Where one export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file, written whole (created or replaced).
    File(PathBuf),
    /// An `http://` URL, sent one POST with the export as its body.
    Http(String),
}

/// Reads an endpoint: its target and the format of its export. An endpoint
/// that cannot be used is a [`MetricsError::InvalidArgument`] naming
/// `export_endpoints` and the value; an unknown format is
/// [`MetricsError::UnsupportedFormat`].
///
/// The format is the `format=` query parameter if there is one, else the
/// extension of the path: `.json`; `.csv`; `.prom` or `.txt` (Prometheus
/// text); `.om` or `.openmetrics`. Without either, JSON. A `file://` prefix
/// is allowed for files; `https://` is not supported (this build has no
/// TLS).
///
/// ```
/// use metrics_sdk::export::{parse_endpoint, Target};
/// use metrics_exposition::ExportFormat;
/// let (t, f) = parse_endpoint("/tmp/metrics.prom")?;
/// assert_eq!((t, f), (Target::File("/tmp/metrics.prom".into()), ExportFormat::Prometheus));
/// let (t, f) = parse_endpoint("http://127.0.0.1:9091/ingest?format=csv")?;
/// assert_eq!(f, ExportFormat::Csv);
/// assert!(matches!(t, Target::Http(_)));
/// assert!(parse_endpoint("out.xlsx").is_err());
/// assert!(parse_endpoint("file://").is_err());
/// # Ok::<(), metrics_protocol::MetricsError>(())
/// ```
pub fn parse_endpoint(endpoint: &str) -> Result<(Target, ExportFormat), MetricsError> {
    let e = endpoint.trim();
    if e.is_empty() {
        return Err(
            AgentError::config("export_endpoints", e, "an endpoint must not be empty").into(),
        );
    }
    let lower = e.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(AgentError::config(
            "export_endpoints",
            e,
            "https is not supported (no TLS in this build); use http:// or a file",
        )
        .into());
    }
    let is_http = lower.starts_with("http://");
    let (path, query) = match e.split_once('?') {
        Some((p, q)) if is_http || q.starts_with("format=") => (p, Some(q)),
        _ => (e, None),
    };
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("format="))
            .map(str::to_owned)
    });
    let format = match from_query {
        Some(f) => f.parse::<ExportFormat>()?,
        None => format_from_path(if is_http { url_path(path) } else { path })?,
    };
    let target = if is_http {
        Target::Http(e.to_owned())
    } else {
        let file = path.strip_prefix("file://").unwrap_or(path);
        if file.trim().is_empty() {
            return Err(
                AgentError::config("export_endpoints", e, "a file endpoint needs a path").into(),
            );
        }
        Target::File(PathBuf::from(file))
    };
    Ok((target, format))
}

fn url_path(url: &str) -> &str {
    let rest = &url["http://".len().min(url.len())..];
    rest.find('/').map_or("", |i| &rest[i..])
}

fn format_from_path(path: &str) -> Result<ExportFormat, MetricsError> {
    let file = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = file.rsplit_once('.') else {
        return Ok(ExportFormat::Json);
    };
    match ext.to_ascii_lowercase().as_str() {
        "json" => Ok(ExportFormat::Json),
        "csv" => Ok(ExportFormat::Csv),
        "prom" | "txt" => Ok(ExportFormat::Prometheus),
        "om" | "openmetrics" => Ok(ExportFormat::OpenMetrics),
        other => Err(MetricsError::UnsupportedFormat(other.to_owned())),
    }
}

/// Exports through `exporter` to every endpoint, each on `runtime`'s blocking
/// pool (HTTP requests time out after `timeout`), and returns each
/// endpoint's outcome: one failure does not stop the rest. The returned
/// future may be awaited on any executor (or `block_on`).
pub async fn export_to_endpoints(
    runtime: &tokio::runtime::Handle,
    exporter: Exporter,
    endpoints: &[String],
    timeout: Duration,
) -> EndpointResults {
    let pending: Vec<_> = endpoints
        .iter()
        .map(|e| {
            let (exporter, endpoint) = (exporter.clone(), e.clone());
            let job = runtime.spawn_blocking(move || export_one(&exporter, &endpoint, timeout));
            (e.clone(), job)
        })
        .collect();
    let mut results = EndpointResults::new();
    for (e, job) in pending {
        let r = job.await.unwrap_or_else(|_| {
            Err(MetricsError::io(
                format!("exporting to `{e}`"),
                std::io::Error::other("the export panicked"),
            ))
        });
        if let Err(err) = &r {
            tracing::warn!(endpoint = %e, error = %err, "export failed");
        }
        results.insert(e, r);
    }
    results
}

/// Exports through `exporter` to one endpoint, on the caller's thread.
pub fn export_one(
    exporter: &Exporter,
    endpoint: &str,
    timeout: Duration,
) -> Result<(), MetricsError> {
    let (target, format) = parse_endpoint(endpoint)?;
    let body = exporter.export(format)?;
    match target {
        Target::File(path) => std::fs::write(&path, body)
            .map_err(|e| MetricsError::io(format!("writing {}", path.display()), e)),
        Target::Http(url) => post(&url, format.content_type(), body, timeout),
    }
}

#[cfg(not(feature = "push"))]
fn post(url: &str, _: &str, _: String, _: Duration) -> Result<(), MetricsError> {
    Err(MetricsError::io(
        format!("POST {url}"),
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "built without HTTP push (the `push` feature of metrics-sdk)",
        ),
    ))
}

#[cfg(feature = "push")]
fn post(
    url: &str,
    content_type: &str,
    body: String,
    timeout: Duration,
) -> Result<(), MetricsError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .build()
        .into();
    agent
        .post(url)
        .header("Content-Type", content_type)
        .send(body)
        .map(|_| ())
        .map_err(|e| match e {
            ureq::Error::StatusCode(code) => MetricsError::io(
                format!("POST {url}"),
                std::io::Error::other(format!("the server answered HTTP {code}")),
            ),
            ureq::Error::Io(io) => MetricsError::io(format!("POST {url}"), io),
            other => MetricsError::io(
                format!("POST {url}"),
                std::io::Error::other(other.to_string()),
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::metrics_of;
    use crate::test_util::test_runtime;
    use metrics_memory::MemoryMetrics;
    use std::sync::Arc;
    #[cfg(feature = "push")]
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-request HTTP server on 127.0.0.1: returns the port and a
    /// handle yielding (request head, body).
    #[cfg(feature = "push")]
    fn one_shot_server(status: u16) -> (u16, std::thread::JoinHandle<(String, String)>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            rt.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body_start, len) = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before the headers ended");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        break (head, i + 4, len);
                    }
                };
                while buf.len() < body_start + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before the body ended");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                sock.write_all(reply.as_bytes()).await.unwrap();
                sock.shutdown().await.unwrap();
                (
                    head,
                    String::from_utf8_lossy(&buf[body_start..body_start + len]).to_string(),
                )
            })
        });
        (port, h)
    }

    #[test]
    fn formats_come_from_the_query_or_the_extension() {
        let f = |e: &str| parse_endpoint(e).map(|(_, f)| f);
        assert_eq!(f("a.json").unwrap(), ExportFormat::Json);
        assert_eq!(f("a.csv").unwrap(), ExportFormat::Csv);
        assert_eq!(f("a.txt").unwrap(), ExportFormat::Prometheus);
        assert_eq!(f("a.om").unwrap(), ExportFormat::OpenMetrics);
        assert_eq!(f("dir.d/plain").unwrap(), ExportFormat::Json);
        assert_eq!(f("a.json?format=csv").unwrap(), ExportFormat::Csv);
        assert_eq!(
            f("http://127.0.0.1:1/m.prom").unwrap(),
            ExportFormat::Prometheus
        );
        assert_eq!(f("http://127.0.0.1:1").unwrap(), ExportFormat::Json);
        assert!(matches!(f("a.xml"), Err(MetricsError::UnsupportedFormat(x)) if x == "xml"));
        assert!(matches!(
            f("http://127.0.0.1:1/x?format=yaml"),
            Err(MetricsError::UnsupportedFormat(_))
        ));
        assert!(
            f("https://127.0.0.1/x")
                .unwrap_err()
                .to_string()
                .contains("https")
        );
        assert_eq!(
            parse_endpoint("file:///tmp/x.csv").unwrap().0,
            Target::File("/tmp/x.csv".into())
        );
    }

    #[test]
    #[cfg(feature = "push")]
    fn exports_to_a_file_and_an_http_server_and_reports_a_failure() {
        let m = Arc::new(MemoryMetrics::new());
        metrics_of(&m).record_counter("http.requests", 3.0, &[("code", "200")]);
        let dir = std::env::temp_dir().join(format!("metrics-sdk-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out.prom");
        let _ = std::fs::remove_file(&file);
        let (port, server) = one_shot_server(200);
        let (bad_port, bad_server) = one_shot_server(500);
        let endpoints = vec![
            file.display().to_string(),
            format!("http://127.0.0.1:{port}/ingest?format=json"),
            dir.join("no/such/dir/out.csv").display().to_string(),
            format!("http://127.0.0.1:{bad_port}/ingest.csv"),
        ];
        let rt = test_runtime();
        let results = rt.block_on(export_to_endpoints(
            rt.handle(),
            Exporter::new(m),
            &endpoints,
            Duration::from_secs(10),
        ));
        assert_eq!(results.len(), 4);
        assert!(results[&endpoints[0]].is_ok(), "{results:?}");
        assert!(results[&endpoints[1]].is_ok(), "{results:?}");
        let missing_dir = results[&endpoints[2]].as_ref().unwrap_err().to_string();
        assert!(missing_dir.contains("no/such/dir"), "{missing_dir}");
        let refused = results[&endpoints[3]].as_ref().unwrap_err().to_string();
        assert!(refused.contains("500"), "{refused}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("http_requests_total{code=\"200\"} 3"),
            "{text}"
        );
        let (head, body) = server.join().unwrap();
        assert!(
            head.starts_with("POST /ingest?format=json HTTP/1.1"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(json.to_string().contains("http.requests"), "{body}");
        let (_, csv) = bad_server.join().unwrap();
        assert!(csv.contains("http.requests"), "{csv}");
    }

    #[test]
    fn a_closed_port_is_an_error_for_that_endpoint_only() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let m = Arc::new(MemoryMetrics::new());
        metrics_of(&m).record_gauge("g", 1.0, &[]);
        let endpoints = vec![format!("http://127.0.0.1:{port}/x"), "bad.xlsx".to_owned()];
        let rt = test_runtime();
        let r = rt.block_on(export_to_endpoints(
            rt.handle(),
            Exporter::new(m),
            &endpoints,
            Duration::from_secs(5),
        ));
        assert!(
            matches!(r[&endpoints[0]], Err(MetricsError::Io { .. })),
            "{r:?}"
        );
        assert!(
            matches!(r[&endpoints[1]], Err(MetricsError::UnsupportedFormat(_))),
            "{r:?}"
        );
    }

    #[test]
    #[cfg(not(feature = "push"))]
    fn without_push_an_http_endpoint_fails_and_says_why() {
        let m = Arc::new(MemoryMetrics::new());
        metrics_of(&m).record_gauge("g", 1.0, &[]);
        let endpoints = vec!["http://127.0.0.1:9/x.json".to_owned()];
        let rt = test_runtime();
        let r = rt.block_on(export_to_endpoints(
            rt.handle(),
            Exporter::new(m),
            &endpoints,
            Duration::from_secs(5),
        ));
        let e = r[&endpoints[0]].as_ref().unwrap_err().to_string();
        assert!(e.contains("`push` feature"), "{e}");
    }
}
