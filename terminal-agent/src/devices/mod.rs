//! The checkout's devices, behind small traits so the session's runtime does
//! not care whether it drives real parts or simulated ones. Input devices
//! (keypad, card reader) yield keys and card reads that the runtime hands
//! to the session; output devices implement [`Display`] and [`Printer`]. No
//! driver knows the session or the runtime.
//!
//! The backend is chosen in one place, [`Backend`]: `hw` drives the Pi's real
//! parts (the crate's `hw` module, wired as its `config` says); `sim` runs the same
//! drivers against byte-level chip models ([`model`], [`sim`]) for the demo,
//! tests and development on a laptop.

pub mod contactless;
pub mod display;
pub mod health;
pub mod keypad;
pub mod magstripe;
pub mod model;
pub mod oled;
pub mod printer;
pub mod scanner;
pub mod sim;

/// Which devices a checkout drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The Pi's keypad, card readers, OLED and printer.
    Hw,
    /// Simulated keypad, card reader, OLED and printer, driven over `--control`.
    Sim,
    /// No devices: the hub only coordinates (no own checkout).
    None,
}

pub use display::{Display, Screen, StatusBar};
pub use health::SharedHealth;
pub use printer::{Printer, PrinterProblem};
