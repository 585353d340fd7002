//! libFuzzer's entry for `bodies/protocol_json.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/protocol_json.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
