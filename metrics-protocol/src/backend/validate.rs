//! The validation rules every backend applies, written once.
//!
//! Names and tags are checked once, when a [`Key`](crate::Key) is built;
//! values when a [`Measurement`](crate::backend::Measurement) is.
//!
//! | input | rule here | outcome in a backend |
//! | --- | --- | --- |
//! | NaN or infinite value | [`check_value`] | dropped, counted as [`DropReason::InvalidValue`] |
//! | negative counter value (what a measurement adds) | [`check_counter_value`] | dropped, counted as [`DropReason::NegativeCounter`] |
//! | empty name, name over [`MAX_NAME_LEN`] bytes, control characters | [`check_name`] | dropped, counted as [`DropReason::InvalidName`] |
//! | empty tag key, key over [`MAX_TAG_KEY_LEN`], control characters in a key, value over [`MAX_TAG_VALUE_LEN`] | [`SortedTags::new`] | dropped, counted as [`DropReason::InvalidTag`] |
//! | more than [`MAX_TAGS`] tags, or one key twice in a call | [`SortedTags::new`] | dropped, counted as [`DropReason::TooManyTags`] / [`DropReason::DuplicateTag`] |
//! | tag value with characters a wire format reserves (quotes, `\|`, `,`, newline...) | accepted here | escaped or sanitised by each exporter, never injected |
//! | unknown timer id, timer stopped twice | - | `Err(MetricsError::UnknownTimer)` |
//! | timers started and never stopped | - | bounded table; oldest evicted, counted as [`DropReason::TimerEvicted`] |
//! | unknown export format | `ExportFormat::from_str` (`metrics-exposition`) | `Err(MetricsError::UnsupportedFormat)` |
//! | too many series for one name | - | folded into an overflow series tagged [`OVERFLOW_TAG`]` = true`, counted |
//!
//! A sample that breaks a rule is dropped whole: no part of it is recorded.

use std::fmt;

use crate::types::Tags;

/// Longest accepted metric name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Most tags on one sample.
pub const MAX_TAGS: usize = 16;
/// Longest accepted tag key, in bytes.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Longest accepted tag value, in bytes.
pub const MAX_TAG_VALUE_LEN: usize = 1024;
/// The tag key that marks the overflow series of a metric name whose
/// cardinality limit was reached (as OpenTelemetry's `otel.metric.overflow`).
pub const OVERFLOW_TAG: &str = "metric.overflow";

/// Why a sample was dropped. Every drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DropReason {
    /// Empty, too long, or contains control characters.
    InvalidName,
    /// NaN or infinite.
    InvalidValue,
    /// A counter value (what a measurement adds) below zero.
    NegativeCounter,
    /// A tag key or value that breaks the rules.
    InvalidTag,
    /// More than [`MAX_TAGS`] tags.
    TooManyTags,
    /// The same tag key twice in one call.
    DuplicateTag,
    /// A bounded queue was full (StatsD sender, stream subscriber).
    QueueFull,
    /// A datagram or request could not be sent; its samples are lost.
    SendFailed,
    /// A running timer was evicted from the bounded timer table.
    TimerEvicted,
    /// A sample whose metric name is already registered with another type.
    TypeMismatch,
    /// A sample with a new metric name past a backend's limit on names.
    NameLimit,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 11] = [
        DropReason::InvalidName,
        DropReason::InvalidValue,
        DropReason::NegativeCounter,
        DropReason::InvalidTag,
        DropReason::TooManyTags,
        DropReason::DuplicateTag,
        DropReason::QueueFull,
        DropReason::SendFailed,
        DropReason::TimerEvicted,
        DropReason::TypeMismatch,
        DropReason::NameLimit,
    ];

    /// The snake_case name used in health reports and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidName => "invalid_name",
            DropReason::InvalidValue => "invalid_value",
            DropReason::NegativeCounter => "negative_counter",
            DropReason::InvalidTag => "invalid_tag",
            DropReason::TooManyTags => "too_many_tags",
            DropReason::DuplicateTag => "duplicate_tag",
            DropReason::QueueFull => "queue_full",
            DropReason::SendFailed => "send_failed",
            DropReason::TimerEvicted => "timer_evicted",
            DropReason::TypeMismatch => "type_mismatch",
            DropReason::NameLimit => "name_limit",
        }
    }

    /// The reason's position in [`ALL`](Self::ALL), for per-reason arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a metric name: non-empty, at most [`MAX_NAME_LEN`] bytes, no
