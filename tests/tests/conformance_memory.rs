//! The conformance suite against the in-memory backend: on a manual clock,
//! idle series expiring after an hour, queries asked of the backend itself.

metrics_conformance::conformance_suite!(metrics_tests::MemoryHarness::new());
