//! libFuzzer's entry for `bodies/config.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/config.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
