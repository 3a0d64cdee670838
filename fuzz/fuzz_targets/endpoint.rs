//! libFuzzer entry for `fuzz_targets::endpoint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::endpoint(data));
