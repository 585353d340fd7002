//! Magnetic stripe readers: the ABA track 2 decoder ([`aba`]), the F2F bit
//! recovery for readers wired straight to a GPIO ([`f2f`]), the GPIO line
//! decoder with its stuck-card check ([`swipe`]), and keyboard-style USB
//! readers ([`hid`]). Every path ends in [`read_card`].

pub mod aba;
pub mod f2f;
pub mod hid;
pub mod swipe;

use tallybox_core::card::{CardError, CardRead, EntryMode, Track2};

/// A decoded track, or why there is no card read.
pub fn read_card(track: Result<String, aba::SwipeError>) -> Result<CardRead, CardError> {
    let track = track.map_err(|_| CardError::BadTrack2("swipe not read"))?;
    Track2::parse(&track).map(|t| CardRead::from_track2(&t, EntryMode::Swipe))
}

#[cfg(test)]
mod tests;
