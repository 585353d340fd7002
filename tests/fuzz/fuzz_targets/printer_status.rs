//! libFuzzer's entry for `bodies/printer_status.rs`, which says what it checks.
#![no_main]

#[path = "../bodies/printer_status.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
