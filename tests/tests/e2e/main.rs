//! The end-to-end tests: real hub, checkout, broker and browser processes on
//! loopback, one module per area, linked into one test binary (ripgrep's
//! `tests/tests.rs` shape) so that a change relinks one program, not
//! twenty-five. Each module's own `//!` says what it covers.
//!
//! `cargo test -p tallybox-e2e --test e2e sale::` runs one module. The crash
//! harness (`crash.rs`), the soak (`soak.rs`) and the SD image's boot test
//! (`image.rs`) stay test programs of their own: the first two load the
//! machine and measure it, which tests running beside them would disturb.

mod acquirer;
mod audit;
mod bad_input;
mod broker_access;
mod card_settings;
mod cash;
mod cashiers;
mod chain;
mod checkouts;
mod codes;
mod commands;
mod currency;
mod discovery;
mod doctor;
mod exactly_once;
mod fraud;
mod hardware;
mod lan_attacks;
mod openapi;
mod package;
mod pairing;
mod records;
mod sale;
mod structure;
mod troubleshooting;
mod update;
mod web_api;
mod web_attacks;
mod web_page;
