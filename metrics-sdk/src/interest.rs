//! [`Interest`]: the one-word pre-filter of the taps.

use std::sync::atomic::{AtomicU64, Ordering};

/// A conservative, lock-free pre-filter of the taps: which first bytes of a
/// metric name some stream or aggregation may want (a one-hash Bloom
/// filter). The tap's observer reads one atomic word and, for most names no
/// one wants, goes no further. Rebuilt whenever a subscriber or an
/// aggregation comes or goes.
#[derive(Debug, Default)]
pub(crate) struct Interest(AtomicU64);

impl Interest {
    fn bit(first: u8) -> u64 {
        1u64 << (first % 64)
    }

    /// Whether some tap may want `name` (false positives, never false negatives).
    #[inline]
    pub fn may_want(&self, name: &str) -> bool {
        let mask = self.0.load(Ordering::Acquire);
        mask != 0
            && name
                .as_bytes()
                .first()
                .is_some_and(|b| mask & Self::bit(*b) != 0)
    }

    /// Rebuilds the filter from each tap's name prefix (`None` or empty: it
    /// wants every name).
    pub fn rebuild<'p>(&self, prefixes: impl IntoIterator<Item = Option<&'p str>>) {
        let mask =
            prefixes
                .into_iter()
                .fold(0u64, |m, p| match p.and_then(|p| p.as_bytes().first()) {
                    Some(b) => m | Self::bit(*b),
                    None => u64::MAX,
                });
        self.0.store(mask, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_wanted_until_a_prefix_comes_and_an_empty_one_wants_all() {
        let i = Interest::default();
        assert!(!i.may_want("http.requests"));
        i.rebuild([Some("http.")]);
        assert!(i.may_want("http.requests"));
        assert!(!i.may_want("db.query"));
        assert!(!i.may_want(""));
        i.rebuild([Some("db"), None]);
        assert!(i.may_want("zzz"));
        i.rebuild([]);
        assert!(!i.may_want("db.query"));
    }
}