/// control characters.
///
/// Any other character is accepted (dots, dashes, spaces, non-ASCII); each
/// exporter maps names onto what its format allows.
pub fn check_name(name: &str) -> Result<(), DropReason> {
    crate::key::check_name(name)
}

/// Whether `s` holds a control character (C0, DEL or C1), scanning bytes:
/// C0 and DEL are single bytes, C1 (U+0080..U+009F) is 0xC2 0x80..0x9F.
#[inline]
fn has_control(s: &str) -> bool {
    crate::key::has_control(s.as_bytes())
}

/// Checks the error type of a failure: a tag value, so at most
/// [`MAX_TAG_VALUE_LEN`] bytes.
#[inline]
pub fn check_error_type(error_type: &str) -> Result<(), DropReason> {
    if error_type.len() > MAX_TAG_VALUE_LEN {
        Err(DropReason::InvalidTag)
    } else {
        Ok(())
    }
}

/// Checks a gauge, histogram or timer value: finite.
#[inline]
pub fn check_value(value: f64) -> Result<(), DropReason> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(DropReason::InvalidValue)
    }
}

/// Checks a counter value, what a measurement adds to its counter: finite
/// and not negative (`-0.0` is accepted).
#[inline]
pub fn check_counter_value(value: f64) -> Result<(), DropReason> {
    check_value(value)?;
    if value < 0.0 {
        Err(DropReason::NegativeCounter)
    } else {
        Ok(())
    }
}

/// Checks one tag key and value (see the module table).
pub fn check_tag(key: &str, value: &str) -> Result<(), DropReason> {
    if key.is_empty()
        || key.len() > MAX_TAG_KEY_LEN
        || has_control(key)
        || value.len() > MAX_TAG_VALUE_LEN
    {
        Err(DropReason::InvalidTag)
    } else {
        Ok(())
    }
}

/// A call's tags, checked and sorted by key, on the stack: no allocation.
///
/// This is the one place where tag order is normalised: `a=1,b=2` and
/// `b=2,a=1` give equal `SortedTags` with the same iteration order, so
/// backends hash and compare series keys through it.
///
/// ```
/// use metrics_protocol::backend::SortedTags;
/// let a = SortedTags::new(&[("b", "2"), ("a", "1")]).unwrap();
/// let b = SortedTags::new(&[("a", "1"), ("b", "2")]).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.as_slice(), &[("a", "1"), ("b", "2")]);
/// ```
#[derive(Clone, Copy)]
pub struct SortedTags<'a> {
    repr: Repr<'a>,
}

// A stack value on purpose: boxing the large variant would allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum Repr<'a> {
    /// The caller's slice was already sorted by key with no duplicate: no copy.
    Borrowed(Tags<'a>),
    /// A sorted copy on the stack, for up to four tags.
    Small {
        len: usize,
        tags: [(&'a str, &'a str); 4],
    },
    /// A sorted copy on the stack.
    Sorted {
        len: usize,
        tags: [(&'a str, &'a str); MAX_TAGS],
    },
}

