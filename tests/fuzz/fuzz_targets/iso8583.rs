//! libFuzzer's entry for `bodies/iso8583.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/iso8583.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
