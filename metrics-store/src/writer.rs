//! [`HistoryWriter`]: the background task that moves sealed bins from the
//! memory backend into a [`Store`], on the application's runtime.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metrics_memory::{MemoryMetrics, SealedOutcomes};
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::{OpenRows, Store, StoreError, StoreRing, StoreUrl, StoredBin};

/// How the writer runs.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Where history goes.
    pub url: StoreUrl,
    /// This instance's name in the rows it writes.
    pub instance: String,
    /// How often sealed bins and the open bins' state so far are written
    /// (one transaction each, replacing the open bins' rows the previous
    /// flush wrote): the most history a killed process loses.
    pub flush_interval: Duration,
    /// Bins (and, on their own, outcome bins) waiting while the database is slow or down; beyond this the
    /// oldest are dropped and counted.
    pub max_pending: usize,
    /// Wait between attempts to reach a database that is down.
    pub retry_interval: Duration,
    /// Retention per ring, applied every `retention_interval`.
    pub rings: Vec<StoreRing>,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// How often the writer asks the database whether it answers between
    /// flushes (and at a flush with nothing to write), so that an outage
    /// shows in [`WriterStatus`] without waiting for a write.
    pub ping_interval: Duration,
    /// How long the database may take to answer: a ping gives up after
    /// it, and a connection attempt, write or retention pass still running
    /// after it makes [`HistoryWriter::status`] unhealthy ("not answering
    /// for N s") until it returns.
    pub answer_timeout: Duration,
}

impl WriterConfig {
    /// Defaults for `url` and `instance`: flush every 2 s, at most
    /// 1,000,000 pending bins, retry every 5 s, [`StoreRing::defaults`]
    /// applied every minute, a ping every 5 s, answers within 2 s: a
    /// database that stops answering shows as unhealthy within 7 s, less
    /// than one finest bin.
    pub fn new(url: StoreUrl, instance: impl Into<String>) -> Self {
        WriterConfig {
            url,
            instance: instance.into(),
            flush_interval: Duration::from_secs(2),
            max_pending: 1_000_000,
            retry_interval: Duration::from_secs(5),
            rings: StoreRing::defaults(),
            retention_interval: Duration::from_secs(60),
            ping_interval: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(2),
        }
    }
}

/// The writer's state, as health reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriterStatus {
    /// Connected, the last write and the last ping succeeded, and nothing
    /// has been waiting on the database for longer than
    /// [`WriterConfig::answer_timeout`].
    pub healthy: bool,
    /// The store's URL (password hidden).
    pub url: String,
    /// The last error, until a write or ping succeeds; or how long the
    /// database has not been answering.
    pub last_error: Option<String>,
    /// Bins (series and outcome bins) waiting to be written.
    pub pending: usize,
    /// Bins (series and outcome bins) written since start: counted only
    /// once the database committed them.
    pub written: u64,
    /// Rows of this writer in the database (a series bin is one row, an
    /// outcome bin one per non-zero count): the rows it committed less the
    /// open bins' partial rows later flushes replaced.
    pub rows: u64,
    /// Bins dropped because too many were pending.
    pub dropped: u64,
    /// Successful flushes since start.
    pub flushes: u64,
}

struct Shared {
    status: Mutex<WriterStatus>,
    /// What the writer is waiting on the database for, since when.
    busy: Mutex<Option<(Instant, String)>>,
    /// [`WriterConfig::answer_timeout`].
    answer_timeout: Duration,
    pending: Mutex<VecDeque<StoredBin>>,
    /// Outcome bins waiting, bounded like `pending` (on their own).
    pending_outcomes: Mutex<VecDeque<SealedOutcomes>>,
    /// The open bins: what the next flush writes of them, and the partial
    /// rows earlier flushes left for them.
    open: Mutex<OpenBins>,
    store: Mutex<Option<Store>>,
    stop: AtomicBool,
    wake: Notify,
    /// This writer's run id, kept across reconnections.
    run: String,
}

