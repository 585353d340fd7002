//! libFuzzer's entry for `bodies/bundle.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/bundle.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
