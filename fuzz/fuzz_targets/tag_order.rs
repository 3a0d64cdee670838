//! libFuzzer entry for `fuzz_targets::tag_order`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::tag_order(data));
