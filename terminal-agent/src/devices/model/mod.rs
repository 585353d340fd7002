//! Byte-level models of the checkout's chips, for tests and the simulated
//! checkout: each behaves like the part on its bus, so the real drivers run
//! against them unchanged.

pub mod emv_card;
pub mod escpos;
pub mod i2c;
pub mod keypad;
pub mod magstripe;
pub mod pn532;
pub mod pty;
pub mod ssd1306;
