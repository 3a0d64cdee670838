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

/// Nearest-rank quantile of sorted values.
pub(crate) fn exact(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
}

fn rel(got: f64, exact: f64) -> f64 {
    if exact == 0.0 {
        got.abs()
    } else {
        ((got - exact) / exact).abs()
    }
}

const QS: [f64; 10] = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0];

/// A bucket past 2^32 samples (weeks of a hot series, or a fleet's
/// bins merged) keeps its exact count: counts widen to 64 bits instead
/// of saturating, so quantiles stay right and encodings round-trip
/// (found by the `sketch_bytes` fuzz target).
#[test]
fn counts_past_32_bits_stay_exact() {
    let mut s = Sketch::new(1);
    s.add_key(Key::of(1.0), 3_000_000_000);
    s.add_key(Key::of(1.0), 3_000_000_000);
    s.add_key(Key::of(100.0), 5_000_000_000);
    s.add_key(Key::of(0.5), 7);
    assert_eq!(s.count(), 11_000_000_007);
    // 6e9 of 11e9 at 1.0: the median is 1.0, p90 is 100.
    let p50 = s.quantile(0.5).unwrap();
    assert!((p50 - 1.0).abs() < 0.05, "{p50}");
    let p90 = s.quantile(0.9).unwrap();
    assert!((p90 - 100.0).abs() < 5.0, "{p90}");
    let mut out = Vec::new();
    s.encode(&mut out);
    let mut back = Sketch::new(1);
    assert!(back.merge_encoded(&out));
    assert_eq!(back.count(), s.count());
    let entries = |x: &Sketch| x.pos.entries().collect::<Vec<_>>();
    assert_eq!(entries(&back), entries(&s));
    // A wide sketch given a count past 32 bits for a new bucket.
    let mut w = Sketch::new(1);
    w.add_key(Key::of(1.0), 100_000);
    w.add_key(Key::of(1e6), 1 << 33);
    assert_eq!(w.count(), 100_000 + (1 << 33));
    assert_eq!(w.pos.entries().map(|(_, c)| c).sum::<u64>(), w.count());
    // A narrow sketch given one huge count widens straight to 64 bits.
    let mut t = Sketch::new(1);
    t.add_key(Key::of(2.0), 1 << 40);
    assert_eq!(t.pos.entries().next().map(|(_, c)| c), Some(1 << 40));
}

/// The stated error of a bucket count: a value is counted at most a
/// bound when `x + α|x| ≤ bound` and never when `x - α|x| > bound`; the
/// counts are cumulative and end at the total; the quantile lies in
/// the bucket holding its rank.
#[test]
fn bucket_counts_are_exact_but_for_values_within_alpha_of_a_bound() {
    let mut rng = Rng::new(7);
    let mut bounds: Vec<f64> = vec![-100.0, -1.0, -0.01, 0.0, 0.005, 0.01, 0.25, 1.0];
    bounds.extend([2.5, 5.0, 10.0, 100.0, 1e3, 1e4, 1e6]);
    for round in 0..20 {
        let mut q = QuantileSketch::new();
        let mut values = Vec::new();
        for i in 0..2000 {
            let v = match (round + i) % 5 {
                // Values right at and beside the bounds.
                0 => bounds[(rng.next_u64() % bounds.len() as u64) as usize],
                1 => {
                    bounds[(rng.next_u64() % bounds.len() as u64) as usize]
                        * (1.0 + 0.004 * rng.normal())
                }
                2 => -(10f64.powf(rng.uniform() * 4.0 - 2.0)),
                3 => 0.0,
                _ => 10f64.powf(rng.uniform() * 8.0 - 3.0),
            };
            q.add(v);
            values.push(v);
        }
        let counts = q.cumulative_counts(&bounds);
        let a = RELATIVE_ACCURACY * (1.0 + 1e-9);
        for (b, c) in bounds.iter().zip(&counts) {
            let surely = values.iter().filter(|x| *x + a * x.abs() <= *b).count() as u64;
            let maybe = values.iter().filter(|x| *x - a * x.abs() <= *b).count() as u64;
            assert!(
                (surely..=maybe).contains(c),
                "le={b}: {c} not in {surely}..={maybe}"
            );
        }
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(*counts.last().unwrap() <= q.count());
        // The quantile lies in the bucket that holds its rank.
        for p in [0.5, 0.9, 0.95, 0.99] {
            let rank = ((p * q.count() as f64).ceil() as u64).max(1);
            let v = q.quantile(p).unwrap();
            let i = counts.partition_point(|c| *c < rank);
            if let Some(hi) = bounds.get(i) {
                assert!(v <= *hi, "q={p}: {v} above its bucket's bound {hi}");
            }
            if i > 0 {
                assert!(v > bounds[i - 1], "q={p}: {v} below its bucket");
            }
        }
    }
    assert_eq!(
        QuantileSketch::new().cumulative_counts(&bounds),
        vec![0; bounds.len()]
    );
}