/// Moves the memory backend's sealed bins into a store in the background.
///
/// Recording never waits on it: every `flush_interval` the writer asks the
/// backend for the bins that ended since its last call
/// ([`MemoryMetrics::sealed_bins`], which only takes each series' lock
/// briefly), queues them (at most `max_pending`; the oldest beyond are
/// dropped and counted) and writes the queue in one transaction, with the
/// open bins' state so far ([`MemoryMetrics::open_bins`]) replacing the
/// partial rows the previous flush wrote ([`Store::write_replacing`]): a
/// process killed without warning loses at most one `flush_interval`
/// (2 s by default) of samples. A database
/// that is down or refuses connections is retried every `retry_interval`
/// while bins queue up; writing resumes when it is back. Between flushes
/// it asks the database every `ping_interval` whether it answers, and a
/// wait on the database longer than `answer_timeout` shows in
/// [`status`](Self::status) while it lasts: a database that goes down or
/// stops answering is reported unhealthy within `ping_interval +
/// answer_timeout` (7 s by default), not when a write finally fails. A panic in the
/// writer is logged and the writer restarts; recording is never affected.
///
/// Dropping it (or [`shutdown`](Self::shutdown)) writes everything recorded
/// so far, the open bin included. A process killed outright loses at most
/// the bins sealed since the last flush plus the open one: with the
/// defaults, the last 20 seconds.
///
/// Time is the memory backend's recording timeline
/// ([`MemoryMetrics::clock_ms`]; the rule is in `metrics-memory`'s crate
/// docs, "Time"), which never runs backwards: it follows the wall clock and
/// its steps forward; after a step back it goes on at the rate of the
/// monotonic clock until the wall clock passes it again. The writer's
/// watermark (the end of the bins collected so far) follows the timeline,
/// so it only moves forward and never skips a bin: a wall clock stepped
/// back or forward, and its correction, lose nothing, and each bin is
/// stored once, at its timeline time (while the wall clock is behind the
/// timeline, later than the wall clock said; the memory backend's health
/// says by how much).
pub struct HistoryWriter {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    done: Arc<Done>,
    stopped: AtomicBool,
    started_ms: i64,
    instance: String,
}

/// Set when the writer's task has ended (written everything and stopped,
/// or been dropped by a runtime shutting down): what
/// [`HistoryWriter::shutdown`] waits for.
#[derive(Default)]
struct Done {
    flag: Mutex<bool>,
    cond: Condvar,
    notify: Notify,
}

impl Done {
    fn set(&self) {
        *self.flag.lock() = true;
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        *self.flag.lock()
    }

    /// Blocks the calling thread until set.
    fn wait(&self) {
        let mut done = self.flag.lock();
        while !*done {
            self.cond.wait(&mut done);
        }
    }

