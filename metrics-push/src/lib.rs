//! Pushed wires: the metrics of any backend that lends a snapshot
//! ([`metrics_query::snapshot::Snapshots`]) sent to a receiver on a
//! schedule, rather than scraped. Today: Prometheus remote write 1.0
//! ([`RemoteWriter`]), to Prometheus (`--web.enable-remote-write-receiver`),
//! Mimir, Thanos Receive, VictoriaMetrics or any other receiver of it.
//!
//! The promises are those of the StatsD backend, for a wire that carries
//! totals rather than increments:
//!
//! - **batching**: every interval (default 15 s) one request holds every
//!   series of one snapshot (what a scrape would read then), named as the
//!   Prometheus text names it ([`metrics_exposition::remote_write`]);
//! - **a bounded queue**: requests not yet accepted wait, oldest first, up
//!   to [`RemoteWriteConfig::queue`]; beyond it the oldest is dropped and
//!   its samples counted ([`PushStatus::dropped_samples`]);
//! - **retries with backoff**: a connection error, a timeout
//!   ([`RemoteWriteConfig::timeout`]), a 5xx or a 429 is retried after a
//!   delay doubling from [`RemoteWriteConfig::backoff`] to
//!   [`RemoteWriteConfig::max_backoff`], with jitter (a fleet restarted at
//!   once does not retry in step); any other 4xx will never be accepted:
//!   the request is dropped and counted at once;
//! - **nothing lost silently across a receiver restart**: counters and
//!   distributions are cumulative totals, so the next accepted request
//!   carries everything recorded before it; the requests queued while the
//!   receiver was away are sent when it is back (up to the bound, the
//!   rest counted as dropped);
//! - **recording never waits**: the pusher is a task on the application's
//!   tokio runtime (no thread of its own) that reads a snapshot, the way a
//!   scrape does.
//!
//! # Time
//!
//! Samples are stamped with the clock given to
//! [`RemoteWriter::with_clock`] (the system clock by default; the
//! composed system passes the memory backend's recording timeline, which
//! never runs backwards), and the pusher never stamps a request earlier
//! than the one before it: after the clock steps back, each request is 1 ms
//! after the previous one until the clock passes it again (a receiver
//! refuses samples older than a series' last one); after a step forward,
//! samples carry the new time. Pushes are scheduled on tokio's monotonic
//! clock, so no step of the wall clock delays or hurries them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use metrics_exposition::ExpositionConfig;
//! use metrics_memory::MemoryMetrics;
//! use metrics_push::{RemoteWriteConfig, RemoteWriter};
//!
//! # async fn run() -> Result<(), metrics_push::PushError> {
//! let memory = Arc::new(MemoryMetrics::new());
//! let mut config = RemoteWriteConfig::new("http://127.0.0.1:9090/api/v1/write");
//! config.interval = Duration::from_secs(5);
//! let writer = RemoteWriter::start(
//!     memory,
//!     ExpositionConfig::default(),
//!     config,
//!     tokio::runtime::Handle::current(),
//! )?;
//! // ... later: one last push of everything recorded, then stop.
//! writer.shutdown_async().await;
//! println!("{:?}", writer.status());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod remote_write;

pub use remote_write::{Clock, PushError, PushStatus, RemoteWriteConfig, RemoteWriter};
