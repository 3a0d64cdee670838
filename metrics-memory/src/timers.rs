//! The bounded table of running timers.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use chrono::{DateTime, Utc};
use metrics_protocol::TimerId;
use parking_lot::Mutex;

/// A started, not yet stopped timer.
#[derive(Debug)]
pub(crate) struct Running {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub started: Instant,
    pub start_time: DateTime<Utc>,
}

/// Running timers, at most `cap`; starting one more evicts the oldest.
#[derive(Debug)]
pub(crate) struct TimerTable {
    cap: usize,
    inner: Mutex<(HashMap<TimerId, Running>, VecDeque<TimerId>)>,
}

impl TimerTable {
    pub fn new(cap: usize) -> Self {
        TimerTable {
            cap: cap.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Inserts; returns how many running timers were evicted to make room.
    pub fn insert(&self, id: TimerId, t: Running) -> u64 {
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        let mut evicted = 0;
        while map.len() >= self.cap {
            match order.pop_front() {
                Some(old) => evicted += u64::from(map.remove(&old).is_some()),
                None => break,
            }
        }
        map.insert(id, t);
        order.push_back(id);
        // Ids of stopped timers linger in `order`; keep it bounded.
        if order.len() > 2 * self.cap {
            order.retain(|i| map.contains_key(i));
        }
        evicted
    }

    pub fn remove(&self, id: &TimerId) -> Option<Running> {
        self.inner.lock().0.remove(id)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().0.len()
    }
}
