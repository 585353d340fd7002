//! Contactless cards: the PN532 reader chip ([`pn532`]), BER-TLV ([`tlv`]),
//! and the EMV contactless read that turns a tap into a card ([`emv`]).

pub mod emv;
pub mod pn532;
pub mod tlv;

use embedded_hal::i2c::I2c;

use emv::{CardLink, TapError};
use pn532::{Pn532, Pn532Error};

impl<I2C: I2c> CardLink for Pn532<I2C> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TapError> {
        Pn532::exchange(self, apdu).map_err(|e| match e {
            Pn532Error::CardGone => TapError::CardGone,
            other => TapError::Reader(other.to_string()),
        })
    }
}
