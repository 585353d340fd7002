//! `tallybox-terminal`: one checkout point — the checkout session, its
//! screens, the device drivers and the runtime that joins them to the hub.
//! It stays light (no database, no web server). The hub links this crate too
//! and runs the same checkout for its own keypad, reader, OLED and printer.
//! What a checkout shares with the hub (money, cards, the protocol, slips,
//! sealing) is in `tallybox-core`; what it does with the machine (files,
//! clock, updates, MQTT) in `tallybox-platform`.
//!
//! # Layout
//!
//! - [`session`]: the checkout state machine, sans-IO, and its OLED screens
//!   (English and Chinese); voids, refunds and freezing in `session/admin.rs`.
//! - [`devices`]: the drivers — OLED ([`devices::oled`]), keypad, magstripe and
//!   contactless readers, ESC/POS printer with its spool — the Pi backend
//!   byte-level chip models ([`devices::model`]) and the simulated checkout
//!   built on them. No driver imports the session or the runtime.
//! - [`hw`]: the Pi backend — the drivers on the Pi's buses, joined to the
//!   runtime — wired as [`config`] (the checkout's settings file) says;
//!   [`gpio`]: GPIO lines through the kernel's character device.
//! - [`hwtest`]: `hw-test`, the walk-through for the person wiring a checkout.
//! - [`checkout`]: the checkout core, sans-IO: the session joined to the
//!   sealed link to the hub ([`checkout::link`]: sealing, opening and the
//!   replay guard, pairing, re-sends, the hub-silent timer, stopping when
//!   idle), fed events with the time and handing out what to do.
//! - [`agent`]: the runtime around the core: broker, files, devices, timers.
//! - [`journal`]: the one sale in flight, kept across a restart.
//! - [`printed`]: the approvals this checkout printed, for the hub to bring
//!   back any its records lose.
//! - [`print`](mod@print): the print queue on disk and the spool thread that empties it.
//! - [`control`]: the simulated checkout's JSON-lines control API.
//! - [`self_update`]: taking an update the hub offers.
//!
//! # The path of a sale
//!
//! Keys `A1250#` (the keypad driver's scan) reach [`session::Session`] → it
//! shows "Swipe or tap card" on the OLED → a card read by the swipe decoder or
//! the PN532/EMV reader (`tallybox_core::card::CardRead`, Luhn and expiry
//! checked here) → PIN if the service code asks (`tallybox_core::card::pin_block`)
//! → a `Request::Sale` with a fresh `RequestId`, journaled by [`journal`] and
//! published by [`agent`] on `term/{tid}/req` until the hub's
//! `Response::Outcome` arrives on `term/{tid}/resp` → screen "APPROVED", two
//! slips from `tallybox_core::slip` into the print spool, which keeps each
//! until the printer confirms it.

pub mod agent;
pub mod checkout;
pub mod config;
pub mod control;
pub mod devices;
pub mod gpio;
pub mod hw;
pub mod hwtest;
pub mod journal;
pub mod print;
pub mod printed;
pub mod self_update;
pub mod session;
