//! `tallybox`: the payment hub of a small shop, running on a Raspberry Pi.
//!
//! # Layout
//!
//! - [`hub`]: assembles a running hub — [`hub::App::open`] (store, coordinator,
//!   keys, broker, the page's state), [`hub::App::serve`] (everything that
//!   runs, on one task tracker, stopped by one cancellation token); `serve`
//!   and `demo` start it.
//! - [`jobs`]: the background jobs: reversal sweep, daily settlement, replay
//!   marks, update offers, an update's trial.
//! - [`link`]: the hub's MQTT side: requests in, answers out.
//! - [`coordinator`]: **where a sale gets authorized**: exactly-once by request
//!   id, pending before authorize, reversal when the acquirer is silent; the
//!   pure admission rules ([`coordinator::admission`]), the fraud rules
//!   ([`coordinator::fraud`]), voids and refunds (`undo.rs`) and settlement
//!   ([`coordinator::settle`]).
//! - [`acquirer`]: the acquirer trait, the simulated acquirer / issuer, and
//!   the ISO 8583 link ([`acquirer::iso8583`]: codec, MAC, client, and the host
//!   that `tallybox acquirer-sim` runs).
//! - [`store`]: SQLite (WAL, `synchronous=FULL`), migrations, the hash-chained
//!   audit log, receipt search, and the store thread that group-commits
//!   concurrent writes ([`store::writer`]) and tells what each commit changed
//!   ([`store::Change`]); the history's witness ([`store::witness`]),
//!   proven backups ([`store::backups`]), restore ([`store::restore`]) and
//!   the data directory's lock ([`store::lock`]).
//! - [`broker`]: the embedded MQTT broker, on loopback, behind its gate (the
//!   port the LAN reaches).
//! - [`guard`]: the bounds on what a LAN client can make the hub do, shared by
//!   the gate, the link and the page: rates, counted log lines, connection
//!   caps per address.
//! - [`web`]: the owner's page and the JSON API (`web/openapi.yaml`): sign-in,
//!   sessions and CSRF ([`web::auth`]), receipts, reports and the live feed,
//!   terminals, freezes, settings, backups; its connections are served by
//!   [`web::serve`] (capped per address, a header due within 10 s).
//! - [`shop`]: the shop's name, address, slip lines and supervisor PIN, shared
//!   by the coordinator and the page (the owner edits them while it runs).
//! - [`notices`]: what the hub's own checkout screen tells the owner (the
//!   setup code, fraud alerts).
//! - [`evidence`]: the evidence pack after a fraud.
//! - [`doctor`]: the troubleshooting checks (`tallybox doctor`, the page's
//!   Troubleshooting view); [`support`]: the support bundle.
//! - [`discovery`]: mDNS announcement.
//! - [`config`]: the settings file and its checks.
//! - [`install`]: installing an update bundle, database backed up first.
//! - [`recovery`]: the one page a hub with a damaged database serves: the
//!   damaged files kept, the newest whole backup put back at a button.
//!
//! The subcommands (`cmd/`, one file each) are the binary's, not this library's.
//!
//! What the hub shares with every checkout — money, cards, codes, slips, the
//! wire protocol, sealing — is `tallybox-core`; files, clock, updates and MQTT
//! are `tallybox-platform`. The checkout itself — session, screens, drivers —
//! is the `tallybox-terminal` crate, which only `hub.rs` runs in-process, for
//! the Pi's own keypad, reader, OLED and printer.
//!
//! # The path of a sale
//!
//! A terminal publishes a `sale` on `tallybox/v1/{store}/term/{tid}/req` →
//! [`link`] decodes it and spawns a task → [`coordinator::Coordinator::handle`]
//! looks the request id up (a repeat gets the stored answer), writes the
//! transaction `pending` ([`store::Store::begin`] on the store thread; durable
//! before the call returns, sharing its fsync with concurrent sales), asks the
//! [`acquirer::Acquirer`] within the time-out, stores the verdict
//! ([`store::Store::finish`], with its audit record in the same savepoint) → [`link`] publishes the outcome with the receipt on
//! `…/term/{tid}/resp` → the terminal prints the slips; the store writer's
//! [`store::Change::Txn`] reaches the owner's page through `/api/v1/events`,
//! which shows the row at once.

pub mod acquirer;
pub mod bills;
pub mod broker;
pub mod chain;
pub mod config;
pub mod coordinator;
pub mod discovery;
pub mod doctor;
pub mod evidence;
pub mod guard;
pub mod hub;
pub mod install;
pub mod jobs;
pub mod keys;
pub mod link;
pub mod notices;
pub mod offsite;
pub mod orders;
pub mod passwords;
pub mod payments;
pub mod recovery;
pub mod shop;
pub mod store;
pub mod support;
pub mod web;
