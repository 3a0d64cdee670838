//! libFuzzer entry for `fuzz_targets::sketch_bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::sketch_bytes(data));
