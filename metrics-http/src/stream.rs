//! The fan-out behind `/api/v1/stream`: subscribers with the same filter
//! share one subscription to the system, and each event is encoded once
//! for all of them.
//!
//! - One subscription per distinct filter (a *group*), read by one task
//!   that encodes each event into a server-sent-event frame once and hands
//!   the same bytes to every subscriber of the group.
//! - Each group keeps the last [`BACKLOG`] frames; a subscriber that falls
//!   further behind loses the oldest and is told how many (a `lagged`
//!   event), as the system's own stream does. Nothing waits on a slow
//!   subscriber.
//! - A subscriber holds nothing of its own but its place in the group;
//!   when the last one of a group leaves, the group's subscription, task
//!   and frames are dropped.
//! - At most `max_streams` subscribers at once; one more is refused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use metrics_protocol::MetricType;
use metrics_protocol::app::{AsyncMetricsSystem, MetricFilter, StreamEvent};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use crate::HttpStats;
use crate::error::ApiError;

/// Frames a group keeps for subscribers that are behind.
pub(crate) const BACKLOG: usize = 512;

/// How long a stream may be silent before a comment keeps it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The subscribers of the stream, grouped by filter.
pub(crate) struct Streams {
    system: Arc<dyn AsyncMetricsSystem>,
    places: Arc<Semaphore>,
    limit: usize,
    groups: Mutex<HashMap<FilterKey, Weak<Group>>>,
    stats: HttpStats,
}

/// A filter in one canonical form: two requests that ask for the same
/// values share a group whatever the order of their parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FilterKey {
    prefix: Option<String>,
    types: Vec<String>,
    tags: Vec<(String, String)>,
}

impl FilterKey {
    fn of(filter: &MetricFilter) -> Self {
        let mut types: Vec<String> = filter
            .metric_types
            .iter()
            .map(MetricType::to_string)
            .collect();
        types.sort();
        types.dedup();
        let mut tags: Vec<(String, String)> = filter
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.sort();
        tags.dedup();
        FilterKey {
            prefix: filter.name_prefix.clone(),
            types,
            tags,
        }
    }
}

/// The subscribers of one filter: one subscription to the system, one
/// task encoding its events.
struct Group {
    key: FilterKey,
    /// Taken by the task when the system's stream ends, so the channel
    /// closes and every subscriber's stream ends after its frames.
    sender: Arc<Mutex<Option<broadcast::Sender<Bytes>>>>,
    task: tokio::task::AbortHandle,
    streams: Weak<Streams>,
    stats: HttpStats,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.task.abort();
        self.stats
            .0
            .stream_upstreams
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(streams) = self.streams.upgrade() {
            let mut groups = lock(&streams.groups);
            // A new group may already stand under this key: keep it.
            if groups.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
                groups.remove(&self.key);
            }
        }
    }
}

/// One subscriber: its place among `max_streams`, its group, its reader.
struct Subscriber {
    _place: OwnedSemaphorePermit,
    _group: Arc<Group>,
    frames: broadcast::Receiver<Bytes>,
    stats: HttpStats,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stats.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold no invariant a panic could break halfway.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Streams {
    pub(crate) fn new(system: Arc<dyn AsyncMetricsSystem>, limit: usize, stats: HttpStats) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Streams {
            system,
            places: Arc::new(Semaphore::new(limit)),
            limit,
            groups: Mutex::new(HashMap::new()),
            stats,
        }
    }

