//! `tallybox-terminal`: everything a Tallybox checkout point needs, and nothing
//! heavier (no database, no web server). The hub links this crate too and runs
//! the same checkout for its own keypad, reader, OLED and printer.
//!
//! # Layout
//!
//! - [`amount`]: money as integer minor units, parsed strictly.
//! - [`card`]: PAN (Luhn, masking, brand), expiry, track 2, PIN blocks, test cards.
//! - [`clock`]: the store's local time, in the time zone the owner chose.
//! - [`seal`]: pairing with the hub (SPAKE2) and sealed, replay-proof messages.
//! - [`protocol`]: MQTT topics and the versioned JSON messages (see `PROTOCOL.md`).
//! - [`session`]: the checkout state machine, sans-IO, and its OLED screens
//!   (English and Chinese); voids, refunds and freezing in `session/admin.rs`.
//! - [`slip`]: the receipt slip as text lines (58 or 80 mm, Chinese and English).
//! - [`reason`]: what the cashier is told for each decline, and what to do.
//! - [`devices`]: the drivers — OLED ([`devices::oled`]), keypad, magstripe and
//!   contactless readers, ESC/POS printer with its spool — the Pi backend
//!   ([`devices::hw`], wired by [`devices::config`]), the byte-level chip
//!   models ([`devices::model`]) and the simulated checkout built on them.
//! - [`hwtest`]: `hw-test`, the walk-through for the person wiring a checkout.
//! - [`agent`]: the runtime that joins session, devices and broker.
//! - [`journal`]: the one sale in flight, kept across a restart.
//! - [`machine`]: the Pi's temperature, power and Bluetooth, from sysfs.
//! - [`control`]: the simulated checkout's JSON-lines control API.
//! - [`mqtt`], [`discovery`]: reaching the broker, finding the hub by mDNS.
//! - [`cli`]: command-line errors and logging shared by both programs.
//!
//! # The path of a sale
//!
//! Keys `A1250#` (the keypad driver's scan) reach [`session::Session`] → it
//! shows "Swipe or tap card" on the OLED → a card read by the swipe decoder or
//! the PN532/EMV reader ([`card::CardRead`], Luhn and expiry checked here) → PIN if the
//! service code asks ([`card::pin_block`]) → a [`protocol::Request::Sale`] with a
//! fresh [`protocol::RequestId`], journaled by [`journal`] and published by
//! [`agent`] on `term/{tid}/req` until the hub's [`protocol::Response::Outcome`]
//! arrives on `term/{tid}/resp` → screen "APPROVED", two slips from [`slip`]
//! into the print spool, which keeps each until the printer confirms it.

pub mod agent;
pub mod amount;
pub mod card;
pub mod cli;
pub mod clock;
pub mod control;
pub mod devices;
pub mod discovery;
pub mod hwtest;
pub mod journal;
pub mod machine;
pub mod mqtt;
pub mod protocol;
pub mod reason;
pub mod seal;
pub mod self_update;
pub mod service;
pub mod session;
pub mod slip;
pub mod update;
