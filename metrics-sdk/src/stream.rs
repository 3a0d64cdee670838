//! [`StreamHub`]: live streams of what is recorded, without ever slowing
//! the recording thread. The agent's taps hand it each measurement.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use metrics_kit::with_outcome_counter;
use metrics_protocol::app::{MetricFilter, MetricStream, MetricValue, StreamEvent};
use metrics_protocol::backend::outcome::{FAILURE_SUFFIX, SUCCESS_SUFFIX};
use metrics_protocol::backend::{
    BackendHealth, HealthStatus, Measurement, SortedTags, Value, validate,
};
use metrics_protocol::{MetricCollector, MetricType, MetricUnit, Tags};
use parking_lot::Mutex;

use crate::interest::Interest;
use tokio::sync::Notify;

/// Fans recorded values out to subscribers, each through its own bounded
/// buffer.
///
/// ```
/// use std::sync::Arc;
/// use futures_util::StreamExt;
/// use metrics_sdk::StreamHub;
/// use metrics_protocol::Metrics;
/// use metrics_protocol::app::{MetricFilter, StreamEvent};
///
/// let hub = StreamHub::new(8);
/// let mut stream = hub.subscribe(MetricFilter::default().name_prefix("http."));
/// // The hub is a collector of its own: here it is the only one.
/// let metrics = Metrics::new(Arc::new(hub.clone()));
/// metrics.record_counter("http.requests", 1.0, &[("method", "GET")]);
/// metrics.record_counter("db.queries", 1.0, &[]); // filtered out
/// hub.close();
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let events: Vec<StreamEvent> = rt.block_on(stream.collect());
/// assert!(matches!(&events[..], [StreamEvent::Metric(v)] if v.name == "http.requests"));
/// ```
///
/// # Guarantees
///
/// - **Nothing waits on a subscriber.** Each subscriber has a buffer of
///   `capacity` values; when it is full the *oldest* value is dropped and
///   counted, and the subscriber's next event is
///   [`StreamEvent::Lagged`]`{ missed }` with the number lost since its
///   previous event. Recording takes each matching subscriber's buffer lock
///   for one push (and a pop when full), never for I/O.
/// - **No subscribers, no cost**: a measurement is first checked against
///   a one-word filter of the subscribers' name prefixes, then against the
///   subscriber list read without a lock (an atomic snapshot); a
///   [`MetricValue`] is built only for a subscriber that wants it.
/// - Only valid values reach a stream: what is refused where it is
///   recorded (bad name, tag or value, a negative counter increment) never
///   becomes a measurement.
/// - Only values matching a subscriber's [`MetricFilter`] enter its buffer,
///   so a narrow subscriber does not lag because of unrelated traffic.
/// - [`close`](Self::close) ends every stream (after its buffered values)
///   and every later subscription at once. Dropping a stream unsubscribes it.
/// - Values carry what was recorded: a counter's increment, a gauge's new
///   value (an `adjust_gauge` delta is marked `metadata["gauge_op"] =
///   "adjust"`), one histogram sample, a timer's duration in milliseconds.
///   An outcome is the counter `<operation>.success`, or
///   `<operation>.failure` tagged `error_type`, of 1.
#[derive(Clone)]
pub struct StreamHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    capacity: usize,
    /// Read on every recording without a lock; replaced whole (under
    /// `writers`) when a subscriber comes or goes.
    subscribers: ArcSwap<Vec<Arc<Subscriber>>>,
    /// Serialises subscribe, unsubscribe and close.
    writers: Mutex<()>,
    /// First bytes of the names some subscriber may want.
    interest: Interest,
    closed: AtomicBool,
    delivered: AtomicU64,
    missed: AtomicU64,
}

struct Subscriber {
    id: u64,
    filter: MetricFilter,
    state: Mutex<Buffer>,
    notify: Notify,
}

#[derive(Default)]
struct Buffer {
    values: VecDeque<MetricValue>,
    missed: u64,
    closed: bool,
}