    /// The answer to one subscriber: server-sent events from now on, or
    /// 503 when `max_streams` are subscribed.
    pub(crate) fn subscribe(self: &Arc<Self>, filter: MetricFilter) -> Response {
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            self.stats.0.refused_streams.fetch_add(1, Ordering::Relaxed);
            return ApiError::unavailable(
                "too_many_streams",
                format!(
                    "{} stream subscribers are connected, the most this server takes; retry later",
                    self.limit
                ),
            )
            .into_response();
        };
        let (group, frames) = self.join(filter);
        self.stats.0.streams.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            _place: place,
            _group: group,
            frames,
            stats: self.stats.clone(),
        };
        let body = futures_util::stream::unfold(subscriber, |mut s| async move {
            use broadcast::error::{RecvError, TryRecvError};
            // A frame waiting is taken at once; the keep-alive timer is only
            // armed when the subscriber has caught up.
            let next = match s.frames.try_recv() {
                Ok(frame) => Ok(frame),
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    match tokio::time::timeout(KEEP_ALIVE, s.frames.recv()).await {
                        Ok(next) => next,
                        Err(_) => Ok(Bytes::from_static(b":\n\n")),
                    }
                }
            };
            let frame = match next {
                Ok(frame) => frame,
                Err(RecvError::Lagged(missed)) => lagged(missed),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok::<_, Infallible>(frame), s))
        });
        (
            [
                (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            Body::from_stream(body),
        )
            .into_response()
    }

    /// The group of `filter` (started if there is none) and a reader of
    /// its frames from now on.
    fn join(self: &Arc<Self>, filter: MetricFilter) -> (Arc<Group>, broadcast::Receiver<Bytes>) {
        let key = FilterKey::of(&filter);
        // A group whose stream ended, dropped after the lock is released
        // (its drop takes the lock).
        let mut _ended: Option<Arc<Group>> = None;
        let mut groups = lock(&self.groups);
        if let Some(group) = groups.get(&key).and_then(Weak::upgrade) {
            let reader = lock(&group.sender)
                .as_ref()
                .map(broadcast::Sender::subscribe);
            match reader {
                Some(reader) => return (group, reader),
                None => _ended = Some(group),
            }
        }
        // The reader exists before the task starts, so the first events
        // reach it.
        let (sender, frames) = broadcast::channel(BACKLOG);
        let cell = Arc::new(Mutex::new(Some(sender.clone())));
        let upstream = self.system.metrics_stream(filter);
        let stats = self.stats.clone();
        let task = tokio::spawn(encode_each_once(upstream, sender, cell.clone(), stats));
        self.stats
            .0
            .stream_upstreams
            .fetch_add(1, Ordering::Relaxed);
        let group = Arc::new(Group {
            key: key.clone(),
            sender: cell,
            task: task.abort_handle(),
            streams: Arc::downgrade(self),
            stats: self.stats.clone(),
        });
        groups.insert(key, Arc::downgrade(&group));
        (group, frames)
    }
}

/// Reads the system's stream for a group: each event encoded once, the
/// same bytes for every subscriber. When the stream ends, the channel is
/// closed (the group's sender taken), so the subscribers' streams end.
async fn encode_each_once(
    mut upstream: metrics_protocol::app::MetricStream,
    sender: broadcast::Sender<Bytes>,
    cell: Arc<Mutex<Option<broadcast::Sender<Bytes>>>>,
    stats: HttpStats,
) {
    while let Some(event) = upstream.next().await {
        let frame = encode(event);
        stats.0.stream_encodings.fetch_add(1, Ordering::Relaxed);
        // No subscriber right now (the last one is leaving): the group is
        // about to be dropped, which stops this task.
        let _ = sender.send(frame);
    }
    lock(&cell).take();
}

/// One event as a server-sent-event frame.
fn encode(event: StreamEvent) -> Bytes {
    match event {
        StreamEvent::Metric(v) => {
            // Serialising a value cannot fail (its maps have string keys).
            let data = serde_json::to_string(&crate::api::ValueAnswer::from(v)).unwrap_or_default();
            let mut frame = String::with_capacity(data.len() + 24);
            frame.push_str("event: metric\ndata: ");
            frame.push_str(&data);
            frame.push_str("\n\n");
            Bytes::from(frame)
        }
        StreamEvent::Lagged { missed } => lagged(missed),
    }
}

