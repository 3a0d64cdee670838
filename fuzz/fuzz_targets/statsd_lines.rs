//! libFuzzer entry for `fuzz_targets::statsd_lines`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::statsd_lines(data));
