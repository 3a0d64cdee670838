//! libFuzzer entry for `fuzz_targets::export_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::export_json(data));
