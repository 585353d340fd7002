//! The checkout's devices, behind small traits so the session's runtime does
//! not care whether it drives real parts or simulated ones. Input devices
//! (keypad, card reader) feed a channel of [`crate::session::Input`]; output
//! devices implement [`Display`] and [`Printer`].
//!
//! The backend is chosen in one place, [`Backend`]: `sim` for the demo, tests
//! and development on a laptop. Drivers for the Pi's real parts come next.

pub mod contactless;
pub mod health;
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
    /// Simulated keypad, card reader, OLED and printer, driven over `--control`.
    Sim,
    /// No devices: the hub only coordinates (no own checkout).
    None,
}

pub trait Display: Send {
    fn show(&mut self, screen: &Screen);
}

pub use health::SharedHealth;
pub use printer::{Printer, PrinterProblem};