fn lagged(missed: u64) -> Bytes {
    Bytes::from(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use metrics_protocol::app::{EndpointResults, MetricStream, MetricValue};
    use metrics_protocol::{MetricUnit, MetricsError};
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::mpsc;

    /// A system whose streams are fed by the test, counting subscriptions.
    #[derive(Default)]
    struct Fed {
        feeds: Mutex<Vec<mpsc::UnboundedSender<StreamEvent>>>,
        subscriptions: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl AsyncMetricsSystem for Fed {
        async fn collect_metrics_async(&self) -> Result<(), MetricsError> {
            Ok(())
        }
        async fn export_metrics_async(&self, _: &[String]) -> EndpointResults {
            EndpointResults::new()
        }
        fn metrics_stream(&self, _filter: MetricFilter) -> MetricStream {
            self.subscriptions.fetch_add(1, Ordering::SeqCst);
            let (tx, mut rx) = mpsc::unbounded_channel();
            lock(&self.feeds).push(tx);
            Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
        }
    }

    impl Fed {
        fn send(&self, event: StreamEvent) {
            for feed in lock(&self.feeds).iter() {
                let _ = feed.send(event.clone());
            }
        }
        fn end(&self) {
            lock(&self.feeds).clear();
        }
    }

    fn value(i: u32) -> StreamEvent {
        StreamEvent::Metric(MetricValue::new(
            "jobs.done",
            f64::from(i),
            MetricType::Counter,
            MetricUnit::Count,
            &[],
        ))
    }

    async fn body_text(res: Response) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn subscribers_of_one_filter_share_one_subscription_and_one_encoding_per_event() {
        let fed = Arc::new(Fed::default());
        let stats = HttpStats::default();
        let streams = Arc::new(Streams::new(fed.clone(), 8, stats.clone()));
        let all = MetricFilter::default;
        let answers: Vec<Response> = (0..3).map(|_| streams.subscribe(all())).collect();
        assert_eq!(fed.subscriptions.load(Ordering::SeqCst), 1);
        assert_eq!((stats.streams(), stats.stream_upstreams()), (3, 1));
        for i in 0..5 {
            fed.send(value(i));
        }
        fed.end();
        for res in answers {
            let text = body_text(res).await;
            assert_eq!(text.matches("event: metric\n").count(), 5, "{text}");
            assert!(text.contains("\"value\":4.0"), "{text}");
        }
        assert_eq!(stats.stream_encodings(), 5, "one encoding per event");
        assert_eq!((stats.streams(), stats.stream_upstreams()), (0, 0));
        assert!(
            lock(&streams.groups).is_empty(),
            "nothing kept once all left"
        );
    }

    #[tokio::test]
    async fn filters_in_another_order_share_and_different_filters_do_not() {
        let fed = Arc::new(Fed::default());
        let streams = Arc::new(Streams::new(fed.clone(), 8, HttpStats::default()));
        let f = |a: &str, b: &str| {
            MetricFilter::default()
                .name_prefix("jobs.")
                .tag(a, "1")
                .tag(b, "2")
        };
        let _a = streams.subscribe(f("x", "y"));
        let _b = streams.subscribe(f("y", "x").tag("x", "1"));
        assert_eq!(fed.subscriptions.load(Ordering::SeqCst), 2);
        let _c = streams.subscribe(f("x", "y"));
        let _d = streams.subscribe(MetricFilter::default().metric_type(MetricType::Gauge));
        assert_eq!(fed.subscriptions.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn past_the_limit_a_subscriber_gets_503_json_and_a_place_comes_back_when_one_leaves() {
        let fed = Arc::new(Fed::default());
        let stats = HttpStats::default();
        let streams = Arc::new(Streams::new(fed.clone(), 2, stats.clone()));
        let first = streams.subscribe(MetricFilter::default());
        let _second = streams.subscribe(MetricFilter::default());
        let refused = streams.subscribe(MetricFilter::default());
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(refused.headers()["retry-after"], "1");
        let e: serde_json::Value = serde_json::from_str(&body_text(refused).await).unwrap();
        assert_eq!(e["error"], "too_many_streams", "{e}");
        assert_eq!(stats.refused_streams(), 1);
        drop(first);
        let again = streams.subscribe(MetricFilter::default());
        assert_eq!(again.status(), axum::http::StatusCode::OK);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
        let fed = Arc::new(Fed::default());
        let streams = Arc::new(Streams::new(fed.clone(), 8, HttpStats::default()));
        let slow = streams.subscribe(MetricFilter::default());
        let n = u32::try_from(BACKLOG).unwrap() + 10;
        for i in 0..n {
            fed.send(value(i));
        }
        // The group's task encodes everything before the subscriber reads.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while streams.stats.stream_encodings() < u64::from(n) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not encoded in time"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fed.end();
        let text = body_text(slow).await;
        assert!(
            text.starts_with("event: lagged\ndata: {\"missed\":10}\n\n"),
            "{}",
            &text[..80]
        );
        assert_eq!(text.matches("event: metric\n").count(), BACKLOG);
    }
}
