//! A PIN block as a checkout sends it (any text), translated by the hub into
//! the acquirer's key: it never panics, and whatever it passes on opens under
//! the acquirer's key to a PIN of 4 to 12 digits.

use tallybox_core::card::pin_block;

const CHECKOUT: pin_block::PinKey = [0x21; 16];
const ACQUIRER: pin_block::PinKey = [0x5C; 16];

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (block, pan) = text.split_once('|').unwrap_or((text, "6222021000000054"));
    if let Ok(out) = pin_block::translate(block, pan, &CHECKOUT, &ACQUIRER) {
        let pin = pin_block::decrypt(&out, pan, &ACQUIRER).unwrap();
        assert!(pin.is_some_and(|p| (4..=12).contains(&p.len())));
    }
}
