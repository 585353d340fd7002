//! libFuzzer's entry for `bodies/tlv.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/tlv.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
