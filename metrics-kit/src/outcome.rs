//! [`with_outcome_counter`]: an outcome as the counter a wire format
//! carries, built on the stack.

use metrics_protocol::Tags;
use metrics_protocol::backend::outcome::{ERROR_TYPE_TAG, FAILURE_SUFFIX, SUCCESS_SUFFIX};
use metrics_protocol::backend::validate::{MAX_NAME_LEN, MAX_TAGS};

/// Longest name built on the stack: an operation name at the limit plus the
/// longer suffix.
const NAME_BUF: usize = MAX_NAME_LEN + 8;

/// Calls `f` with the counter an outcome of `operation` is exported as:
/// `<operation>.success`, or `<operation>.failure` with the tag
/// `error_type` (replacing one the caller gave). The name and tags are
/// built on the stack, so a backend that counts outcomes as counters
/// allocates nothing; a name or tag list over the limits is still passed
/// on whole (from the heap), for the backend to drop and count.
///
/// ```
/// use metrics_kit::with_outcome_counter;
/// with_outcome_counter("push", Some("auth"), &[("remote", "origin")], |name, tags| {
///     assert_eq!(name, "push.failure");
///     assert_eq!(tags, [("remote", "origin"), ("error_type", "auth")]);
/// });
/// ```
pub fn with_outcome_counter<R>(
    operation: &str,
    failure: Option<&str>,
    tags: Tags<'_>,
    f: impl FnOnce(&str, Tags<'_>) -> R,
) -> R {
    let suffix = if failure.is_some() {
        FAILURE_SUFFIX
    } else {
        SUCCESS_SUFFIX
    };
    let mut buf = [0u8; NAME_BUF];
    let heap;
    let len = operation.len() + suffix.len();
    let name: &str = if len <= NAME_BUF {
        buf[..operation.len()].copy_from_slice(operation.as_bytes());
        buf[operation.len()..len].copy_from_slice(suffix.as_bytes());
        // Two whole UTF-8 strings, joined: still UTF-8.
        match std::str::from_utf8(&buf[..len]) {
            Ok(s) => s,
            Err(_) => {
                heap = format!("{operation}{suffix}");
                &heap
            }
        }
    } else {
        heap = format!("{operation}{suffix}");
        &heap
    };
    let Some(error_type) = failure else {
        return f(name, tags);
    };
    let mut stack: [(&str, &str); MAX_TAGS + 2] = [("", ""); MAX_TAGS + 2];
    let mut n = 0;
    let mut overflow: Vec<(&str, &str)> = Vec::new();
    for &(k, v) in tags.iter().filter(|(k, _)| *k != ERROR_TYPE_TAG) {
        if n < MAX_TAGS + 1 {
            stack[n] = (k, v);
            n += 1;
        } else {
            overflow.push((k, v));
        }
    }
    if overflow.is_empty() {
        stack[n] = (ERROR_TYPE_TAG, error_type);
        f(name, &stack[..=n])
    } else {
        let mut all = stack[..n].to_vec();
        all.extend(overflow);
        all.push((ERROR_TYPE_TAG, error_type));
        f(name, &all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(t: Tags<'_>) -> Vec<(String, String)> {
        t.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        owned(p)
    }

    #[test]
    fn success_keeps_tags_and_failure_replaces_error_type() {
        let (name, tags) =
            with_outcome_counter("op", None, &[("a", "1")], |n, t| (n.to_owned(), owned(t)));
        assert_eq!((name.as_str(), tags), ("op.success", pairs(&[("a", "1")])));
        let (name, tags) = with_outcome_counter(
            "op",
            Some("timeout"),
            &[("error_type", "spoofed"), ("a", "1")],
            |n, t| (n.to_owned(), owned(t)),
        );
        assert_eq!(name, "op.failure");
        assert_eq!(tags, pairs(&[("a", "1"), ("error_type", "timeout")]));
    }

    #[test]
    fn oversized_names_and_tag_lists_pass_through_whole() {
        let long = "x".repeat(MAX_NAME_LEN + 50);
        let many: Vec<(String, String)> = (0..MAX_TAGS + 5)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (name_len, n) =
            with_outcome_counter(&long, Some("e"), &many, |n, t| (n.len(), t.len()));
        assert_eq!(name_len, long.len() + FAILURE_SUFFIX.len());
        assert_eq!(n, MAX_TAGS + 6);
    }
}
