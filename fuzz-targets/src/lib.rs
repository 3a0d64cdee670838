//! The bodies of the fuzz targets, one function per target taking the raw
//! input bytes. The cargo-fuzz binaries under `fuzz/` call them with
//! libFuzzer's inputs; `tests/corpus.rs` calls them with every committed
//! corpus file and every input that ever crashed, so a plain `cargo test`
//! guards them all where cargo-fuzz is absent.
//!
//! A target panics (an `assert!` or a panic from the code under test) when
//! an invariant breaks; any other outcome, error results included, is a
//! pass. Structured inputs are shaped with `arbitrary`.

use arbitrary::Unstructured;

mod agent;
mod exporters;
mod http;
mod kit;
mod statsd;
mod store;

pub use agent::{config, endpoint};
pub use exporters::{export_csv, export_json, export_openmetrics, export_prometheus};
pub use http::http_query;
pub use kit::{samples, tag_order, validate};
pub use statsd::statsd_lines;
pub use store::{sketch_bytes, store_filter};

/// A target body: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as the `fuzz/` binaries and corpus folders are
/// named.
pub const TARGETS: [(&str, Target); 13] = [
    ("samples", samples),
    ("config", config),
    ("endpoint", endpoint),
    ("validate", validate),
    ("export_prometheus", export_prometheus),
    ("export_openmetrics", export_openmetrics),
    ("export_csv", export_csv),
    ("export_json", export_json),
    ("statsd_lines", statsd_lines),
    ("http_query", http_query),
    ("tag_order", tag_order),
    ("store_filter", store_filter),
    ("sketch_bytes", sketch_bytes),
];

/// Runs the target called `name` on `data`; `false` if there is none.
pub fn run(name: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => {
            f(data);
            true
        }
        None => false,
    }
}

/// `T` built from `data`, or `None` when the bytes do not make one.
pub(crate) fn shape<'a, T: arbitrary::Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}
