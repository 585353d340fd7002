//! Contactless cards: the PN532 reader chip ([`pn532`]), BER-TLV ([`tlv`]),
//! and the EMV contactless read that turns a tap into a card ([`emv`]).

pub mod emv;
pub mod pn532;
/// BER-TLV, as chip cards speak it (in the core: the hub reads chip data too).
pub use tallybox_core::card::tlv;

use embedded_hal::i2c::I2c;

use emv::{CardLink, TapError};
use pn532::{Pn532, Pn532Error};

use crate::devices::SharedHealth;
use tallybox_core::card::{CardError, CardRead};
use tallybox_core::money::Amount;

/// Reads the card the PN532 has just found, for a transaction of `amount`:
/// the EMV read, the card released, the tap counted. A tap that cannot be
/// read is a read error for the checkout ("tap again").
pub fn read_tap<I2C: I2c>(
    reader: &mut Pn532<I2C>,
    amount: Amount,
    health: &SharedHealth,
) -> Result<CardRead, CardError> {
    let result = emv::read(reader, &emv::Terminal::for_amount(amount));
    reader.release();
    health.tapped(result.is_ok());
    result.map(|t| t.card).map_err(|e| match e {
        TapError::Card(e) => e,
        other => {
            tracing::info!(error = %other, "tap not read");
            CardError::BadTrack2("tap not read")
        }
    })
}

impl<I2C: I2c> CardLink for Pn532<I2C> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TapError> {
        Pn532::exchange(self, apdu).map_err(|e| match e {
            Pn532Error::CardGone => TapError::CardGone,
            other => TapError::Reader(other.to_string()),
        })
    }
}
