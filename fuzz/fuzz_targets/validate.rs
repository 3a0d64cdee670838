//! libFuzzer entry for `fuzz_targets::validate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::validate(data));
