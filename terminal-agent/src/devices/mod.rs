//! The checkout's devices, behind small traits so the session's runtime does
//! not care whether it drives real parts or simulated ones. Input devices
//! (keypad, card reader) feed a channel of [`crate::session::Input`]; output
//! devices implement [`Display`] and [`Printer`].
//!
//! The backend is chosen in one place, [`Backend`]: `hw` drives the Pi's real
//! parts ([`hw`], wired as [`config`] says); `sim` runs the same drivers
//! against byte-level chip models ([`model`], [`sim`]) for the demo, tests and
//! development on a laptop.

pub mod config;
pub mod contactless;
pub mod health;
pub mod hw;
pub mod keypad;
pub mod magstripe;
pub mod model;
pub mod oled;
pub mod printer;
pub mod sim;

use crate::session::Screen;

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

pub trait Display: Send {
    fn show(&mut self, screen: &Screen);
}

impl<T: Display + ?Sized> Display for Box<T> {
    fn show(&mut self, screen: &Screen) {
        (**self).show(screen)
    }
}

pub use health::SharedHealth;
pub use printer::{Printer, PrinterProblem};
