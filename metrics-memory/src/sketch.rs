//! A DDSketch-style quantile sketch: logarithmic buckets with a guaranteed
//! relative error, mergeable, with bounded memory.
//!
//! A positive value `x` goes to bucket `ceil(ln x / ln γ)` with
//! `γ = (1 + α) / (1 - α)`; a bucket is reported as `2γ^k / (γ + 1)`, which
//! is within `α` of every value in it. With `α = 0.005` every quantile is
//! within 0.5% of the exact nearest-rank value (before clamping to the exact
//! min and max, which can only bring it closer).
//!
//! Memory: a dense array of `u32` counts over the range of keys seen, at most
//! [`MAX_BUCKETS`] per sign (16 KiB each); past that the lowest buckets are
//! collapsed into one (their values lose accuracy, the high quantiles keep
//! it), as DDSketch does.

/// Relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.005;
/// Most buckets per sign. With α = 0.005 this covers values spanning
/// e^(4096 · 0.01) ≈ 10^17.8, far beyond any latency or size distribution.
pub const MAX_BUCKETS: usize = 4096;
/// Values with a magnitude below this count as zero.
pub const MIN_MAGNITUDE: f64 = 1e-12;

fn ln_gamma() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

/// Dense counts of one sign.
#[derive(Debug, Clone, Default)]
struct Store {
    /// Key of `counts[0]`.
    offset: i32,
    counts: Vec<u32>,
    total: u64,
}

impl Store {
    fn add(&mut self, key: i32, n: u32) {
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.push(0);
        }
        let key = if key < self.offset {
            let grow = (self.offset - key) as usize;
            if self.counts.len() + grow > MAX_BUCKETS {
                // Collapse: values below the kept range go to the lowest bucket.
                let room = MAX_BUCKETS - self.counts.len();
                self.prepend(room);
                self.offset
            } else {
                self.prepend(grow);
                key
            }
        } else {
            key
        };
        let mut idx = (key - self.offset) as usize;
        if idx >= self.counts.len() {
            let need = idx + 1;
            if need > MAX_BUCKETS {
                // Shift the window up, folding the lowest buckets into one.
                let shift = need - MAX_BUCKETS;
                let folded: u32 = self.counts[..=shift.min(self.counts.len() - 1)]
                    .iter()
                    .fold(0u32, |a, b| a.saturating_add(*b));
                self.counts.drain(..shift.min(self.counts.len()));
                if let Some(first) = self.counts.first_mut() {
                    *first = folded;
                } else {
                    self.counts.push(folded);
                }
                self.offset += shift as i32;
                idx = (key - self.offset) as usize;
            }
            if idx >= self.counts.len() {
                self.counts.resize(idx + 1, 0);
            }
        }
        self.counts[idx] = self.counts[idx].saturating_add(n);
        self.total += u64::from(n);
    }

    fn prepend(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let mut v = vec![0u32; n];
        v.extend_from_slice(&self.counts);
        self.counts = v;
        self.offset -= n as i32;
    }

    fn merge(&mut self, other: &Store) {
        for (i, c) in other.counts.iter().enumerate() {
            if *c > 0 {
                self.add(other.offset + i as i32, *c);
            }
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.counts.capacity() * 4
    }
}

/// A mergeable quantile sketch (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    pos: Store,
    neg: Store,
    zero: u64,
}

