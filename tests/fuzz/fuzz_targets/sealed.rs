//! libFuzzer's entry for `bodies/sealed.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/sealed.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
