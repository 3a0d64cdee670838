//! The suite against the reference: the protocol's recording double,
//! through the harness the kit ships.

metrics_conformance::conformance_suite!(metrics_conformance::CaptureHarness::new());
