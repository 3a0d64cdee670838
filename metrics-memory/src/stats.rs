//! Exact count/sum/min/max (what every bin holds) and, for query answers,
//! the same with a quantile sketch.

use crate::ring::BinData;
use crate::sketch::Sketch;

/// Exact statistics of a set of samples: what every time bin holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exact {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Smallest sample (meaningless when `count == 0`).
    pub min: f64,
    /// Largest sample (meaningless when `count == 0`).
    pub max: f64,
}

impl Exact {
    /// Adds one sample.
    #[inline]
    pub fn add(&mut self, value: f64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
    }

    /// Adds a whole bin of `count` samples summing to `sum` whose single
    /// samples are not known: min and max become the bin's sum (counters
    /// report the smallest and largest increase of one finest bin).
    pub fn add_bin(&mut self, count: u64, sum: f64) {
        self.merge_from(&Exact {
            count,
            sum,
            min: sum,
            max: sum,
        });
    }
}

impl Exact {
    /// Adds another set's statistics: counts and sums add up, min and max
    /// are the extremes of both (an empty set changes nothing).
    pub fn merge(&mut self, o: &Exact) {
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
    }

    /// Mean, 0 when empty.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

impl BinData for Exact {
    fn merge_from(&mut self, o: &Self) {
        self.merge(o);
    }

    fn reset(&mut self) {
        *self = Exact::default();
    }
}

/// Statistics of a set of samples with an optional quantile sketch: what a
/// query answers from.
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
    /// Quantile sketch (distributions only).
    pub sketch: Option<Box<Sketch>>,
}

impl Stats {
    /// Adds exact statistics (no sketch).
    pub fn merge_exact(&mut self, o: &Exact) {
        let mut e = self.exact();
        e.merge(o);
        (self.count, self.sum, self.min, self.max) = (e.count, e.sum, e.min, e.max);
    }

    /// The exact part: count, sum, min and max.
    pub fn exact(&self) -> Exact {
        Exact {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
        }
    }

    /// Mean, 0 when empty.
    pub fn avg(&self) -> f64 {
        self.exact().avg()
    }

    /// Nearest-rank quantile from the sketch, clamped to the exact min and
    /// max; `q = 0` and `q = 1` are the exact min and max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v = self.sketch.as_ref()?.quantile(q)?;
        if self.count == 0 {
            return Some(v);
        }
        Some(if q <= 0.0 {
            self.min
        } else if q >= 1.0 {
            self.max
        } else {
            v.clamp(self.min, self.max)
        })
    }
}
