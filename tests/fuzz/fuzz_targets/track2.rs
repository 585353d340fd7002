//! libFuzzer's entry for `bodies/track2.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/track2.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
