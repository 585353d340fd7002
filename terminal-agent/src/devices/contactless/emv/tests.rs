//! A tap read through the real PN532 driver and EMV flow, against the PN532
//! model holding model EMV cards.

use super::*;
use crate::devices::contactless::pn532::{self, Pn532, ADDRESS};
use crate::devices::model::emv_card::EmvCard;
use crate::devices::model::i2c::I2cBus;
use crate::devices::model::pn532::SharedPn532;
use tallybox_core::card::test_cards;

fn terminal(minor: u64) -> Terminal {
    Terminal {
        amount: Amount::from_minor(minor).unwrap(),
        currency_code: 156,
        country_code: 156,
        date: [0x26, 0x11, 0x25],
        unpredictable_number: [1, 2, 3, 4],
    }
}

fn reader() -> (Pn532<I2cBus>, SharedPn532) {
    let bus = I2cBus::default();
    let chip = SharedPn532::default();
    bus.attach(ADDRESS, Box::new(chip.clone()));
    let mut pn = Pn532::new(bus, ADDRESS);
    assert_eq!(pn.begin().unwrap(), (0x32, 0x01));
    (pn, chip)
}

#[test]
fn unionpay_and_visa_cards_read_to_the_same_card_as_their_stripe() {
    let (mut pn, chip) = reader();
    assert_eq!(pn.find_card().unwrap(), None, "empty field");
    for (name, app) in [("approved", "UnionPay Debit"), ("visa", "Visa")] {
        let card = test_cards::by_name(name).unwrap();
        chip.hold(Box::new(EmvCard::from_track2(&card.track2()).unwrap()));
        let target = pn.find_card().unwrap().unwrap();
        assert!(target.iso_dep);
        let tap = read(&mut pn, &terminal(1250)).unwrap();
        assert_eq!(tap.application, app);
        let mut tapped = tap.card.clone();
        let icc = tapped.icc_data.take().unwrap();
        assert_eq!(
            tapped,
            card.read(EntryMode::Tap),
            "the chip holds the same card as the stripe"
        );
        // Field 55 carries the cryptogram and the amount, never the card number.
        assert!(icc.contains("9F2608"), "{icc}");
        // An ARQC: the card asked its bank, even for a small amount it
        // could approve offline (the terminal requires an online cryptogram).
        assert!(icc.contains("9F270180"), "{icc}");
        assert!(icc.contains("9F0206000000001250"), "{icc}");
        assert!(!icc.contains(&card.pan[..12]), "{icc}");
        chip.take_away();
    }
}

#[test]
fn a_card_that_approves_by_itself_is_not_taken() {
    let (mut pn, chip) = reader();
    let card = test_cards::by_name("approved").unwrap();
    let mut emv = EmvCard::from_track2(&card.track2()).unwrap();
    emv.always_offline = true;
    chip.hold(Box::new(emv));
    pn.find_card().unwrap().unwrap();
    let e = read(&mut pn, &terminal(1250)).unwrap_err();
    assert_eq!(e, TapError::NotOnline(0x40));
    assert!(e.to_string().contains("did not ask its bank"), "{e}");
}

#[test]
fn a_damaged_record_is_a_read_error() {
    let (mut pn, chip) = reader();
    let card = test_cards::by_name("approved").unwrap();
    let mut emv = EmvCard::from_track2(&card.track2()).unwrap();
    emv.broken_record = true;
    chip.hold(Box::new(emv));
    pn.find_card().unwrap().unwrap();
    assert!(matches!(read(&mut pn, &terminal(100)), Err(TapError::Damaged(_))));
}

#[test]
fn a_card_pulled_away_mid_read_says_tap_again() {
    struct Gone;
    impl CardLink for Gone {
        fn exchange(&mut self, _: &[u8]) -> Result<Vec<u8>, TapError> {
            Err(TapError::CardGone)
        }
    }
    assert_eq!(read(&mut Gone, &terminal(100)), Err(TapError::CardGone));
    let (mut pn, chip) = reader();
    chip.hold(Box::new(
        EmvCard::from_track2(&test_cards::by_name("approved").unwrap().track2()).unwrap(),
    ));
    pn.find_card().unwrap().unwrap();
    chip.take_away();
    assert_eq!(read(&mut pn, &terminal(100)), Err(TapError::CardGone));
}

#[test]
fn a_card_without_an_accepted_application_is_refused() {
    struct Transit;
    impl CardLink for Transit {
        fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TapError> {
            let _ = apdu;
            let entry = tlv::encode(Tag(0x4F), &[0xA0, 0, 0, 0x06, 0x32, 0x01, 0x01]);
            let dir = tlv::encode(Tag(0xBF0C), &tlv::encode(Tag(0x61), &entry));
            let mut out = tlv::encode(Tag(0x6F), &tlv::encode(Tag(0xA5), &dir));
            out.extend([0x90, 0x00]);
            Ok(out)
        }
    }
    assert_eq!(read(&mut Transit, &terminal(100)), Err(TapError::NoApplication));
}

#[test]
fn frames_with_bad_checksums_are_caught() {
    let f = pn532::frame(0xD5, &[0x03, 0x32, 0x01]);
    assert!(pn532::unframe(&f).is_some());
    for i in 3..f.len() - 1 {
        let mut bad = f.clone();
        bad[i] ^= 0x01;
        assert!(pn532::unframe(&bad).is_none(), "byte {i}");
    }
}

#[test]
fn no_reader_on_the_bus_is_a_clear_error() {
    let mut pn = Pn532::new(I2cBus::default(), ADDRESS);
    let e = pn.begin().unwrap_err();
    assert!(e.to_string().contains("wiring"), "{e}");
}
