//! libFuzzer's entry for `bodies/swipe.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/swipe.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
