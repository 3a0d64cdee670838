//! Every public check of every module is in the one list the macro and
//! `checks()` are made from, once.

use std::collections::BTreeSet;

const MODULES: &[(&str, &str)] = &[
    ("counter", include_str!("../src/counter.rs")),
    ("gauge", include_str!("../src/gauge.rs")),
    ("histogram", include_str!("../src/histogram.rs")),
    ("timer", include_str!("../src/timer.rs")),
    ("outcome", include_str!("../src/outcome.rs")),
    ("handles", include_str!("../src/handles.rs")),
    ("bad_input", include_str!("../src/bad_input.rs")),
    #[cfg(feature = "queries")]
    ("queries", include_str!("../src/queries.rs")),
];

/// `module::name` of every `pub fn name(h: &dyn Harness)` in the sources.
fn declared() -> BTreeSet<String> {
    MODULES
        .iter()
        .flat_map(|(module, source)| {
            source.lines().filter_map(move |line| {
                let rest = line.strip_prefix("pub fn ")?;
                let (name, args) = rest.split_once('(')?;
                args.starts_with("h: &dyn Harness)")
                    .then(|| format!("{module}::{name}"))
            })
        })
        .collect()
}

#[test]
fn every_check_is_listed_once() {
    let listed: Vec<String> = metrics_conformance::checks()
        .iter()
        .map(|c| format!("{}::{}", c.module, c.name))
        .collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "a check is listed twice");
    let declared = declared();
    assert!(declared.len() >= 20, "{declared:?}");
    assert_eq!(unique, declared);
}

#[test]
fn checks_come_in_module_order() {
    let modules: Vec<&str> = metrics_conformance::checks()
        .iter()
        .map(|c| c.module)
        .collect();
    let mut order: Vec<&str> = modules.clone();
    order.dedup();
    let expected: Vec<&str> = MODULES.iter().map(|(m, _)| *m).collect();
    assert_eq!(order, expected);
    assert_eq!(
        format!("{:?}", metrics_conformance::checks()[0]),
        "Check(counter::accumulates)"
    );
}