    async fn wait_async(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read: a `set` in between wakes it.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// Sets [`Done`] when dropped: when the writer's task returns, and when a
/// runtime shutting down drops it unfinished.
struct SetOnDrop(Arc<Done>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

impl std::fmt::Debug for HistoryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryWriter")
            .field("status", &self.status())
            .finish()
    }
}

impl HistoryWriter {
    /// Starts writing `memory`'s history per `config`, as a task on
    /// `runtime` (the application's: the writer has no thread or runtime
    /// of its own). Only an `off` URL is an error; a database that cannot
    /// be reached yet is retried.
    ///
    /// The runtime must run tasks while the writer works: a multi-threaded
    /// runtime, or a current-thread one that is driven (its writes wait
    /// otherwise; recording never does).
    pub fn start(
        memory: Arc<MemoryMetrics>,
        config: WriterConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, StoreError> {
        if config.url == StoreUrl::Off {
            return Err(StoreError::Off);
        }
        let shared = Arc::new(Shared {
            status: Mutex::new(WriterStatus {
                url: config.url.to_string(),
                last_error: Some("not connected yet".into()),
                ..WriterStatus::default()
            }),
            busy: Mutex::new(None),
            answer_timeout: config.answer_timeout,
            pending: Mutex::new(VecDeque::new()),
            pending_outcomes: Mutex::new(VecDeque::new()),
            open: Mutex::new(OpenBins::default()),
            store: Mutex::new(None),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            run: format!(
                "{}-{:x}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
        });
        let instance = config.instance.clone();
        // History starts at the open bin when the writer starts (not when
        // its task first runs).
        let finest = memory.finest_bin_ms().max(1);
        let start_watermark = now_ms(&memory).div_euclid(finest) * finest;
        let done = Arc::new(Done::default());
        let guard = SetOnDrop(done.clone());
        let sh = shared.clone();
        let spawner = runtime.clone();
        runtime.spawn(async move {
            let _guard = guard;
            let mut watermark = start_watermark;
            loop {
                // A task of its own, so that a panic in it is caught here.
                let task =
                    spawner.spawn(run(memory.clone(), config.clone(), sh.clone(), watermark));
                match task.await {
                    Ok(()) => break,
                    Err(e) if e.is_cancelled() => break,
                    Err(e) => {
                        tracing::error!(error = %e, "history writer failed; restarting it");
                        sh.status.lock().last_error = Some(format!("writer restarted: {e}"));
                        if sh.stop.load(Ordering::Acquire) {
                            break;
                        }
                        // The bins between the last watermark and now
                        // are lost; restart from the present.
                        watermark = now_ms(&memory).div_euclid(finest) * finest;
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = sh.wake.notified() => {}
                        }
                    }
                }
            }
        });
        Ok(HistoryWriter {
            shared,
            handle: runtime,
            done,
            stopped: AtomicBool::new(false),
            started_ms: start_watermark,
            instance,
        })
    }

    /// The writer's state, without waiting on the database: a connection
    /// attempt, write, ping or retention pass running for longer than
    /// [`WriterConfig::answer_timeout`] reads as unhealthy, "not answering
    /// for N s".
    pub fn status(&self) -> WriterStatus {
        let mut s = self.shared.status.lock().clone();
        s.pending = self.shared.pending.lock().len() + self.shared.pending_outcomes.lock().len();
        if let Some((since, what)) = &*self.shared.busy.lock() {
            let waited = since.elapsed();
            if waited >= self.shared.answer_timeout {
                s.healthy = false;
                s.last_error = Some(format!(
                    "not answering for {} s ({what}){}",
                    waited.as_secs(),
                    s.last_error
                        .as_deref()
                        .map(|e| format!("; before that: {e}"))
                        .unwrap_or_default()
                ));
            }
        }
        s
    }

    /// The store once connected, for queries.
    pub fn store(&self) -> Option<Store> {
        self.shared.store.lock().clone()
    }

    /// The instance in the rows this writer writes.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The run id in the rows this writer writes (see
    /// [`HistoryQuery::skip_run_since`](crate::HistoryQuery::skip_run_since)).
    pub fn run(&self) -> &str {
        &self.shared.run
    }

    /// Where this writer's history starts: the start of the finest bin
    /// open when it was started (ms since the epoch). Bins before it come
    /// from earlier runs (or other instances).
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// Runs `f` on the writer's runtime and waits for it: how synchronous
    /// code (an HTTP handler on a blocking thread) queries the store.
    /// `None` after shutdown. Called on a worker of a multi-threaded
    /// runtime, the worker's other tasks move to another thread meanwhile
    /// ([`tokio::task::block_in_place`]); it must not be called from a
    /// task of a current-thread runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        Some(blocking(|| self.handle.block_on(f)))
    }