impl<'a> SortedTags<'a> {
    /// Checks and sorts `tags`; an error names the rule that was broken.
    pub fn new(tags: Tags<'a>) -> Result<Self, DropReason> {
        if tags.len() > MAX_TAGS {
            return Err(DropReason::TooManyTags);
        }
        for &(k, v) in tags {
            check_tag(k, v)?;
        }
        if tags.windows(2).all(|w| w[0].0 < w[1].0) {
            return Ok(SortedTags {
                repr: Repr::Borrowed(tags),
            });
        }
        if tags.len() <= 4 {
            let mut copy = [("", ""); 4];
            copy[..tags.len()].copy_from_slice(tags);
            let sorted = &mut copy[..tags.len()];
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(DropReason::DuplicateTag);
            }
            return Ok(SortedTags {
                repr: Repr::Small {
                    len: tags.len(),
                    tags: copy,
                },
            });
        }
        let mut copy = [("", ""); MAX_TAGS];
        copy[..tags.len()].copy_from_slice(tags);
        let sorted = &mut copy[..tags.len()];
        // In place: sort_unstable never allocates.
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(DropReason::DuplicateTag);
        }
        Ok(SortedTags {
            repr: Repr::Sorted {
                len: tags.len(),
                tags: copy,
            },
        })
    }

    /// Sorts tags already checked (a [`Key`](crate::Key)'s).
    pub(crate) fn checked(tags: Tags<'a>) -> Self {
        SortedTags::new(tags).unwrap_or(SortedTags {
            repr: Repr::Borrowed(&[]),
        })
    }

    /// The tags, sorted by key.
    pub fn as_slice(&self) -> &[(&'a str, &'a str)] {
        match &self.repr {
            Repr::Borrowed(t) => t,
            Repr::Small { len, tags } => &tags[..*len],
            Repr::Sorted { len, tags } => &tags[..*len],
        }
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let s = self.as_slice();
        s.binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| s[i].1)
    }

    /// Owned copies of the tags, sorted by key.
    pub fn to_owned_pairs(&self) -> Vec<(String, String)> {
        self.as_slice()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

impl PartialEq for SortedTags<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SortedTags<'_> {}

impl std::hash::Hash for SortedTags<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for SortedTags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.as_slice().iter().copied())
            .finish()
    }
}