fn check_level(name: &str, values: &mut [f64], level: u8, bound: f64) {
    let mut s = Sketch::new(level);
    for v in values.iter() {
        s.add(*v);
    }
    values.sort_by(f64::total_cmp);
    for q in QS {
        let (want, got) = (exact(values, q), s.quantile(q).unwrap());
        let err = rel(got, want);
        assert!(
            err <= bound * (1.0 + 1e-9),
            "{name} level {level} q={q}: exact {want} sketch {got} error {err}"
        );
    }
    assert!(s.heap_bytes() <= 2 * MAX_KEYS[usize::from(level)] * 4);
}

fn check(name: &str, values: &mut [f64]) {
    check_level(name, &mut values.to_vec(), 1, WINDOW_ACCURACY);
    check_level(name, values, 0, RELATIVE_ACCURACY);
}

const N: usize = 1_000_000;

#[test]
fn uniform_within_the_bound() {
    let mut r = Rng::new(1);
    let mut v: Vec<f64> = (0..N).map(|_| 1.0 + r.uniform() * 999.0).collect();
    check("uniform", &mut v);
}

#[test]
fn lognormal_sigma_1_and_2_within_the_bound() {
    for sigma in [1.0, 2.0] {
        let mut r = Rng::new(7);
        let mut v: Vec<f64> = (0..N).map(|_| (3.0 + sigma * r.normal()).exp()).collect();
        check("lognormal", &mut v);
    }
}

#[test]
fn pareto_one_ns_to_one_hour_bimodal_and_constant_within_the_bound() {
    let mut r = Rng::new(11);
    let mut pareto: Vec<f64> = (0..N).map(|_| r.uniform().powf(-1.0 / 1.1)).collect();
    check("pareto 1.1", &mut pareto);
    // 1 ns to 1 h in milliseconds, uniform in the logarithm.
    let mut wide: Vec<f64> = (0..N)
        .map(|_| 1e-6 * (3.6e6f64 / 1e-6).powf(r.uniform()))
        .collect();
    check("1ns..1h", &mut wide);
    let mut bimodal: Vec<f64> = (0..N)
        .map(|i| {
            if i % 10 < 7 {
                5.0 + r.normal().abs()
            } else {
                800.0 + 50.0 * r.normal().abs()
            }
        })
        .collect();
    check("bimodal", &mut bimodal);
    let mut constant = vec![42.5; 1000];
    check("constant", &mut constant);
}

