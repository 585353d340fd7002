//! `tallybox-core`: what every Tallybox program shares, as plain values and
//! pure functions. No tokio, no files, no sockets, no database and no clock
//! of its own: time comes in as an argument. The hub, the checkout and
//! anyone writing a tool against the protocol link this crate.
//!
//! # Layout
//!
//! - [`code`]: [`code::ResponseCode`], how a transaction ended, in two characters.
//! - [`money`]: [`money::Amount`] as integer minor units and the
//!   [`money::Currency`] that says how many of them make a unit.
//! - [`card`]: PAN (Luhn, masking, brand), expiry, track 2, ISO 9564 PIN
//!   blocks, the simulated acquirer's test cards.
//! - [`secret`]: [`secret::Secret`] and [`secret::Pin`], values whose `Debug`
//!   prints nothing and whose memory is wiped when dropped.
//! - [`protocol`]: the wire protocol (`PROTOCOL.md` beside this crate): ids,
//!   topics, requests, responses, device health and the byte codec.
//! - [`seal`]: pairing (SPAKE2) and the sealed-message format with its
//!   replay guard.
//! - [`reason`]: what a cashier is told for each response or reason code.
//! - [`slip`]: the receipt slip as text lines.
//!
//! # The path of a sale, as values
//!
//! An [`money::Amount`] and a [`card::CardRead`] become a
//! [`protocol::Request::Sale`], [`protocol::encode`]d and [`seal::seal`]ed by
//! the checkout; the hub [`seal::open`]s it, [`protocol::decode_request`]s
//! it and answers with a [`protocol::Outcome`] whose [`protocol::Receipt`]
//! becomes a [`slip::Slip`] at the checkout.

#![forbid(unsafe_code)]

pub mod card;
pub mod code;
pub mod money;
pub mod protocol;
pub mod reason;
pub mod seal;
pub mod secret;
pub mod slip;
