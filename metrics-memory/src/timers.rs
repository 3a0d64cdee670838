//! The bounded table of running timers, on the backend's clock: a timer
//! started with `start_timer` and stopped with `stop_timer` lasts what the
//! injected [`Clock`](crate::Clock) says (a [`ManualClock`](crate::ManualClock)
//! advanced 5 s gives 5 s).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use metrics_protocol::{MetricsError, Tags, TimerId, TimingResult};
use parking_lot::Mutex;

use crate::Clock;
use crate::clock::to_datetime;

#[derive(Debug)]
struct Running {
    name: String,
    tags: Vec<(String, String)>,
    start_nanos: i64,
    start_ms: i64,
}

#[derive(Debug, Default)]
struct Table {
    running: HashMap<TimerId, Running>,
    /// Start order, for eviction; ids of stopped timers linger until the
    /// next compaction.
    order: VecDeque<TimerId>,
}

/// A stopped timer: what `stop_timer` records and returns.
pub(crate) struct Stopped {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub result: TimingResult,
}

impl Stopped {
    /// The tags as the borrowed slice the recording methods take.
    pub fn tag_refs(&self) -> Vec<(&str, &str)> {
        self.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// At most `capacity` running timers; starting one more evicts the oldest.
#[derive(Debug)]
pub(crate) struct Timers {
    capacity: usize,
    table: Mutex<Table>,
}

impl Timers {
    pub fn new(capacity: usize) -> Self {
        Timers {
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// Starts a timer now; returns its id and how many timers were evicted.
    pub fn start(&self, clock: &dyn Clock, name: &str, tags: Tags<'_>) -> (TimerId, u64) {
        let id = TimerId::new();
        let timer = Running {
            name: name.to_owned(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            start_nanos: clock.monotonic_nanos(),
            start_ms: clock.now_millis(),
        };
        let mut t = self.table.lock();
        let mut evicted = 0;
        while t.running.len() >= self.capacity {
            match t.order.pop_front() {
                Some(old) => evicted += u64::from(t.running.remove(&old).is_some()),
                None => break,
            }
        }
        t.running.insert(id, timer);
        t.order.push_back(id);
        if t.order.len() > 2 * self.capacity {
            let Table { running, order } = &mut *t;
            order.retain(|i| running.contains_key(i));
        }
        (id, evicted)
    }

    /// Stops a running timer: [`MetricsError::UnknownTimer`] if it was never
    /// started, was stopped already, or was evicted.
    pub fn stop(
        &self,
        clock: &dyn Clock,
        id: TimerId,
        success: bool,
    ) -> Result<Stopped, MetricsError> {
        let t = self
            .table
            .lock()
            .running
            .remove(&id)
            .ok_or(MetricsError::UnknownTimer(id))?;
        let elapsed = clock.monotonic_nanos().saturating_sub(t.start_nanos);
        let duration = Duration::from_nanos(u64::try_from(elapsed).unwrap_or(0));
        let result = TimingResult {
            operation_name: t.name.clone(),
            duration,
            start_time: to_datetime(t.start_ms),
            end_time: to_datetime(clock.now_millis()),
            success,
            metadata: t.tags.iter().cloned().collect(),
        };
        Ok(Stopped {
            name: t.name,
            tags: t.tags,
            result,
        })
    }

    /// Timers running now.
    pub fn len(&self) -> usize {
        self.table.lock().running.len()
    }
}
