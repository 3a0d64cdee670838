//! libFuzzer entry for `fuzz_targets::export_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::export_csv(data));
