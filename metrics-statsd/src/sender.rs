//! The background sender: drains the queue, flushes the aggregates on the
//! interval, packs lines into datagrams and sends them.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cadence::{MetricSink, UdpMetricSink};
use crossbeam_channel::{Receiver, Sender, select};
use metrics_protocol::DropReason;

use crate::format::{self, Rendered};
use crate::{Kind, Shared};

/// One timer or histogram sample (or, with aggregation off, any sample).
pub(crate) struct Sample {
    pub series: Arc<crate::Entry>,
    pub value: f64,
    pub rate: f64,
    /// What the sample does (a gauge series also carries relative changes).
    pub op: Kind,
}

/// Requests to the sender; each carries a channel to answer on.
pub(crate) enum Ctrl {
    Flush(Sender<()>),
    Shutdown(Sender<()>),
}

/// Lines packed into one datagram.
struct Batch {
    buf: String,
    lines: u64,
    max: usize,
    /// Lines of the previous datagram: a refused send reports *its* loss.
    last_lines: u64,
}

pub(crate) fn run(
    shared: Arc<Shared>,
    socket: UdpSocket,
    rx: Receiver<Sample>,
    ctrl: Receiver<Ctrl>,
) {
    let sink = match socket.peer_addr() {
        Ok(peer) => match UdpMetricSink::from(peer, socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "StatsD sender could not start");
                return;
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "StatsD sender could not start");
            return;
        }
    };
    let max = shared.config.max_datagram_bytes;
    let mut batch = Batch {
        buf: String::with_capacity(max),
        lines: 0,
        max,
        last_lines: 0,
    };
    let interval = Duration::from_millis(shared.config.flush_interval_ms);
    let mut next_flush = Instant::now() + interval;
    let mut line = String::with_capacity(128);
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        select! {
            recv(rx) -> s => match s {
                Ok(s) => emit_sample(&shared, &sink, &mut batch, &mut line, &s),
                Err(_) => {
                    flush_all(&shared, &sink, &mut batch, &mut line, &rx);
                    return;
                }
            },
            recv(ctrl) -> c => {
                flush_all(&shared, &sink, &mut batch, &mut line, &rx);
                match c {
                    Ok(Ctrl::Flush(reply)) => {
                        let _ = reply.send(());
                    }
                    Ok(Ctrl::Shutdown(reply)) => {
                        let _ = reply.send(());
                        return;
                    }
                    Err(_) => return,
                }
            },
            default(wait) => {
                flush_aggregates(&shared, &sink, &mut batch, &mut line);
                send(&shared, &sink, &mut batch);
                next_flush = Instant::now() + interval;
            }
        }
    }
}

fn flush_all(
    shared: &Shared,
    sink: &UdpMetricSink,
    batch: &mut Batch,
    line: &mut String,
    rx: &Receiver<Sample>,
) {
    while let Ok(s) = rx.try_recv() {
        emit_sample(shared, sink, batch, line, &s);
    }
    flush_aggregates(shared, sink, batch, line);
    send(shared, sink, batch);
}

fn emit_sample(
    shared: &Shared,
    sink: &UdpMetricSink,
    batch: &mut Batch,
    line: &mut String,
    s: &Sample,
) {
    let r = &s.series.rendered;
    match s.op {
        Kind::Gauge => push_gauge(shared, sink, batch, line, r, s.value),
        Kind::GaugeDelta => push_gauge_delta(shared, sink, batch, line, r, s.value),
        op => push(
            shared,
            sink,
            batch,
            line,
            r,
            &s.value.to_string(),
            op.wire(shared.config.flavor),
            s.rate,
        ),
    }
}

/// An absolute gauge value; a negative one goes out as `0` then `-N`, since
/// a lone `-N` is read as a relative change.
fn push_gauge(
    shared: &Shared,
    sink: &UdpMetricSink,
    batch: &mut Batch,
    line: &mut String,
    r: &Rendered,
    v: f64,
) {
    if v < 0.0 {
        push(shared, sink, batch, line, r, "0", "g", 1.0);
    }
    push(shared, sink, batch, line, r, &v.to_string(), "g", 1.0);
}

/// A relative gauge change, always signed (`+N` or `-N`).
fn push_gauge_delta(
    shared: &Shared,
    sink: &UdpMetricSink,
    batch: &mut Batch,
    line: &mut String,
    r: &Rendered,
    d: f64,
) {
    let v = if d >= 0.0 {
        format!("+{d}")
    } else {
        d.to_string()
    };
    push(shared, sink, batch, line, r, &v, "g", 1.0);
}

fn flush_aggregates(shared: &Shared, sink: &UdpMetricSink, batch: &mut Batch, line: &mut String) {
    let entries: Vec<Arc<crate::Entry>> = shared.series.read().values().cloned().collect();
    for e in entries {
        match e.kind {
            Kind::Counter => {
                let (count, sum) = e.take_counter();
                if count > 0 {
                    push(
                        shared,
                        sink,
                        batch,
                        line,
                        &e.rendered,
                        &sum.to_string(),
                        "c",
                        1.0,
                    );
                }
            }
            Kind::Gauge => {
                let g = std::mem::take(&mut *e.gauge.lock());
                match g.set {
                    Some(v) => push_gauge(shared, sink, batch, line, &e.rendered, v + g.delta),
                    None if g.changed => {
                        push_gauge_delta(shared, sink, batch, line, &e.rendered, g.delta)
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn push(
    shared: &Shared,
    sink: &UdpMetricSink,
    batch: &mut Batch,
    line: &mut String,
    r: &Rendered,
    value: &str,
    kind: &str,
    rate: f64,
) {
    line.clear();
    format::line(line, r, value, kind, rate);
    if !batch.buf.is_empty() && batch.buf.len() + 1 + line.len() > batch.max {
        send(shared, sink, batch);
    }
    if !batch.buf.is_empty() {
        batch.buf.push('\n');
    }
    batch.buf.push_str(line);
    batch.lines += 1;
    if batch.buf.len() >= batch.max {
        send(shared, sink, batch);
    }
}

/// Sends the batch as one datagram.
///
/// The socket is connected, so the kernel reports an ICMP "port
/// unreachable" for a datagram on the *next* send, which fails without
/// sending. So a refused send means the previous datagram was lost: its
/// lines are counted as dropped, and this one is tried once more.
fn send(shared: &Shared, sink: &UdpMetricSink, batch: &mut Batch) {
    if batch.buf.is_empty() {
        return;
    }
    let stats = &shared.stats;
    let mut result = sink.emit(&batch.buf);
    if let Err(e) = &result {
        stats.send_errors.fetch_add(1, Ordering::Relaxed);
        stats.reachable.store(false, Ordering::Relaxed);
        *stats.last_error.lock() = Some(e.to_string());
        tracing::debug!(error = %e, "StatsD daemon unreachable; the previous datagram was lost");
        shared.drops.add(DropReason::SendFailed, batch.last_lines);
        batch.last_lines = 0;
        result = sink.emit(&batch.buf);
    } else {
        stats.reachable.store(true, Ordering::Relaxed);
    }
    match result {
        Ok(_) => {
            stats.datagrams.fetch_add(1, Ordering::Relaxed);
            stats.lines.fetch_add(batch.lines, Ordering::Relaxed);
            batch.last_lines = batch.lines;
        }
        Err(e) => {
            stats.send_errors.fetch_add(1, Ordering::Relaxed);
            shared.drops.add(DropReason::SendFailed, batch.lines);
            *stats.last_error.lock() = Some(e.to_string());
        }
    }
    batch.buf.clear();
    batch.lines = 0;
}
