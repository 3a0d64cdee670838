//! Standard workloads for benchmarks: one shape of series, recorded the
//! same way wherever it is measured (encoding, serving, a peer library), so
//! figures from different benches describe the same data.
//!
//! ```
//! use metrics_conformance::workload::TEN_THOUSAND_SERIES;
//! use metrics_protocol::testing::Capture;
//!
//! let capture = Capture::new();
//! TEN_THOUSAND_SERIES.record(&capture.metrics());
//! assert_eq!(capture.records().len(), TEN_THOUSAND_SERIES.measurements());
//! assert_eq!(TEN_THOUSAND_SERIES.series(), 10_000);
//! ```

use metrics_protocol::Metrics;

/// A shape of series: `counter_names` counters and `histogram_names`
/// histograms, each name with `per_name` series (tag `id` = `0..per_name`),
/// each histogram series with `samples` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Counter names (`bench.requests_<n>`).
    pub counter_names: usize,
    /// Histogram names (`bench.payload_<n>`).
    pub histogram_names: usize,
    /// Series per name (tag `id`).
    pub per_name: usize,
    /// Samples per histogram series.
    pub samples: usize,
}

/// 10,000 series: 9,000 counters and 1,000 histograms of 20 samples each.
pub const TEN_THOUSAND_SERIES: Workload = Workload {
    counter_names: 90,
    histogram_names: 10,
    per_name: 100,
    samples: 20,
};

impl Workload {
    /// Distinct series.
    pub fn series(&self) -> usize {
        (self.counter_names + self.histogram_names) * self.per_name
    }

    /// Measurements [`record`](Self::record) makes.
    pub fn measurements(&self) -> usize {
        self.per_name * (self.counter_names + self.histogram_names * self.samples)
    }

    /// Every counter increment: `(name index, id, amount)`; series `id` of
    /// every name is incremented once by `id + 1`.
    pub fn counters(&self) -> impl Iterator<Item = (usize, usize, u64)> + use<> {
        let per_name = self.per_name;
        (0..self.counter_names)
            .flat_map(move |n| (0..per_name).map(move |id| (n, id, (id + 1) as u64)))
    }

    /// Every histogram sample: `(name index, id, value)`; series `id`
    /// takes `id`, `id + 10`, `id + 20`, ...
    pub fn histogram_samples(&self) -> impl Iterator<Item = (usize, usize, f64)> + use<> {
        let (per_name, samples) = (self.per_name, self.samples);
        (0..self.histogram_names).flat_map(move |n| {
            (0..per_name)
                .flat_map(move |id| (0..samples).map(move |s| (n, id, (s * 10 + id) as f64)))
        })
    }

    /// Records the workload through our facade.
    pub fn record(&self, metrics: &Metrics) {
        for (n, id, v) in self.counters() {
            let id = id.to_string();
            metrics.record_counter(&format!("bench.requests_{n}"), v as f64, &[("id", &id)]);
        }
        for (n, id, v) in self.histogram_samples() {
            let id = id.to_string();
            metrics.record_histogram(&format!("bench.payload_{n}"), v, &[("id", &id)]);
        }
    }
}
