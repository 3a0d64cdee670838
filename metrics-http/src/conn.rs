//! A connection's bytes as hyper reads and writes them, with one change:
//! hyper's own answer to an HTTP/1 request it cannot parse (a 400, 414 or
//! 431 with no body, sent before any handler runs) is replaced with the
//! API's JSON error, naming what was wrong.
//!
//! hyper answers a request it cannot parse itself, with a head of its own
//! making (`HTTP/1.1 400 Bad Request`, `connection: close`,
//! `content-length: 0`, `date`), then closes the connection: that head is
//! always the last thing it writes. Every answer of ours carries a body (a
//! JSON error at least), so a write ending with exactly such a head is
//! hyper's. The bytes before it are written as they are; the head itself is
//! replaced with one announcing a JSON body, and that body, written before
//! hyper's flush or shutdown completes. HTTP/2 connections pass through
//! untouched (hyper's HTTP/1 parser never sees them).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The HTTP/2 client preface (prior knowledge).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes of a request kept to say what was wrong with it.
const KEEP: usize = 8 * 1024;

/// The longest head hyper writes for a parse error (status line, three
/// short headers).
const LONGEST_ERROR_HEAD: usize = 256;

/// `inner`, with hyper's bodiless parse-error answers given a JSON body.
pub(crate) struct JsonErrors<T> {
    inner: T,
    /// The largest request head the server takes (for the 431's message).
    max_header_bytes: usize,
    /// The bytes read since the last answer began (at most [`KEEP`]).
    recent: Vec<u8>,
    /// Whether the connection speaks HTTP/2 (`Some` once known).
    h2: Option<bool>,
    /// The replacing answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonErrors<T> {
    pub(crate) fn new(inner: T, max_header_bytes: usize) -> Self {
        JsonErrors {
            inner,
            max_header_bytes,
            recent: Vec::new(),
            h2: None,
            pending: None,
        }
    }

    /// Remembers what was read (for the diagnosis), and whether the
    /// connection is HTTP/2.
    fn saw(&mut self, read: &[u8]) {
        if self.h2 == Some(true) || read.is_empty() {
            return;
        }
        let room = KEEP.saturating_sub(self.recent.len());
        self.recent.extend_from_slice(&read[..read.len().min(room)]);
        if self.h2.is_none() {
            let n = self.recent.len().min(H2_PREFACE.len());
            if self.recent[..n] != H2_PREFACE[..n] {
                self.h2 = Some(false);
            } else if n == H2_PREFACE.len() {
                self.h2 = Some(true);
                self.recent = Vec::new();
            }
        }
    }

    /// An answer is being written: what follows belongs to the next request.
    fn answered(&mut self) {
        if self.recent.capacity() > 1024 {
            self.recent = Vec::new();
        } else {
            self.recent.clear();
        }
    }

