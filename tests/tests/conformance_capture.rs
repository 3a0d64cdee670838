//! The conformance suite against the reference: the protocol's recording
//! double, `metrics_protocol::testing::Capture`.

metrics_conformance::conformance_suite!(metrics_conformance::CaptureHarness::new());
