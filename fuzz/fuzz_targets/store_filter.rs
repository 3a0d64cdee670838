//! libFuzzer entry for `fuzz_targets::store_filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::store_filter(data));