    fn watching(&self) -> bool {
        self.h2 != Some(true)
    }
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is left of the replacing answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the place of hyper's `head` (of `len` bytes): reports it
    /// written and queues the JSON answer.
    fn replace(&mut self, head: ErrorHead<'_>, len: usize) -> Poll<io::Result<usize>> {
        let answer = head.json_answer(&self.recent, self.max_header_bytes);
        self.answered();
        self.pending = Some((answer, 0));
        Poll::Ready(Ok(len))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.saw(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if this.watching() {
            if let Some(head) = ErrorHead::ending(buf) {
                if head.start > 0 {
                    // What comes before (an earlier answer) goes as it is.
                    return Pin::new(&mut this.inner).poll_write(cx, &buf[..head.start]);
                }
                return this.replace(head, buf.len());
            }
            this.answered();
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if this.watching() {
            // hyper writes a head as one slice: the last one, when it is
            // the parse error's.
            let last = bufs.iter().rposition(|b| !b.is_empty());
            if let Some(i) = last
                && let Some(head) = ErrorHead::ending(&bufs[i])
            {
                let before: usize = bufs[..i].iter().map(|b| b.len()).sum();
                if before + head.start > 0 {
                    let mut slices: Vec<io::IoSlice<'_>> = bufs[..i].to_vec();
                    slices.push(io::IoSlice::new(&bufs[i][..head.start]));
                    return Pin::new(&mut this.inner).poll_write_vectored(cx, &slices);
                }
                return this.replace(head, bufs[i].len());
            }
            this.answered();
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// hyper's answer to a request it could not parse, at the end of a write.
#[derive(Debug, PartialEq, Eq)]
struct ErrorHead<'a> {
    /// Where it starts in the write.
    start: usize,
    /// `HTTP/1.1` or `HTTP/1.0`.
    version: &'a [u8],
    status: u16,
    /// Its `date` header's value, if any.
    date: Option<&'a [u8]>,
}

impl<'a> ErrorHead<'a> {
    /// The parse-error head `data` ends with, if it does: a status line of
    /// 400, 414 or 431, then only `connection: close`, `content-length: 0`
    /// and `date`, then the blank line.
    fn ending(data: &'a [u8]) -> Option<Self> {
        if !data.ends_with(b"\r\n\r\n") {
            return None;
        }
        let from = data.len().saturating_sub(LONGEST_ERROR_HEAD);
        let start = from + rfind(&data[from..], b"HTTP/1.")?;
        let head = &data[start..];
        let line_end = find(head, b"\r\n")?;
        let (version, status) = match &head[..line_end] {
            b"HTTP/1.1 400 Bad Request" => (&head[..8], 400),
            b"HTTP/1.0 400 Bad Request" => (&head[..8], 400),
            b"HTTP/1.1 414 URI Too Long" => (&head[..8], 414),
            b"HTTP/1.0 414 URI Too Long" => (&head[..8], 414),
            b"HTTP/1.1 431 Request Header Fields Too Large" => (&head[..8], 431),
            b"HTTP/1.0 431 Request Header Fields Too Large" => (&head[..8], 431),
            _ => return None,
        };
        let mut rest = &head[line_end + 2..];
        let (mut empty_body, mut date) = (false, None);
        loop {
            let end = find(rest, b"\r\n")?;
            let line = &rest[..end];
            rest = &rest[end + 2..];
            match line {
                b"" => break,
                b"connection: close" => {}
                b"content-length: 0" => empty_body = true,
                l if l.starts_with(b"date: ") => date = Some(&l[6..]),
                _ => return None,
            }
        }
        (rest.is_empty() && empty_body).then_some(ErrorHead {
            start,
            version,
            status,
            date,
        })
    }

    /// The whole answer that replaces this head: the same status, a JSON
    /// body naming what was wrong with `request` (the bytes read).
    fn json_answer(&self, request: &[u8], max_header_bytes: usize) -> Vec<u8> {
        let (reason, error, message, parameter) = match self.status {
            431 => (
                "Request Header Fields Too Large",
                "header_too_large",
                format!(
                    "the request head (request line and headers) is larger than {} bytes",
                    max_header_bytes.max(8192)
                ),
                None,
            ),
            414 => (
                "URI Too Long",
                "uri_too_long",
                "the request target (path and query) is longer than this server takes".to_owned(),
                Some("path".to_owned()),
            ),
            _ => {
                let (message, parameter) = diagnose(request);
                ("Bad Request", "bad_request", message, parameter)
            }
        };
        let body = serde_json::json!({
            "error": error,
            "message": message,
            "parameter": parameter,
        })
        .to_string();
        let mut out = Vec::with_capacity(body.len() + 160);
        out.extend_from_slice(self.version);
        out.extend_from_slice(format!(" {} {reason}\r\n", self.status).as_bytes());
        out.extend_from_slice(b"connection: close\r\ncontent-type: application/json\r\n");
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        if let Some(date) = self.date {
            out.extend_from_slice(b"date: ");
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body.as_bytes());
        out
    }
}

/// What is wrong with a request head hyper refused (400), as a message and
/// the part it names (`method`, `path`, `version` or a header's name).
fn diagnose(request: &[u8]) -> (String, Option<String>) {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(request) {
        Err(httparse::Error::TooManyHeaders) => {
            ("the request has more than 100 headers".to_owned(), None)
        }
        Err(httparse::Error::Version) => (
            "the request line does not end with HTTP/1.0 or HTTP/1.1".to_owned(),
            Some("version".to_owned()),
        ),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            malformed_header(request)
        }
        Err(_) => request_line(request),
        Ok(_) => {
            if let Some(path) = parsed.path
                && path.parse::<axum::http::Uri>().is_err()
            {
                return (
                    format!(
                        "the request target `{}` is not a valid URI",
                        shown(path.as_bytes())
                    ),
                    Some("path".to_owned()),
                );
            }
            for h in parsed.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length")
                    && (h.value.is_empty() || !h.value.iter().all(u8::is_ascii_digit))
                {
                    return (
                        format!(
                            "`Content-Length: {}` is not a length in bytes",
                            shown(h.value)
                        ),
                        Some("content-length".to_owned()),
                    );
                }
            }
            let lengths: Vec<&[u8]> = parsed
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| h.value)
                .collect();
            if lengths.windows(2).any(|w| w[0] != w[1]) {
                return (
                    "the request has several different `Content-Length` headers".to_owned(),
                    Some("content-length".to_owned()),
                );
            }
            if parsed
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
            {
                return (
                    "the request's `Transfer-Encoding` is not one this server reads (chunked, \
                     last, without a Content-Length)"
                        .to_owned(),
                    Some("transfer-encoding".to_owned()),
                );
            }
            ("the request head is malformed".to_owned(), None)
        }
    }
}

/// The request line's fault: its method, its target or its version.
fn request_line(request: &[u8]) -> (String, Option<String>) {
    let line = request.split(|&b| b == b'\n').next().unwrap_or(request);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if method.is_empty() || !method.iter().all(is_token) {
        return (
            format!(
                "the request line `{}` does not start with a method",
                shown(line)
            ),
            Some("method".to_owned()),
        );
    }
    let (message, part) = match (parts.next(), parts.next()) {
        (None | Some(b""), _) => ("has no target", "path"),
        (Some(target), _) if !target.iter().all(u8::is_ascii_graphic) => {
            return (
                format!(
                    "the request target `{}` has bytes a URI cannot hold (percent-encode them)",
                    shown(target)
                ),
                Some("path".to_owned()),
            );
        }
        (Some(_), None) => ("has no HTTP version", "version"),
        (Some(_), Some(_)) => ("is not `METHOD target HTTP/1.1`", "version"),
    };
    (
        format!("the request line `{}` {message}", shown(line)),
        Some(part.to_owned()),
    )
}

/// The first header line that is not `name: value`.
fn malformed_header(request: &[u8]) -> (String, Option<String>) {
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    for line in request.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) if colon > 0 && line[..colon].iter().all(is_token) => {
                let value = &line[colon + 1..];
                if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                    let name = String::from_utf8_lossy(&line[..colon]).into_owned();
                    return (
                        format!("the value of the header `{name}` holds control characters"),
                        Some(name),
                    );
                }
            }
            _ => {
                return (
                    format!("the header line `{}` is not `name: value`", shown(line)),
                    None,
                );
            }
        }
    }
    ("a header of the request is malformed".to_owned(), None)
}

