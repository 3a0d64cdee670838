//! The sample reader and the validation rules.

use arbitrary::Arbitrary;
use metrics_kit::{Sample, read_samples};
use metrics_memory::MemoryMetrics;
use metrics_protocol::backend::validate::{
    self, MAX_NAME_LEN, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN, MAX_TAGS, SortedTags,
};
use metrics_protocol::backend::{Measurement, Value};
use metrics_protocol::{Key, MetricType, Metrics};

use crate::shape;

/// JSON lines: line numbers grow, a parsed sample writes back to the same
/// sample, and recording it never panics.
pub fn samples(data: &[u8]) {
    let memory = MemoryMetrics::new();
    let mut last = 0;
    for (line, result) in read_samples(data) {
        assert!(line > last, "line numbers must grow: {line} after {last}");
        last = line;
        let Ok(sample) = result else { continue };
        assert!(sample.value.is_finite(), "JSON has no NaN or infinity");
        if sample.kind == MetricType::Timer {
            assert!(sample.duration().is_ok(), "a parsed timer has a duration");
        }
        let text = serde_json::to_string(&sample).expect("a sample serialises");
        let back = Sample::parse_line(&text).expect("a written sample parses");
        assert_eq!(back, sample, "sample round trip through {text}");
        let _ = sample.record_into(&memory);
    }
}

#[derive(Debug, Arbitrary)]
struct SampleInput {
    name: String,
    value: f64,
    counter: bool,
    tags: Vec<(String, String)>,
}

/// The validation rules: what passes obeys every documented limit, what
/// fails names a rule that is really broken, and tag order never matters.
pub fn validate(data: &[u8]) {
    let Some(input) = shape::<SampleInput>(data) else {
        return;
    };
    let tags: Vec<(&str, &str)> = input
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let name_ok = validate::check_name(&input.name).is_ok();
    assert_eq!(
        name_ok,
        !input.name.is_empty()
            && input.name.len() <= MAX_NAME_LEN
            && !input.name.chars().any(char::is_control),
        "check_name({:?})",
        input.name
    );
    let value_ok = if input.counter {
        validate::check_counter_value(input.value).is_ok()
    } else {
        validate::check_value(input.value).is_ok()
    };
    assert_eq!(
        value_ok,
        input.value.is_finite() && (!input.counter || input.value >= 0.0),
        "value {}",
        input.value
    );
    let sorted = SortedTags::new(&tags);
    match &sorted {
        Ok(s) => {
            assert!(tags.len() <= MAX_TAGS);
            let slice = s.as_slice();
            assert_eq!(slice.len(), tags.len());
            assert!(slice.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
            for (k, v) in &tags {
                assert!(
                    !k.is_empty()
                        && k.len() <= MAX_TAG_KEY_LEN
                        && v.len() <= MAX_TAG_VALUE_LEN
                        && !k.chars().any(char::is_control)
                );
                assert_eq!(s.get(k), Some(*v), "every tag is found by key");
            }
        }
        Err(reason) => {
            let bad_tag = tags.iter().any(|(k, v)| validate::check_tag(k, v).is_err());
            let mut keys: Vec<&str> = tags.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            let dup = keys.windows(2).any(|w| w[0] == w[1]);
            assert!(
                tags.len() > MAX_TAGS || bad_tag || dup,
                "rejected for {reason:?} without a broken rule"
            );
        }
    }
    let key = Key::new(&input.name, &tags);
    assert_eq!(
        key.is_ok(),
        name_ok && sorted.is_ok(),
        "Key::new agrees with the rules"
    );
    if let Ok(key) = &key {
        assert_eq!(
            Key::fingerprint_of(&input.name, &tags),
            key.fingerprint(),
            "the unchecked hash is the key's"
        );
        let value = if input.counter {
            Value::Counter(input.value)
        } else {
            Value::Gauge(input.value)
        };
        assert_eq!(Measurement::new(key, value).is_ok(), value_ok);
    }
    check_permutations(&tags);
}

/// Tag normalisation: every rotation and the reverse of a tag list give the
/// same `SortedTags` and an equal `Key` with the same fingerprint, or the
/// same error.
fn check_permutations(tags: &[(&str, &str)]) {
    let base = SortedTags::new(tags);
    let base_key = Key::new("fuzz", tags);
    let mut variants: Vec<Vec<(&str, &str)>> = Vec::new();
    let mut rev = tags.to_vec();
    rev.reverse();
    variants.push(rev);
    for i in 1..tags.len() {
        let mut r = tags.to_vec();
        r.rotate_left(i);
        variants.push(r);
    }
    for v in &variants {
        let other = SortedTags::new(v);
        match (&base, &other) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "tag order changed the tags"),
            (Err(a), Err(b)) => assert_eq!(a, b, "tag order changed the drop reason"),
            _ => panic!("tag order changed acceptance: {tags:?} vs {v:?}"),
        }
        match (&base_key, &Key::new("fuzz", v)) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "tag order changed the key");
                assert_eq!(
                    a.fingerprint(),
                    b.fingerprint(),
                    "tag order changed the fingerprint"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "tag order changed the key's refusal"),
            _ => panic!("tag order changed the key's acceptance: {tags:?} vs {v:?}"),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct TagOrderInput {
    tags: Vec<(String, String)>,
    swaps: Vec<(u8, u8)>,
    value: u16,
}

/// Tag normalisation end to end: a counter recorded under one order of its
/// tags and read back under another is the same series.
pub fn tag_order(data: &[u8]) {
    let Some(input) = shape::<TagOrderInput>(data) else {
        return;
    };
    let tags: Vec<(&str, &str)> = input
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut shuffled = tags.clone();
    if !shuffled.is_empty() {
        for (a, b) in &input.swaps {
            let n = shuffled.len();
            shuffled.swap(usize::from(*a) % n, usize::from(*b) % n);
        }
    }
    check_permutations(&tags);
    let memory = std::sync::Arc::new(MemoryMetrics::new());
    let metrics = Metrics::new(memory.clone());
    let v = f64::from(input.value);
    metrics.record_counter("fuzz.tags", v, &tags);
    metrics.record_counter("fuzz.tags", v, &shuffled);
    // Again from the first call site: found without a key, by content.
    metrics.record_counter("fuzz.tags", v, &tags);
    let accepted = SortedTags::new(&tags).is_ok();
    assert_eq!(memory.series_count(), usize::from(accepted), "one series");
    if accepted {
        assert_eq!(memory.counter_value("fuzz.tags", &shuffled), Some(3.0 * v));
        assert_eq!(memory.counter_value("fuzz.tags", &tags), Some(3.0 * v));
    }
}
