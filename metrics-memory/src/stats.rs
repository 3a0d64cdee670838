//! Exact count/sum/min/max plus an optional quantile sketch: what every bin
//! and every series' all-time total holds.

use crate::sketch::Sketch;
use crate::window::BinData;

/// Statistics of a set of samples.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Smallest sample (meaningless when `count == 0`).
    pub min: f64,
    /// Largest sample (meaningless when `count == 0`).
    pub max: f64,
    /// Most recent sample.
    pub last: f64,
    /// Quantile sketch (distributions only).
    pub sketch: Option<Box<Sketch>>,
}

impl Stats {
    /// Adds one sample; `with_sketch` creates the sketch on first use.
    pub fn add(&mut self, value: f64, with_sketch: bool) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        self.last = value;
        if with_sketch {
            self.sketch.get_or_insert_with(Default::default).add(value);
        }
    }

    /// Adds a whole bin of `count` samples summing to `sum` whose single
    /// samples are not known: min and max become the bin's sum (counters
    /// report the smallest and largest increase of one finest bin).
    pub fn add_bin(&mut self, count: u64, sum: f64) {
        if count == 0 {
            return;
        }
        self.merge_from(&Stats {
            count,
            sum,
            min: sum,
            max: sum,
            last: sum,
            sketch: None,
        });
    }

    /// Mean, 0 when empty.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Nearest-rank quantile from the sketch, clamped to the exact min/max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v = self.sketch.as_ref()?.quantile(q)?;
        Some(v.clamp(self.min, self.max))
    }
}

impl BinData for Stats {
    fn merge_from(&mut self, o: &Self) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = o.min;
            self.max = o.max;
        } else {
            self.min = self.min.min(o.min);
            self.max = self.max.max(o.max);
        }
        self.count += o.count;
        self.sum += o.sum;
        self.last = o.last;
        if let Some(s) = &o.sketch {
            self.sketch.get_or_insert_with(Default::default).merge(s);
        }
    }

    fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.min = 0.0;
        self.max = 0.0;
        self.last = 0.0;
        if let Some(s) = &mut self.sketch {
            s.clear();
        }
    }
}