#[test]
fn negatives_zero_and_merge() {
    let mut a = Sketch::new(0);
    let mut b = Sketch::new(0);
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
fn one_extreme_sample_moves_no_quantile_from_p1_to_p99() {
    let mut r = Rng::new(5);
    let bulk: Vec<f64> = (0..200_000).map(|_| (r.normal() * 2.0).exp()).collect();
    for extreme in [1e300, 1e-300, 0.0, f64::MAX, -1e300, 1.8e22] {
        for first in [false, true] {
            for level in [0u8, 1] {
                let bound = [RELATIVE_ACCURACY, WINDOW_ACCURACY][usize::from(level)];
                let mut s = Sketch::new(level);
                let mut all = bulk.clone();
                all.push(extreme);
                if first {
                    s.add(extreme);
                }
                for v in &bulk {
                    s.add(*v);
                }
                if !first {
                    s.add(extreme);
                }
                all.sort_by(f64::total_cmp);
                for q in [0.01, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] {
                    let (want, got) = (exact(&all, q), s.quantile(q).unwrap());
                    assert!(
                        rel(got, want) <= bound * (1.0 + 1e-9),
                        "extreme {extreme:e} (first: {first}) level {level} q={q}: \
                         exact {want} sketch {got}"
                    );
                }
                // The array stays bounded: the extreme is counted beyond it.
                assert!(s.heap_bytes() <= 2 * MAX_KEYS[usize::from(level)] * 4);
            }
        }
    }
}

/// Every quantile of `values` from a sketch at `level`, against the exact
/// nearest-rank value, within the level's stated accuracy.
fn assert_within_accuracy(values: &[f64], level: u8, what: &str) {
    let alpha = [RELATIVE_ACCURACY, WINDOW_ACCURACY][usize::from(level)];
    // Arrival order interleaved (a deterministic shuffle), as a live
    // series sees it: a run of far values before any of the bulk could
    // fill the far list first (see the module docs).
    let mut order = values.to_vec();
    let mut r = Rng::new(5);
    for i in (1..order.len()).rev() {
        order.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut s = Sketch::new(level);
    for v in &order {
        s.add(*v);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    for q in [
        0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999,
    ] {
        let (want, got) = (exact(&sorted, q), s.quantile(q).unwrap());
        assert!(
            rel(got, want) <= alpha * (1.0 + 1e-9),
            "{what}, level {level}, p{q}: exact {want:e}, got {got:e}"
        );
    }
    assert_eq!(s.far_merged(), 0, "{what}");
}

#[test]
fn extreme_values_keep_their_own_buckets_at_both_levels() {
    let mut r = Rng::new(17);
    let bulk: Vec<f64> = (0..9_000).map(|_| (2.0 * r.normal()).exp()).collect();
    for level in [0, 1] {
        // 10 % and 1 % of the samples at 1e300: p95 and p99 are 1e300.
        for share in [1_000, 90] {
            let mut v = bulk.clone();
            v.extend(std::iter::repeat_n(1e300, share));
            assert_within_accuracy(&v, level, &format!("{share} at 1e300"));
        }
        // Both signs, tiny and huge, a share of them each (fewer distinct
        // far keys per sign than the far list holds).
        let mut v = bulk.clone();
        let far = [
            f64::MAX,
            1e300,
            5e250,
            1e200,
            1e100,
            1e-100,
            1e-200,
            1.234e-250,
            1e-300,
            f64::MIN_POSITIVE,
        ];
        for x in far {
            v.extend(std::iter::repeat_n(x, 40));
            v.extend(std::iter::repeat_n(-x, 40));
        }
        v.extend((0..2_000).map(|_| -(3.0 * r.normal()).exp()));
        assert_within_accuracy(&v, level, "both signs, the extremes");
        // A bulk first, then an extreme half: the side with fewer samples moves.
        let mut v = vec![1.0; 100];
        v.extend(std::iter::repeat_n(1e30, 99));
        v.extend(std::iter::repeat_n(-1e-300, 10));
        assert_within_accuracy(&v, level, "half at 1e30");
    }
}

#[test]
fn a_full_far_list_merges_neighbours_and_counts_them() {
    let mut s = Sketch::new(0);
    for _ in 0..1000 {
        s.add(1.0);
    }
    // 40 distinct far keys (a decade apart) for a list of FAR_KEYS.
    for e in 0..40 {
        s.add(10f64.powi(30 + 5 * e));
    }
    assert_eq!(s.count(), 1040);
    assert_eq!(s.far_merged(), (40 - FAR_KEYS) as u64);
    // The bulk is untouched, and the top still reports a far value.
    assert!(rel(s.quantile(0.5).unwrap(), 1.0) <= RELATIVE_ACCURACY);
    assert!(s.quantile(1.0).unwrap() > 1e200);
    let mut q = QuantileSketch::new();
    q.add(1.0);
    assert_eq!(q.far_merged(), 0);
}

#[test]
fn encoding_round_trips_and_is_compact() {
    let mut r = Rng::new(9);
    let mut s = Sketch::new(1);
    for _ in 0..100 {
        s.add((2.0 * r.normal()).exp());
    }
    s.add(0.0);
    s.add(-3.0);
    s.add(-3.0);
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert!(buf.len() < 2 * 104, "{} bytes for 104 samples", buf.len());
    let mut back = Sketch::new(1);
    assert!(back.merge_encoded(&buf));
    assert_eq!(back.count(), s.count());
    for q in QS {
        assert_eq!(back.quantile(q), s.quantile(q), "q={q}");
    }
    assert!(!Sketch::new(1).merge_encoded(&buf[..buf.len() - 1]));
}

/// Encodings whose count deltas or totals overflow 64-bit arithmetic are
/// refused, never a panic (a corrupt stored row reaches this code).
#[test]
fn overflowing_counts_in_an_encoding_are_refused_not_a_panic() {
    let mut overflow_delta = Vec::new();
    put_varint(&mut overflow_delta, 0); // no zeros
    put_varint(&mut overflow_delta, 1); // one positive bucket
    put_varint(&mut overflow_delta, zigzag(0));
    put_varint(&mut overflow_delta, 1); // no gap, a count delta follows
    put_varint(&mut overflow_delta, u64::MAX - 1); // zigzag of i64::MAX: 1 + i64::MAX
    put_varint(&mut overflow_delta, 0); // no negative buckets
    assert!(!valid_bin_encoding(&overflow_delta));
    let mut q = QuantileSketch::windowed();
    assert!(!q.merge_bin(&overflow_delta, 0.0, 1.0));
    assert_eq!(q.count(), 0);

    // Two encodings whose zero counts add past u64::MAX.
    let mut huge_zero = Vec::new();
    put_varint(&mut huge_zero, u64::MAX);
    put_varint(&mut huge_zero, 0);
    put_varint(&mut huge_zero, 0);
    let mut out = Vec::new();
    assert!(!merge_encodings(&huge_zero, &huge_zero, &mut out));
    assert!(!valid_bin_encoding(&huge_zero));
    let mut s = Sketch::new(1);
    assert!(s.merge_encoded(&huge_zero));
    assert!(
        !s.merge_encoded(&huge_zero),
        "a second merge would overflow"
    );

    // Bucket counts that add past u64::MAX in a merge of encodings.
    let mut big = Vec::new();
    put_varint(&mut big, 0);
    put_varint(&mut big, 1);
    put_varint(&mut big, zigzag(5));
    put_varint(&mut big, 1);
    put_varint(&mut big, zigzag_i64((u64::MAX - 1) as i64));
    put_varint(&mut big, 0);
    let mut out = Vec::new();
    assert!(!merge_encodings(&big, &big, &mut out));
}

fn zigzag_i64(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

/// The version 1 writer (no header, a token and a difference byte per
/// changed bucket): what rows stored before versions hold.
fn encode_v1(s: &Sketch) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, s.zero);
    for store in [&s.pos, &s.neg] {
        put_varint(&mut out, store.entries().count() as u64);
        let (mut prev, mut prev_count): (Option<i32>, u64) = (None, 1);
        for (k, c) in store.entries() {
            let gap = match prev {
                None => {
                    put_varint(&mut out, zigzag(k));
                    0
                }
                Some(p) => (k - p - 1) as u64,
            };
            prev = Some(k);
            let delta = c as i64 - prev_count as i64;
            prev_count = c;
            put_varint(&mut out, (gap << 1) | u64::from(delta != 0));
            if delta != 0 {
                put_varint(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
            }
        }
    }
    out
}

/// The version 2 writer (a varint token per bucket, one byte at least):
/// what rows stored before version 3 hold.
fn encode_v2(s: &Sketch) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    out.push(2);
    put_varint(&mut out, s.zero);
    for store in [&s.pos, &s.neg] {
        put_varint(&mut out, store.entries().count() as u64);
        let (mut prev, mut prev_count): (Option<i32>, u64) = (None, 1);
        for (k, c) in store.entries() {
            let gap = match prev {
                None => {
                    put_varint(&mut out, zigzag(k));
                    0
                }
                Some(p) => (k - p - 1) as u64,
            };
            prev = Some(k);
            let delta = c as i64 - prev_count as i64;
            prev_count = c;
            let z = zigzag_i64(delta);
            if gap == 0 {
                put_varint(&mut out, z << 1);
            } else {
                put_varint(&mut out, (gap << 2) | (u64::from(delta != 0) << 1) | 1);
                if delta != 0 {
                    put_varint(&mut out, z);
                }
            }
        }
    }
    out
}

#[test]
fn versions_1_and_2_still_decode_and_version_3_is_smaller() {
    let mut r = Rng::new(21);
    let mut s = Sketch::new(1);
    for i in 0..20_000 {
        let v = (2.0 * r.normal()).exp();
        s.add(if i % 3 == 0 { -v } else { v });
    }
    s.add(0.0);
    s.add(1e300);
    let (v1, v2, mut v3) = (encode_v1(&s), encode_v2(&s), Vec::new());
    s.encode(&mut v3);
    assert!(v3.starts_with(&HEADER) && v3[2] == 3 && !v1.starts_with(&HEADER));
    let all = |x: &Sketch| -> Vec<(i32, u64)> { x.pos.entries().chain(x.neg.entries()).collect() };
    for bytes in [&v1, &v2, &v3] {
        assert!(valid_bin_encoding(bytes));
        let mut back = Sketch::new(1);
        assert!(back.merge_encoded(bytes));
        assert_eq!((back.zero, all(&back)), (s.zero, all(&s)));
    }
    // Merging stored version 1 and 2 rows with a version 3 one gives
    // version 3.
    for old in [&v1, &v2] {
        let mut merged = Vec::new();
        assert!(merge_encodings(old, &v3, &mut merged));
        let mut back = Sketch::new(1);
        assert!(merged.starts_with(&HEADER) && merged[2] == 3 && back.merge_encoded(&merged));
        assert_eq!(back.count(), 2 * s.count());
        assert!(valid_bin_encoding(&merged));
    }
    assert!(
        v2.len() * 10 <= v1.len() * 7 && v3.len() * 10 <= v2.len() * 8,
        "version 3: {} bytes, version 2: {}, version 1: {}",
        v3.len(),
        v2.len(),
        v1.len()
    );
    // An unknown version is refused.
    let mut v4 = v3.clone();
    v4[2] = 4;
    assert!(!valid_bin_encoding(&v4) && !Sketch::new(1).merge_encoded(&v4));
}

/// Version 3's bit stream round-trips any entries: gaps and counts of
/// every size (the Rice code's escape, parameters past 32 bits), a count
/// that jumps from 1 to 2^62 and back.
#[test]
fn version_3_round_trips_entries_of_every_size() {
    let mut r = Rng::new(5);
    for case in 0..200 {
        let n = (r.next_u64() % 300) as usize;
        let mut entries = Vec::with_capacity(n);
        let mut key = -40_000 + (r.next_u64() % 1000) as i32;
        for i in 0..n {
            let shift = r.next_u64() % 63;
            let count = match (case + i) % 4 {
                0 => 1 + (r.next_u64() >> (1 + shift)),
                1 => 1 + r.next_u64() % 40,
                2 => 1 << 62,
                _ => 1,
            };
            entries.push((key, count));
            key += 1 + match i % 3 {
                0 => 0,
                1 => (r.next_u64() % 8) as i32,
                _ => (r.next_u64() % 200) as i32,
            };
        }
        let mut out = Vec::new();
        write_store(&mut out, n as u64, entries.iter().copied());
        let it = StoreIter::new(
            Reader {
                bytes: &out,
                pos: 0,
            },
            3,
        )
        .unwrap();
        assert_eq!(it.clone().collect::<Vec<_>>(), entries, "case {case}");
        assert_eq!(it.rest().map(|r| r.pos), Some(out.len()), "case {case}");
    }
}