impl Sketch {
    /// An empty sketch.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    fn key(magnitude: f64) -> i32 {
        let k = (magnitude.ln() / ln_gamma()).ceil();
        k.clamp(i32::MIN as f64 / 2.0, i32::MAX as f64 / 2.0) as i32
    }

    fn value(key: i32) -> f64 {
        let g = ln_gamma().exp();
        2.0 * (f64::from(key) * ln_gamma()).exp() / (g + 1.0)
    }

    /// Adds one finite value.
    pub fn add(&mut self, value: f64) {
        if value.abs() < MIN_MAGNITUDE || !value.is_finite() {
            self.zero += 1;
        } else if value > 0.0 {
            self.pos.add(Self::key(value), 1);
        } else {
            self.neg.add(Self::key(-value), 1);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.pos.merge(&other.pos);
        self.neg.merge(&other.neg);
        self.zero += other.zero;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.pos.total + self.neg.total + self.zero
    }

    /// The nearest-rank `q`-quantile (0 ≤ q ≤ 1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        // Nearest rank, 1-based: the smallest value with at least q·n values ≤ it.
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        // Negative values, most negative (largest magnitude) first.
        for (i, c) in self.neg.counts.iter().enumerate().rev() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(-Self::value(self.neg.offset + i as i32));
            }
        }
        seen += self.zero;
        if seen >= rank {
            return Some(0.0);
        }
        for (i, c) in self.pos.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(Self::value(self.pos.offset + i as i32));
            }
        }
        None
    }

    /// Heap bytes used by the bucket arrays.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.pos.bytes() + self.neg.bytes()
    }

    /// Empties the sketch, keeping its allocations.
    pub fn clear(&mut self) {
        for s in [&mut self.pos, &mut self.neg] {
            s.counts.clear();
            s.total = 0;
            s.offset = 0;
        }
        self.zero = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic PRNG (SplitMix64) so the tests need no extra crate.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed)
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        pub(crate) fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        pub(crate) fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    fn check(name: &str, values: &mut [f64]) {
        let mut s = Sketch::new();
        for v in values.iter() {
            s.add(*v);
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            let exact = values[rank - 1];
            let got = s.quantile(q).unwrap();
            let err = if exact == 0.0 {
                got.abs()
            } else {
                ((got - exact) / exact).abs()
            };
            assert!(
                err <= 0.01,
                "{name} q={q}: exact {exact} sketch {got} error {err}"
            );
        }
        assert!(s.heap_bytes() <= 2 * MAX_BUCKETS * 4);
    }

    const N: usize = 1_000_000;

    #[test]
    fn uniform_within_one_percent() {
        let mut r = Rng::new(1);
        let mut v: Vec<f64> = (0..N).map(|_| 1.0 + r.uniform() * 999.0).collect();
        check("uniform", &mut v);
    }

    #[test]
    fn lognormal_sigma_1_and_2_within_one_percent() {
        for sigma in [1.0, 2.0] {
            let mut r = Rng::new(7);
            let mut v: Vec<f64> = (0..N).map(|_| (3.0 + sigma * r.normal()).exp()).collect();
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(*x), b.max(*x)));
            if sigma == 2.0 {
                assert!(
                    hi / lo > 1e8,
                    "sigma 2 should span eight decades: {lo}..{hi}"
                );
            }
            check("lognormal", &mut v);
        }
    }

    #[test]
    fn bimodal_within_one_percent() {
        let mut r = Rng::new(3);
        let mut v: Vec<f64> = (0..N)
            .map(|i| {
                if i % 10 < 7 {
                    5.0 + r.normal().abs()
                } else {
                    800.0 + 50.0 * r.normal().abs()
                }
            })
            .collect();
        check("bimodal", &mut v);
    }

    #[test]
    fn negatives_zero_and_merge() {
        let mut a = Sketch::new();
        let mut b = Sketch::new();
        let mut all = Vec::new();
        for i in -500..=500 {
            let x = f64::from(i) * 0.75;
            all.push(x);
            if i % 2 == 0 { a.add(x) } else { b.add(x) }
        }
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        check("symmetric", &mut all);
        let med = a.quantile(0.5).unwrap();
        assert!(med.abs() < 1e-9, "median of symmetric data is 0, got {med}");
        assert!(a.quantile(0.0).unwrap() < -370.0);
        assert!(a.quantile(1.5).is_none());
    }

    #[test]
    fn memory_stays_bounded_over_a_huge_range() {
        let mut s = Sketch::new();
        let mut x = 1e-10;
        while x < 1e30 {
            s.add(x);
            x *= 1.001;
        }
        assert!(s.heap_bytes() <= MAX_BUCKETS * 4 + 64, "{}", s.heap_bytes());
        // High quantiles keep their accuracy after collapsing.
        let top = s.quantile(1.0).unwrap();
        assert!((top / 1e30 - 1.0).abs() < 0.01, "{top}");
    }
}