    /// Writes everything recorded so far (the open bin included) and stops;
    /// later calls do nothing.
    ///
    /// Waits for the writer's last flush from a thread outside any runtime
    /// and from a worker of a multi-threaded runtime (its other tasks move
    /// to another thread meanwhile). Called from a task of a current-thread
    /// runtime, where blocking would stop the very runtime the writer may
    /// need, it only asks the writer to stop: the last flush happens while
    /// that runtime runs on; await [`shutdown_async`](Self::shutdown_async)
    /// there instead.
    pub fn shutdown(&self) {
        if !self.request_stop() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread => {
                tracing::debug!(
                    "history writer asked to stop from a current-thread runtime: not waiting for its last flush"
                );
            }
            _ => blocking(|| self.done.wait()),
        }
    }

    /// [`shutdown`](Self::shutdown) for async code: writes everything
    /// recorded so far (the open bin included) and returns once the writer
    /// has stopped; later calls return at once.
    pub async fn shutdown_async(&self) {
        if self.request_stop() {
            self.done.wait_async().await;
        }
    }

    /// Asks the writer to stop; false when it was asked before.
    fn request_stop(&self) -> bool {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        true
    }
}

/// Runs `f`, which blocks the calling thread: on a worker of a
/// multi-threaded runtime through [`tokio::task::block_in_place`] (the
/// worker's tasks, the writer's among them, go on elsewhere), else as is.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl Drop for HistoryWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Now on the memory backend's recording timeline, which never runs
/// backwards (whatever the wall clock does): what the watermark follows.
fn now_ms(memory: &MemoryMetrics) -> i64 {
    memory.clock_ms()
}

/// Moves new sealed bins (those ending in `[from, to)` of the recording
/// timeline) into the pending queue; drops the oldest beyond the bound.
fn collect(memory: &MemoryMetrics, shared: &Shared, from: i64, to: i64, max: usize) {
    if to <= from {
        return;
    }
    let bins = memory.sealed_bins(from, to);
    let outcomes = memory.sealed_outcomes(from, to);
    let over = bound(&shared.pending, bins, max) + bound(&shared.pending_outcomes, outcomes, max);
    if over > 0 {
        shared.status.lock().dropped += over as u64;
        tracing::warn!(
            dropped = over,
            "history store behind: oldest pending bins dropped"
        );
    }
}

/// Appends `new` to `queue`, dropping the oldest beyond `max`; returns how
/// many were dropped.
fn bound<T>(queue: &Mutex<VecDeque<T>>, new: Vec<T>, max: usize) -> usize {
    let mut q = queue.lock();
    q.extend(new);
    let over = q.len().saturating_sub(max);
    q.drain(..over);
    over
}

/// Runs `f`, a wait on the database for `what`, marked in `shared.busy`
/// meanwhile (what [`HistoryWriter::status`] reports once it lasts), and
/// gives up after `limit` ([`StoreError::Timeout`]).
async fn waiting<T>(
    shared: &Shared,
    what: String,
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    *shared.busy.lock() = Some((Instant::now(), what.clone()));
    let r = tokio::time::timeout(limit, f).await;
    *shared.busy.lock() = None;
    r.unwrap_or(Err(StoreError::Timeout { what, after: limit }))
}

/// The open bins between flushes: their state as of the last collection,
/// and what of them the database holds.
#[derive(Debug, Default)]
struct OpenBins {
    /// Their state at the last collection (none at shutdown: the final
    /// collection seals them).
    bins: Vec<StoredBin>,
    /// Their outcomes, likewise.
    outcomes: Vec<SealedOutcomes>,
    /// Where they start: the sealed watermark at that collection.
    from_ms: i64,
    /// The finest bin width: the ring of their rows.
    ring_ms: i64,
    /// The partial rows of this run in the database: those of a committed
    /// flush, replaced by the next one.
    written: Option<OpenRows>,
    /// What that flush wrote of them, so that an unchanged open bin is
    /// not written again.
    written_state: (Vec<StoredBin>, Vec<SealedOutcomes>),
}

