//! `tallybox-platform`: what the hub and the checkout both do with the
//! machine they run on. Each module is a thin, tested edge over one part of
//! the operating system.
//!
//! # Layout
//!
//! - [`fsync`]: `write_synced`, the one way a small file is written whole.
//! - [`sealed_files`]: the pairing key file and the sealed link's message
//!   counter, kept across restarts.
//! - [`clock`]: the store's local time, in the time zone the owner chose.
//! - [`machine`]: the Pi's temperature, power and Bluetooth, from sysfs;
//!   free disk space.
//! - [`update`]: signed update bundles, installing, the trial and its log.
//! - [`mqtt`], [`discovery`]: reaching the broker, finding the hub by mDNS.
//! - [`cli`]: command-line errors and logging shared by both programs.
//! - [`service`]: telling systemd how the program is doing.

pub mod cli;
pub mod clock;
pub mod discovery;
pub mod fsync;
pub mod machine;
pub mod mqtt;
pub mod sealed_files;
pub mod service;
pub mod update;