impl std::fmt::Debug for StreamHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHub")
            .field("capacity", &self.inner.capacity)
            .field("subscribers", &self.subscriber_count())
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl StreamHub {
    /// A hub whose subscribers each buffer at most `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        StreamHub {
            inner: Arc::new(HubInner {
                capacity: capacity.max(1),
                subscribers: ArcSwap::from_pointee(Vec::new()),
                writers: Mutex::new(()),
                interest: Interest::default(),
                closed: AtomicBool::new(false),
                delivered: AtomicU64::new(0),
                missed: AtomicU64::new(0),
            }),
        }
    }

    /// Every value recorded from now on that matches `filter`. After
    /// [`close`](Self::close) the stream ends at once.
    pub fn subscribe(&self, filter: MetricFilter) -> MetricStream {
        let sub = Arc::new(Subscriber {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            filter,
            state: Mutex::new(Buffer::default()),
            notify: Notify::new(),
        });
        {
            let _w = self.inner.writers.lock();
            // Checked under the writers' lock, so `close` cannot miss this subscriber.
            if self.inner.closed.load(Ordering::SeqCst) {
                sub.state.lock().closed = true;
            } else {
                let mut v = Vec::clone(&self.inner.subscribers.load());
                v.push(sub.clone());
                self.inner
                    .interest
                    .rebuild(v.iter().map(|s| s.filter.name_prefix.as_deref()));
                self.inner.subscribers.store(Arc::new(v));
            }
        }
        let guard = Unsubscribe {
            hub: Arc::downgrade(&self.inner),
            sub,
        };
        Box::pin(futures_util::stream::unfold(guard, |guard| async move {
            let event = guard.sub.next().await?;
            Some((event, guard))
        }))
    }

    /// Number of live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.inner.subscribers.load().len()
    }

    /// Values handed to subscribers so far, and values dropped from full
    /// buffers (oldest first), over all subscribers.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.inner.delivered.load(Ordering::Relaxed),
            self.inner.missed.load(Ordering::Relaxed),
        )
    }

    /// Ends every stream (each still yields what it has buffered) and every
    /// later subscription. Idempotent.
    pub fn close(&self) {
        let list = {
            let _w = self.inner.writers.lock();
            self.inner.closed.store(true, Ordering::SeqCst);
            self.inner.interest.rebuild([]);
            self.inner.subscribers.swap(Arc::new(Vec::new()))
        };
        for s in list.iter() {
            s.state.lock().closed = true;
            s.notify.notify_one();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Sends one ready-made value to every subscriber whose filter matches.
    pub fn publish(&self, value: &MetricValue) {
        let list = self.inner.subscribers.load();
        for s in list.iter().filter(|s| s.filter.matches(value)) {
            self.push(s, value.clone());
        }
    }

    fn push(&self, s: &Subscriber, value: MetricValue) {
        let mut b = s.state.lock();
        if b.closed {
            return;
        }
        if b.values.len() >= self.inner.capacity {
            b.values.pop_front();
            b.missed += 1;
            self.inner.missed.fetch_add(1, Ordering::Relaxed);
        }
        b.values.push_back(value);
        drop(b);
        self.inner.delivered.fetch_add(1, Ordering::Relaxed);
        s.notify.notify_one();
    }

    /// The one-word filter's answer for `name` (false positives, never
    /// false negatives): what the tap's observer reads first, so a
    /// measurement no subscriber may want costs one load.
    #[inline]
    pub(crate) fn may_want(&self, name: &str) -> bool {
        self.inner.interest.may_want(name)
    }

    /// Whether some subscriber may want a `metric_type` value named `name`
    /// (its tag filter is not looked at yet).
    fn wants(&self, name: &str, metric_type: MetricType) -> bool {
        self.wants_joined(name, "", metric_type)
    }

    /// [`wants`](Self::wants) for the name `head` + `tail`, without building it.
    fn wants_joined(&self, head: &str, tail: &str, metric_type: MetricType) -> bool {
        let first = if head.is_empty() { tail } else { head };
        if !self.inner.interest.may_want(first) {
            return false;
        }
        let list = self.inner.subscribers.load();
        !list.is_empty()
            && list.iter().any(|s| {
                s.filter
                    .name_prefix
                    .as_deref()
                    .is_none_or(|p| joined_starts_with(head, tail, p))
                    && (s.filter.metric_types.is_empty()
                        || s.filter.metric_types.contains(&metric_type))
            })
    }

    /// Hands one measurement to every subscriber whose filter matches,
    /// building the value once. An outcome goes out as the counter
    /// `<operation>.success` or `<operation>.failure` (tagged `error_type`).
    /// Call [`may_want`](Self::may_want) first on the recording path.
    #[inline(never)]
    pub(crate) fn offer(&self, m: &Measurement<'_>) {
        let key = m.key();
        match m.value() {
            Value::Success => self.offer_outcome(key.name(), None, key.tags()),
            Value::Failure => {
                self.offer_outcome(key.name(), Some(m.error_type().unwrap_or("")), key.tags())
            }
            value => {
                if self.wants(key.name(), value.kind()) {
                    self.publish_parts(key.name(), value, &key.sorted_tags());
                }
            }
        }
    }

    fn offer_outcome(&self, operation: &str, failure: Option<&str>, tags: Tags<'_>) {
        let suffix = match failure {
            None => SUCCESS_SUFFIX,
            Some(_) => FAILURE_SUFFIX,
        };
        // Cheap check first: the counter is only built when a stream may want it.
        if !self.wants_joined(operation, suffix, MetricType::Counter) {
            return;
        }
        with_outcome_counter(operation, failure, tags, |name, tags| {
            // The operation's key was checked; its counter's name and the
            // error type as a tag are checked here.
            if validate::check_name(name).is_err() {
                return;
            }
            if let Ok(tags) = SortedTags::new(tags) {
                self.publish_parts(name, Value::Counter(1.0), &tags);
            }
        });
    }

    /// Sends `value` of the series `name` (tags sorted) to every subscriber
    /// whose filter matches.
    fn publish_parts(&self, name: &str, value: Value, tags: &SortedTags<'_>) {
        let list = self.inner.subscribers.load();
        let metric_type = value.kind();
        let mut built: Option<MetricValue> = None;
        for s in list
            .iter()
            .filter(|s| filter_matches(&s.filter, name, metric_type, tags.as_slice()))
        {
            let v = built.get_or_insert_with(|| to_value(name, value, tags));
            self.push(s, v.clone());
        }
    }

    /// What the hub reports about itself in a health report.
    pub fn report(&self) -> BackendHealth {
        let mut h = BackendHealth::healthy("stream");
        let (delivered, missed) = self.totals();
        h.details
            .insert("subscribers".into(), self.subscriber_count() as f64);
        h.details.insert("delivered".into(), delivered as f64);
        h.details.insert("missed".into(), missed as f64);
        if missed > 0 {
            h.message = Some(format!("slow subscribers lost {missed} values"));
        }
        h.status = HealthStatus::Healthy;
        h
    }
}

/// The value a stream subscriber receives: what was recorded (a counter's
/// increment, a gauge's value or delta, one sample, a duration in
/// milliseconds), with the sorted tags.
fn to_value(name: &str, value: Value, tags: &SortedTags<'_>) -> MetricValue {
    let unit = match value {
        Value::Timer(_) => MetricUnit::Milliseconds,
        _ => MetricUnit::Count,
    };
    let mut v = MetricValue::new(name, value.as_f64(), value.kind(), unit, tags.as_slice());
    if let Value::GaugeDelta(_) = value {
        v.metadata.insert("gauge_op".into(), "adjust".into());
    }
    v
}

/// Whether `head` + `tail` starts with `prefix`.
fn joined_starts_with(head: &str, tail: &str, prefix: &str) -> bool {
    if prefix.len() <= head.len() {
        head.starts_with(prefix)
    } else {
        // `prefix` starts with all of `head`, so head.len() is a char boundary in it.
        prefix.starts_with(head) && tail.starts_with(&prefix[head.len()..])
    }
}

/// [`MetricFilter::matches`] on borrowed parts, so nothing is allocated for
/// a value no subscriber wants.
fn filter_matches(f: &MetricFilter, name: &str, t: MetricType, tags: Tags<'_>) -> bool {
    f.name_prefix.as_deref().is_none_or(|p| name.starts_with(p))
        && (f.metric_types.is_empty() || f.metric_types.contains(&t))
        && f.tags.iter().all(|(k, v)| {
            tags.iter()
                .rev() // the last of duplicate keys wins, as in MetricValue::new
                .find(|(tk, _)| tk == k)
                .is_some_and(|(_, tv)| tv == v)
        })
}

impl Subscriber {
    /// The next event, waiting for one; `None` once closed and drained.
    async fn next(&self) -> Option<StreamEvent> {
        loop {
            {
                let mut b = self.state.lock();
                if b.missed > 0 {
                    let missed = std::mem::take(&mut b.missed);
                    return Some(StreamEvent::Lagged { missed });
                }
                if let Some(v) = b.values.pop_front() {
                    return Some(StreamEvent::Metric(v));
                }
                if b.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push
            // between the check above and this await is not missed.
            self.notify.notified().await;
        }
    }
}

/// Removes its subscriber from the hub when the stream is dropped.
struct Unsubscribe {
    hub: std::sync::Weak<HubInner>,
    sub: Arc<Subscriber>,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let _w = hub.writers.lock();
        let list = hub.subscribers.load();
        if list.iter().any(|s| s.id == self.sub.id) {
            let v: Vec<_> = list
                .iter()
                .filter(|s| s.id != self.sub.id)
                .cloned()
                .collect();
            hub.interest
                .rebuild(v.iter().map(|s| s.filter.name_prefix.as_deref()));
            hub.subscribers.store(Arc::new(v));
        }
    }
}

/// The hub as a collector of its own: every measurement recorded into it
/// goes to the subscribers that want it.
impl MetricCollector for StreamHub {
    fn record(&self, m: &Measurement<'_>) {
        if self.may_want(m.key().name()) {
            self.offer(m);
        }
    }

    fn health(&self) -> Vec<BackendHealth> {
        vec![self.report()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::block_on;
    use futures_util::StreamExt;
    use metrics_protocol::Metrics;
    use std::time::Duration;

    fn drain(stream: MetricStream) -> Vec<StreamEvent> {
        block_on(stream.collect())
    }

    #[test]
    fn what_is_refused_where_it_is_recorded_is_not_streamed() {
        let hub = StreamHub::new(16);
        let m = Metrics::new(Arc::new(hub.clone()));
        let all = hub.subscribe(MetricFilter::default());
        m.record_counter("", 1.0, &[]);
        m.record_counter("bad\nname", 1.0, &[]);
        m.record_counter("c", -1.0, &[]);
        m.record_gauge("g", f64::NAN, &[]);
        m.record_histogram("h", 1.0, &[("", "empty key")]);
        m.record_counter("ok", 1.0, &[("k", "v")]);
        hub.close();
        let events = drain(all);
        assert!(
            matches!(&events[..], [StreamEvent::Metric(v)] if v.name == "ok"),
            "{events:?}"
        );
    }

    #[test]
    fn filters_by_prefix_type_and_tags() {
        let hub = StreamHub::new(16);
        let m = Metrics::new(Arc::new(hub.clone()));
        let all = hub.subscribe(MetricFilter::default());
        let gets = hub.subscribe(
            MetricFilter::default()
                .name_prefix("http.")
                .metric_type(MetricType::Counter)
                .tag("method", "GET"),
        );
        m.record_counter("http.requests", 1.0, &[("method", "GET"), ("code", "200")]);
        m.record_counter("http.requests", 1.0, &[("method", "POST")]);
        m.record_gauge("http.inflight", 3.0, &[("method", "GET")]);
        m.record_timer("db.query", Duration::from_millis(7), &[]);
        m.adjust_gauge("queue.depth", -1.0, &[]);
        hub.close();
        let all = drain(all);
        assert_eq!(all.len(), 5);
        let StreamEvent::Metric(t) = &all[3] else {
            panic!("{all:?}")
        };
        assert_eq!(
            (t.metric_type, t.unit, t.value),
            (MetricType::Timer, MetricUnit::Milliseconds, 7.0)
        );
        let StreamEvent::Metric(a) = &all[4] else {
            panic!("{all:?}")
        };
        assert_eq!(
            a.metadata.get("gauge_op").map(String::as_str),
            Some("adjust")
        );
        let gets = drain(gets);
        assert_eq!(gets.len(), 1);
        let StreamEvent::Metric(v) = &gets[0] else {
            panic!("{gets:?}")
        };
        assert_eq!(v.tags["code"], "200");
    }

    #[test]
    fn slow_subscriber_loses_oldest_and_sees_lagged_count() {
        let hub = StreamHub::new(4);
        let m = Metrics::new(Arc::new(hub.clone()));
        let slow = hub.subscribe(MetricFilter::default());
        // Nobody reads while 10 values are recorded: recording never waits.
        for i in 0..10 {
            m.record_histogram("h", f64::from(i), &[]);
        }
        hub.close();
        let events = drain(slow);
        assert_eq!(events[0], StreamEvent::Lagged { missed: 6 });
        let values: Vec<f64> = events[1..]
            .iter()
            .map(|e| match e {
                StreamEvent::Metric(v) => v.value,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, vec![6.0, 7.0, 8.0, 9.0], "the newest survive");
        assert_eq!(hub.totals(), (10, 6));
    }

    #[test]
    fn lag_is_reported_between_reads() {
        let hub = StreamHub::new(2);
        let m = Metrics::new(Arc::new(hub.clone()));
        let mut s = hub.subscribe(MetricFilter::default());
        m.record_counter("c", 1.0, &[]);
        let first = block_on(s.next()).unwrap();
        assert!(matches!(first, StreamEvent::Metric(v) if v.value == 1.0));
        for i in 2..=6 {
            m.record_counter("c", f64::from(i), &[]);
        }
        assert_eq!(block_on(s.next()), Some(StreamEvent::Lagged { missed: 3 }));
        assert!(matches!(block_on(s.next()), Some(StreamEvent::Metric(v)) if v.value == 5.0));
    }

    #[test]
    fn a_fast_subscriber_is_not_affected_by_a_slow_one() {
        let hub = StreamHub::new(3);
        let m = Metrics::new(Arc::new(hub.clone()));
        let _slow = hub.subscribe(MetricFilter::default());
        let mut fast = hub.subscribe(MetricFilter::default());
        for i in 0..100 {
            m.record_counter("c", f64::from(i), &[]);
            let e = block_on(fast.next()).unwrap();
            assert!(matches!(e, StreamEvent::Metric(v) if v.value == f64::from(i)));
        }
        assert_eq!(hub.totals().1, 97, "only the slow one lost values");
    }

    #[test]
    fn dropping_a_stream_unsubscribes_and_no_subscriber_costs_nothing() {
        let hub = StreamHub::new(3);
        let m = Metrics::new(Arc::new(hub.clone()));
        let s = hub.subscribe(MetricFilter::default());
        assert_eq!(hub.subscriber_count(), 1);
        drop(s);
        assert_eq!(hub.subscriber_count(), 0);
        m.record_counter("c", 1.0, &[]);
        assert_eq!(hub.totals(), (0, 0));
    }

    #[test]
    fn close_ends_streams_and_later_subscriptions() {
        let hub = StreamHub::new(3);
        let m = Metrics::new(Arc::new(hub.clone()));
        let waiting = hub.subscribe(MetricFilter::default());
        let t = std::thread::spawn(move || drain(waiting));
        hub.close();
        assert!(t.join().unwrap().is_empty());
        assert!(drain(hub.subscribe(MetricFilter::default())).is_empty());
        m.record_counter("c", 1.0, &[]);
        hub.close(); // idempotent
    }

    #[test]
    fn a_stream_wakes_when_a_value_arrives_from_another_thread() {
        let hub = StreamHub::new(8);
        let m = Metrics::new(Arc::new(hub.clone()));
        let mut s = hub.subscribe(MetricFilter::default());
        let t = std::thread::spawn(move || m.record_counter("late", 1.0, &[]));
        let e = block_on(s.next()).unwrap();
        assert!(matches!(e, StreamEvent::Metric(v) if v.name == "late"));
        t.join().unwrap();
    }

    #[test]
    fn outcomes_are_streamed_as_their_counters() {
        let hub = StreamHub::new(16);
        let m = Metrics::new(Arc::new(hub.clone()));
        let failures = hub.subscribe(MetricFilter::default().name_prefix("pay.failure"));
        let counters = hub.subscribe(MetricFilter::default().metric_type(MetricType::Counter));
        m.record_success("pay", &[("region", "eu")]);
        m.record_failure("pay", "timeout", &[("region", "eu")]);
        m.record_gauge("pay.pending", 1.0, &[]);
        hub.close();
        let failures = drain(failures);
        let [StreamEvent::Metric(f)] = &failures[..] else {
            panic!("{failures:?}")
        };
        assert_eq!((f.name.as_str(), f.value), ("pay.failure", 1.0));
        assert_eq!(f.metric_type, MetricType::Counter);
        assert_eq!(f.tags["error_type"], "timeout");
        assert_eq!(f.tags["region"], "eu");
        let names: Vec<String> = drain(counters)
            .into_iter()
            .map(|e| match e {
                StreamEvent::Metric(v) => v.name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["pay.success", "pay.failure"]);
    }
}