/// Takes the open bins' state (bins starting at or after `from`, the
/// sealed watermark) for the next flush; none when `stopping` (the final
/// collection took them sealed).
fn snapshot_open(memory: &MemoryMetrics, shared: &Shared, from: i64, stopping: bool) {
    let (bins, outcomes) = if stopping {
        (Vec::new(), Vec::new())
    } else {
        (memory.open_bins(from), memory.open_outcomes(from))
    };
    let mut open = shared.open.lock();
    open.bins = bins;
    open.outcomes = outcomes;
    open.from_ms = from;
    open.ring_ms = memory.finest_bin_ms().max(1);
}

/// What a flush writes of the open bins: their state, the partial rows it
/// replaces and the partial rows it leaves; and whether that changes
/// anything (not when the database holds them as they are).
fn open_batch(shared: &Shared) -> (OpenBatch, bool) {
    let open = shared.open.lock();
    let empty = open.bins.is_empty() && open.outcomes.is_empty();
    let unchanged = open.written_state.0 == open.bins && open.written_state.1 == open.outcomes;
    let changed = !unchanged || (open.written.is_none() && !empty);
    let leaves = (!empty).then_some(OpenRows {
        ring_ms: open.ring_ms,
        from_ms: open.from_ms,
    });
    let batch = OpenBatch {
        bins: open.bins.clone(),
        outcomes: open.outcomes.clone(),
        replaces: open.written,
        leaves,
    };
    (batch, changed)
}

/// The open bins' part of one flush ([`open_batch`]).
#[derive(Debug)]
struct OpenBatch {
    bins: Vec<StoredBin>,
    outcomes: Vec<SealedOutcomes>,
    /// This run's partial rows the write deletes.
    replaces: Option<OpenRows>,
    /// The partial rows it leaves, replaced by the next flush.
    leaves: Option<OpenRows>,
}

/// Writes the pending queues and the open bins' state in one transaction,
/// replacing the partial rows the previous flush left; on failure keeps
/// everything as it was (the retry replaces the same rows). With nothing
/// new to write, asks the database whether it answers.
async fn flush(store: &Store, shared: &Shared) -> Result<(), StoreError> {
    let mut batch: Vec<StoredBin> = shared.pending.lock().iter().cloned().collect();
    let mut outcomes: Vec<SealedOutcomes> =
        shared.pending_outcomes.lock().iter().cloned().collect();
    let (sealed, sealed_outcomes) = (batch.len(), outcomes.len());
    let (open, changed) = open_batch(shared);
    if batch.is_empty() && outcomes.is_empty() && !changed {
        return ping(store, shared).await;
    }
    batch.extend(open.bins.iter().cloned());
    outcomes.extend(open.outcomes.iter().cloned());
    let what = format!("writing {} bins", batch.len() + outcomes.len());
    let done = waiting(
        shared,
        what,
        FLUSH_TIMEOUT,
        store.write_replacing(&batch, &outcomes, open.replaces),
    )
    .await?;
    shared.pending.lock().drain(..sealed);
    shared.pending_outcomes.lock().drain(..sealed_outcomes);
    {
        let mut o = shared.open.lock();
        o.written = open.leaves;
        o.written_state = (open.bins, open.outcomes);
    }
    let mut st = shared.status.lock();
    st.written += (sealed + sealed_outcomes) as u64;
    st.rows = (st.rows + done.inserted).saturating_sub(done.deleted);
    st.flushes += 1;
    st.healthy = true;
    st.last_error = None;
    Ok(())
}

/// Asks the database whether it answers (within the answer timeout); an
/// answer makes the status healthy.
async fn ping(store: &Store, shared: &Shared) -> Result<(), StoreError> {
    let limit = shared.answer_timeout;
    waiting(
        shared,
        "checking the connection".into(),
        limit,
        store.ping(),
    )
    .await?;
    let mut st = shared.status.lock();
    st.healthy = true;
    st.last_error = None;
    Ok(())
}

