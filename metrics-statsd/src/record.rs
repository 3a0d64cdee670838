//! The recording path: a measurement's series is found by its key's
//! fingerprint (no name, tag or value is checked or hashed again: a
//! measurement is valid by construction), counters and gauges are
//! aggregated in place in the series table, outcomes become the
//! `<op>.success` / `<op>.failure` counters, timer and histogram samples
//! are drawn at their sample rate and go on the bounded queue (every drop
//! counted). A bound handle ([`Bound`]) records into its series without a
//! lookup.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};
use metrics_kit::with_outcome_counter;
use metrics_protocol::backend::outcome::ERROR_TYPE_TAG;
use metrics_protocol::backend::validate::MAX_TAGS;
use metrics_protocol::backend::{DropReason, InstrumentFn, Measurement, Value};
use metrics_protocol::{Key, MetricType, Tags};

use crate::table::{Entry, series_hash};
use crate::{SharedState, StatsdMetrics, format, sender, wire};

/// Mixed into an operation key's fingerprint for the series of its
/// successes, and (with the error type's hash) of its failures.
const SUCCESS_SALT: u64 = 0x2545_f491_4f6c_dd1d;
const FAILURE_SALT: u64 = 0x9e6c_63d0_676a_9a99;

/// The table hash of the counter an outcome of the operation `key` is
/// written as: derived from the operation's fingerprint, so that neither
/// its name nor its tags are hashed again.
#[inline]
fn outcome_hash(key: &Key<'_>, error_type: Option<&str>) -> u64 {
    match error_type {
        None => key.fingerprint() ^ SUCCESS_SALT,
        Some(e) => {
            // The failure's error type replaces an `error_type` tag of the
            // operation: such a key writes the series of the key without it.
            let fingerprint = match key.tag(ERROR_TYPE_TAG) {
                None => key.fingerprint(),
                Some(_) => fingerprint_without_error_type(key),
            };
            // FNV-1a: error types are short.
            let h = e.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (fingerprint ^ FAILURE_SALT).wrapping_add(h.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        }
    }
}

/// The fingerprint of `key` without its `error_type` tag.
#[cold]
fn fingerprint_without_error_type(key: &Key<'_>) -> u64 {
    let mut buf = [("", ""); MAX_TAGS];
    let mut n = 0;
    let kept = key.tags().iter().filter(|(k, _)| *k != ERROR_TYPE_TAG);
    for (slot, tag) in buf.iter_mut().zip(kept) {
        *slot = *tag;
        n += 1;
    }
    // Fewer tags of a valid key: a valid key.
    Key::new(key.name(), &buf[..n]).map_or(key.fingerprint(), |k| k.fingerprint())
}

impl SharedState {
    pub(crate) fn render(&self, name: &str, tags: &[(&str, &str)]) -> format::Rendered {
        let c = &self.config;
        format::render(
            &c.prefix,
            name,
            tags,
            &c.common_tags,
            c.flavor,
            c.fold_tags_into_name,
        )
    }

    /// What the wire cannot carry: a negative value that goes out as a
    /// timer line (the daemon rejects it). The wire type decides what goes
    /// out as one: a histogram outside DogStatsD.
    #[inline]
    fn check_wire(&self, value: &Value) -> Result<(), DropReason> {
        if value.as_f64() < 0.0 && wire(value.kind(), self.config.flavor) == "ms" {
            return Err(DropReason::InvalidValue);
        }
        Ok(())
    }

    /// Applies `value` to its series `e`: counters and gauges in place
    /// (when aggregating), under the caller's shard lock or pin; anything
    /// else is a sample to queue, unless the sample rate draws it out.
    #[inline]
    fn fold(&self, e: &Arc<Entry>, value: &Value) -> Option<sender::Sample> {
        let c = &self.config;
        if c.combine_counters {
            let done = match *value {
                Value::Counter(v) => {
                    e.add_counter(v);
                    true
                }
                Value::Gauge(v) => {
                    e.set_gauge(v);
                    true
                }
                Value::GaugeDelta(d) => {
                    e.adjust_gauge(d);
                    true
                }
                _ => false,
            };
            if done {
                self.table.mark_dirty(e);
                return None;
            }
        }
        let rate = match *value {
            Value::Timer(_) => c.timer_sample_rate,
            Value::Histogram(_) => c.histogram_sample_rate,
            _ => 1.0,
        };
        // Sampled out: the daemon scales by 1/rate.
        (rate >= 1.0 || sampled(rate)).then(|| sender::Sample {
            series: e.clone(),
            value: *value,
            rate,
        })
    }
}

/// Queues a timer or histogram sample (or, without aggregation, any sample).
#[inline]
fn enqueue(queue: &Sender<sender::Sample>, sample: sender::Sample) -> Result<(), DropReason> {
    match queue.try_send(sample) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(DropReason::QueueFull),
        Err(TrySendError::Disconnected(_)) => Err(DropReason::SendFailed),
    }
}

