//! libFuzzer's entry for `bodies/query.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/query.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
