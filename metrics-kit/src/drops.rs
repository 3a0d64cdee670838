//! [`DropCounters`]: the per-reason drop counts a backend reports in its health.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_protocol::backend::DropReason;

/// Lock-free drop counters, one per [`DropReason`]: what a backend reports
/// in its health.
#[derive(Debug, Default)]
pub struct DropCounters {
    counts: [AtomicU64; DropReason::ALL.len()],
}

impl DropCounters {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one dropped sample and logs it at debug level.
    pub fn record(&self, reason: DropReason) {
        self.add(reason, 1);
    }

    /// Counts `n` dropped samples.
    pub fn add(&self, reason: DropReason, n: u64) {
        self.counts[reason.index()].fetch_add(n, Ordering::Relaxed);
        tracing::debug!(reason = reason.as_str(), n, "metric sample dropped");
    }

    /// Samples dropped for `reason` so far.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// Samples dropped for any reason so far.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The non-zero counters, by reason.
    pub fn snapshot(&self) -> BTreeMap<DropReason, u64> {
        DropReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_count_by_reason() {
        let d = DropCounters::new();
        d.record(DropReason::InvalidName);
        d.add(DropReason::QueueFull, 3);
        assert_eq!(d.get(DropReason::InvalidName), 1);
        assert_eq!(d.get(DropReason::QueueFull), 3);
        assert_eq!(d.total(), 4);
        let snap = d.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[&DropReason::QueueFull], 3);
    }
}
