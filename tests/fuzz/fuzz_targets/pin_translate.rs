//! libFuzzer's entry for `bodies/pin_translate.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/pin_translate.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