/// The longest one flush (a transaction) or retention pass may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

fn failed(shared: &Shared, e: &StoreError) {
    let mut st = shared.status.lock();
    if st.healthy || st.last_error.as_deref() != Some(&e.to_string()) {
        tracing::warn!(error = %e, url = %st.url, "history store unavailable; bins are queued and retried");
    }
    st.healthy = false;
    st.last_error = Some(e.to_string());
}

async fn run(
    memory: Arc<MemoryMetrics>,
    config: WriterConfig,
    shared: Arc<Shared>,
    mut watermark: i64,
) {
    let finest = memory.finest_bin_ms().max(1);
    let mut last_retention: Option<Instant> = None;
    let mut next_connect = Instant::now();
    // When sealed bins are next collected and written; after a failed
    // write, the retry.
    let mut next_flush = Instant::now();
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let flush_due = stopping || Instant::now() >= next_flush;
        let now = now_ms(&memory);
        if flush_due {
            // Bins that ended; at shutdown the open one too.
            let to = if stopping {
                now.div_euclid(finest) * finest + finest
            } else {
                now.div_euclid(finest) * finest
            };
            collect(&memory, &shared, watermark, to, config.max_pending);
            snapshot_open(&memory, &shared, to, stopping);
            watermark = watermark.max(to);
        }

        let connected = shared.store.lock().clone();
        let store = match connected {
            Some(s) => Some(s),
            None if stopping || Instant::now() >= next_connect => {
                let limit = Duration::from_secs(if stopping { 5 } else { 15 });
                let open = Store::open(&config.url, &config.instance);
                match waiting(&shared, "connecting".into(), limit, open).await {
                    Ok(mut s) => {
                        s.set_run(shared.run.clone());
                        tracing::info!(url = %s.url(), "history store connected");
                        *shared.store.lock() = Some(s.clone());
                        Some(s)
                    }
                    Err(e) => {
                        failed(&shared, &e);
                        next_connect = Instant::now() + config.retry_interval;
                        None
                    }
                }
            }
            None => None,
        };
        if flush_due && store.is_none() {
            // Collected; written once connected.
            next_flush = Instant::now() + config.flush_interval;
        }
        if let Some(store) = &store {
            if flush_due {
                let attempts = if stopping { 3 } else { 1 };
                let mut ok = false;
                for _ in 0..attempts {
                    match flush(store, &shared).await {
                        Ok(()) => {
                            ok = true;
                            break;
                        }
                        Err(e) => failed(&shared, &e),
                    }
                }
                next_flush = Instant::now()
                    + if ok {
                        config.flush_interval
                    } else {
                        config.retry_interval.min(config.flush_interval)
                    };
            } else if let Err(e) = ping(store, &shared).await {
                failed(&shared, &e);
            }
            if !stopping && last_retention.is_none_or(|t| t.elapsed() >= config.retention_interval)
            {
                last_retention = Some(Instant::now());
                let pass = store.apply_retention(&config.rings, now);
                match waiting(&shared, "applying retention".into(), FLUSH_TIMEOUT, pass).await {
                    Ok((merged, deleted)) if merged + deleted > 0 => {
                        tracing::debug!(merged, deleted, "history retention applied");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "history retention failed; retried later"),
                }
            }
        }
        if stopping {
            let left = shared.pending.lock().len() + shared.pending_outcomes.lock().len();
            if left > 0 {
                tracing::error!(
                    bins = left,
                    "history store unavailable at shutdown: bins lost"
                );
            }
            if let Some(s) = store {
                s.close().await;
            }
            return;
        }
        // Wake for the next flush, ping or connection attempt, whichever
        // comes first.
        let until = if store.is_none() {
            next_connect.min(next_flush)
        } else {
            next_flush.min(Instant::now() + config.ping_interval)
        };
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            () = shared.wake.notified() => {}
        }
    }
}