/// Bytes as text for a message: invalid UTF-8 replaced, at most 80 characters.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .take(80)
        .collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 08:54:36 GMT\r\n\r\n";

    #[test]
    fn only_hypers_bodiless_parse_error_head_is_recognised() {
        let head = ErrorHead::ending(HEAD_400).unwrap();
        assert_eq!((head.start, head.status), (0, 400));
        assert_eq!(head.date, Some(&b"Sat, 05 Dec 2026 08:54:36 GMT"[..]));
        let mut after_an_answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec();
        after_an_answer.extend_from_slice(HEAD_400);
        assert_eq!(ErrorHead::ending(&after_an_answer).unwrap().start, 40);
        let too_large = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(ErrorHead::ending(too_large).unwrap().status, 431);
        for ours in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nx",
            b"data: HTTP/1.1 400 Bad Request\n\n",
        ] {
            assert_eq!(ErrorHead::ending(ours), None, "{}", String::from_utf8_lossy(ours));
        }
    }

    #[test]
    fn what_was_wrong_is_named() {
        let cases: [(&[u8], &str, Option<&str>); 8] = [
            (
                b"HELLO THERE\r\n\r\n",
                "has no HTTP version",
                Some("version"),
            ),
            (b"G(T / HTTP/1.1\r\n\r\n", "method", Some("method")),
            (
                b"GET /a\xff HTTP/1.1\r\n\r\n",
                "percent-encode",
                Some("path"),
            ),
            (b"GET / HTTP/3.0\r\n\r\n", "HTTP/1.1", Some("version")),
            (
                b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                "Content-Length: abc",
                Some("content-length"),
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "several",
                Some("content-length"),
            ),
            (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", "bad header", None),
            (
                b"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
                "control",
                Some("X-A"),
            ),
        ];
        for (request, says, parameter) in cases {
            let (message, named) = diagnose(request);
            assert!(message.contains(says), "{message}");
            assert_eq!(named.as_deref(), parameter, "{message}");
        }
    }

    #[tokio::test]
    async fn the_head_is_replaced_by_a_json_answer_and_earlier_bytes_pass() {
        let (client, server) = tokio::io::duplex(64);
        let mut io = JsonErrors::new(server, 16 * 1024);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = io.read(&mut buf).await.unwrap();
        assert!(n > 0);
        let mut write = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec();
        write.extend_from_slice(HEAD_400);
        // Small pipe: written in several pieces, as a busy socket would.
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            client_read.read_to_end(&mut out).await.unwrap();
            out
        });
        io.write_all(&write).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let out = String::from_utf8(reader.await.unwrap()).unwrap();
        let (earlier, answer) = out.split_at(40);
        assert_eq!(earlier, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n"), "{answer}");
        assert!(
            answer.contains("date: Sat, 05 Dec 2026 08:54:36 GMT\r\n"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let e: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(e["error"], "bad_request", "{e}");
        assert_eq!(e["parameter"], "content-length", "{e}");
        let length: usize = answer
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
    }

    #[tokio::test]
    async fn http2_connections_pass_through() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut io = JsonErrors::new(server, 16 * 1024);
        client.write_all(H2_PREFACE).await.unwrap();
        let mut buf = [0u8; 64];
        let mut read = 0;
        while read < H2_PREFACE.len() {
            read += io.read(&mut buf[read..]).await.unwrap();
        }
        assert_eq!(io.h2, Some(true));
        io.write_all(HEAD_400).await.unwrap();
        io.flush().await.unwrap();
        let mut out = vec![0u8; HEAD_400.len()];
        client.read_exact(&mut out).await.unwrap();
        assert_eq!(out, HEAD_400);
    }
}