/// Whether the series tags `series` contain every pair of `filter`
/// (tag containment, as the reference services' queries use).
pub fn tags_contain<'a>(
    series: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    filter: Tags<'_>,
) -> bool {
    filter.iter().all(|(fk, fv)| {
        series
            .clone()
            .into_iter()
            .any(|(k, v)| k == *fk && v == *fv)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test per row of the table above that this module decides.

    #[test]
    fn nan_and_infinite_values_are_invalid() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(check_value(v), Err(DropReason::InvalidValue));
            assert_eq!(check_counter_value(v), Err(DropReason::InvalidValue));
        }
        assert_eq!(check_value(-3.5), Ok(()));
        assert_eq!(check_value(f64::MAX), Ok(()));
    }

    #[test]
    fn negative_counter_values_are_rejected() {
        assert_eq!(check_counter_value(-1.0), Err(DropReason::NegativeCounter));
        assert_eq!(
            check_counter_value(-f64::MIN_POSITIVE),
            Err(DropReason::NegativeCounter)
        );
        assert_eq!(check_counter_value(0.0), Ok(()));
        assert_eq!(check_counter_value(-0.0), Ok(()));
        // Gauges may go negative.
        assert_eq!(check_value(-2.0), Ok(()));
    }

    #[test]
    fn names_empty_too_long_or_with_control_characters_are_invalid() {
        assert_eq!(check_name(""), Err(DropReason::InvalidName));
        assert_eq!(
            check_name(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(DropReason::InvalidName)
        );
        assert_eq!(check_name(&"a".repeat(MAX_NAME_LEN)), Ok(()));
        for bad in [
            "a\nb",
            "a\rb",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert_eq!(check_name(bad), Err(DropReason::InvalidName), "{bad:?}");
        }
        for good in [
            "http.requests",
            "a-b_c",
            "größe",
            "with space",
            "a:b|c@d#e,f",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn tags_with_reserved_characters_are_accepted_for_exporters_to_escape() {
        let tags = [
            ("path", "a\"b\\c\nd"),
            ("emoji", "héllo ✓"),
            ("wire", "a:b|c@d#e,f"),
        ];
        let sorted = SortedTags::new(&tags).unwrap();
        assert_eq!(sorted.get("path"), Some("a\"b\\c\nd"));
        assert_eq!(sorted.get("missing"), None);
    }

    #[test]
    fn bad_tag_keys_and_values_are_invalid() {
        assert_eq!(
            SortedTags::new(&[("", "v")]).unwrap_err(),
            DropReason::InvalidTag
        );
        assert_eq!(
            SortedTags::new(&[("a\nb", "v")]).unwrap_err(),
            DropReason::InvalidTag
        );
        let long_key = "k".repeat(MAX_TAG_KEY_LEN + 1);
        assert_eq!(
            SortedTags::new(&[(&long_key, "v")]).unwrap_err(),
            DropReason::InvalidTag
        );
        let long_value = "v".repeat(MAX_TAG_VALUE_LEN + 1);
        assert_eq!(
            SortedTags::new(&[("k", &long_value)]).unwrap_err(),
            DropReason::InvalidTag
        );
        assert!(SortedTags::new(&[("k", "")]).is_ok());
    }

    #[test]
    fn too_many_or_duplicate_tags_are_rejected() {
        let keys: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i:02}")).collect();
        let tags: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
        assert_eq!(SortedTags::new(&tags).unwrap_err(), DropReason::TooManyTags);
        assert_eq!(SortedTags::new(&tags[..MAX_TAGS]).unwrap().len(), MAX_TAGS);
        assert_eq!(
            SortedTags::new(&[("a", "1"), ("b", "2"), ("a", "3")]).unwrap_err(),
            DropReason::DuplicateTag
        );
    }

    #[test]
    fn tag_order_does_not_matter() {
        let a = SortedTags::new(&[("z", "1"), ("a", "2"), ("m", "3")]).unwrap();
        let b = SortedTags::new(&[("m", "3"), ("z", "1"), ("a", "2")]).unwrap();
        assert_eq!(a, b);
        use std::hash::BuildHasher;
        let s = std::collections::hash_map::RandomState::new();
        assert_eq!(s.hash_one(a), s.hash_one(b));
        assert_eq!(a.as_slice()[0], ("a", "2"));
    }

    #[test]
    fn containment_matches_subsets_only() {
        let series = [("a", "1"), ("b", "2")];
        assert!(tags_contain(series.iter().copied(), &[]));
        assert!(tags_contain(series.iter().copied(), &[("b", "2")]));
        assert!(!tags_contain(series.iter().copied(), &[("b", "3")]));
        assert!(!tags_contain(series.iter().copied(), &[("c", "1")]));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_input_is_either_accepted_or_rejected_without_panic(
                name in ".{0,300}", key in ".{0,140}", value in ".{0,40}", v in any::<f64>()
            ) {
                let tags = [(key.as_str(), value.as_str())];
                if let Ok(k) = crate::Key::new(&name, &tags) {
                    prop_assert!(crate::backend::Measurement::new(&k, crate::backend::Value::Histogram(v)).is_ok() == v.is_finite());
                }
                if let Ok(()) = check_name(&name) {
                    prop_assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
                    prop_assert!(!name.chars().any(char::is_control));
                }
            }

            #[test]
            fn sorting_is_a_permutation_independent_of_input_order(
                mut pairs in proptest::collection::btree_map("[a-z]{1,6}", "[ -~]{0,6}", 0..MAX_TAGS)
                    .prop_map(|m| m.into_iter().collect::<Vec<_>>())
            ) {
                let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let a = SortedTags::new(&borrowed).unwrap().to_owned_pairs();
                pairs.reverse();
                let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let b = SortedTags::new(&borrowed).unwrap().to_owned_pairs();
                prop_assert_eq!(&a, &b);
                prop_assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
    }
}