impl StatsdMetrics {
    /// [`MetricCollector::record`](metrics_protocol::MetricCollector::record):
    /// a refusal is counted under its reason.
    #[inline]
    pub(crate) fn record_measurement(&self, m: &Measurement<'_>) {
        if let Err(reason) = self.try_record(m) {
            self.shared.drops.record(reason);
        }
    }

    /// By name into a series the table already holds, without building a
    /// key: a match with a stored key (checked when its series was created)
    /// proves the name and tags valid, so only the value is checked, as
    /// [`Measurement::new`] checks it. False when the series is not there
    /// (or the value is an outcome): the caller then builds the key.
    #[inline]
    pub(crate) fn record_existing(&self, name: &str, tags: Tags<'_>, value: &Value) -> bool {
        let sh = &*self.shared;
        if matches!(value, Value::Success | Value::Failure) {
            return false;
        }
        let kind = value.kind();
        if sh.closed.load(Ordering::Relaxed) {
            return false;
        }
        let hash = series_hash(Key::fingerprint_of(name, tags), kind);
        let outcome = sh.table.with_existing(kind, hash, name, tags, |e| {
            value.check()?;
            sh.check_wire(value)?;
            match sh.fold(e, value) {
                Some(s) => enqueue(&self.queue, s),
                None => Ok(()),
            }
        });
        match outcome {
            Some(Ok(())) => true,
            Some(Err(reason)) => {
                sh.drops.record(reason);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn try_record(&self, m: &Measurement<'_>) -> Result<(), DropReason> {
        let sh = &*self.shared;
        if sh.closed.load(Ordering::Relaxed) {
            return Err(DropReason::SendFailed);
        }
        let key = m.key();
        let value = m.value_ref();
        let render = |n: &str, t: &[(&str, &str)]| sh.render(n, t);
        let sample = match *value {
            Value::Success | Value::Failure => {
                let error_type = m.error_type();
                let hash = outcome_hash(key, error_type);
                with_outcome_counter(key.name(), error_type, key.tags(), |name, tags| {
                    sh.table
                        .with(MetricType::Counter, hash, name, tags, render, |e| {
                            sh.fold(e, &Value::Counter(1.0))
                        })
                })
            }
            _ => {
                sh.check_wire(value)?;
                let kind = value.kind();
                let hash = series_hash(key.fingerprint(), kind);
                sh.table
                    .with(kind, hash, key.name(), key.tags(), render, |e| {
                        sh.fold(e, value)
                    })
            }
        };
        match sample {
            Some(s) => enqueue(&self.queue, s),
            None => Ok(()),
        }
    }

    /// [`MetricCollector::bind`](metrics_protocol::MetricCollector::bind):
    /// a handle on the series, pinned in the table; `None` for a kind
    /// StatsD has no series of (rates), after shutdown, or past
    /// `max_series` (the handle then records by key, each sample counted
    /// as overflowed).
    pub(crate) fn bind_series(
        &self,
        key: &Key<'_>,
        kind: MetricType,
    ) -> Option<Arc<dyn InstrumentFn>> {
        let sh = &self.shared;
        if kind == MetricType::Rate || sh.closed.load(Ordering::Relaxed) {
            return None;
        }
        let entry = sh.table.bind(
            kind,
            series_hash(key.fingerprint(), kind),
            key.name(),
            key.tags(),
            |n, t| sh.render(n, t),
        )?;
        Some(Arc::new(Bound {
            shared: sh.clone(),
            queue: self.queue.clone(),
            entry,
        }))
    }
}

/// A bound handle: records into one series of the table, found once.
struct Bound {
    shared: Arc<SharedState>,
    queue: Sender<sender::Sample>,
    /// Pinned: not evicted while the handle lives.
    entry: Arc<Entry>,
}

impl Bound {
    #[inline]
    fn put(&self, value: Value) -> Result<(), DropReason> {
        let sh = &*self.shared;
        if sh.closed.load(Ordering::Relaxed) {
            return Err(DropReason::SendFailed);
        }
        // A handle records values of its series' kind; an outcome belongs
        // to the `.success`/`.failure` series, not this one.
        if matches!(value, Value::Success | Value::Failure) || value.kind() != self.entry.kind {
            return Err(DropReason::TypeMismatch);
        }
        sh.check_wire(&value)?;
        match sh.fold(&self.entry, &value) {
            Some(s) => enqueue(&self.queue, s),
            None => Ok(()),
        }
    }
}

impl InstrumentFn for Bound {
    #[inline]
    fn record(&self, value: Value) {
        if let Err(reason) = self.put(value) {
            self.shared.drops.record(reason);
        }
    }

    fn reject(&self, reason: DropReason) {
        self.shared.drops.record(reason);
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.entry.unpin();
    }
}

/// A cheap per-thread random draw for sample rates.
fn sampled(rate: f64) -> bool {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::thread::current().id().hash(&mut h);
            Instant::now().hash(&mut h);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < rate
    })
}
