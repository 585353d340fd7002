//! ISO 9564 format 0 PIN blocks, encrypted with two-key triple DES.
//!
//! No PIN key is built in. A checkout encrypts the PIN under a key of its
//! own, derived from the key its pairing gave ([`checkout_key`]: never the
//! same for two checkouts, known only to it and the hub). The hub
//! [`translate`]s the block into the acquirer's PIN key in memory, and only
//! the acquirer's side can [`decrypt`] it. The clear PIN exists only inside
//! [`encrypt`] at the checkout and for a moment inside [`translate`].

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde2;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

/// A double-length triple-DES key (16 bytes).
pub type PinKey = [u8; 16];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("a PIN has 4 to 12 digits")]
    Length,
    #[error("a PIN has digits only")]
    NotDigits,
    #[error("the PIN block is not 16 hex digits")]
    BadBlock,
    #[error("the PIN block does not open under the checkout's key: not made by it, or not for this card")]
    Unreadable,
}

/// The PIN key of the checkout paired with `pairing_key`: HMAC-SHA256 of a
/// fixed label under the pairing key, its first 16 bytes.
pub fn checkout_key(pairing_key: &[u8; 32]) -> PinKey {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pairing_key).expect("HMAC takes any key length");
    mac.update(b"tallybox/v1 checkout PIN key");
    let mut full: [u8; 32] = mac.finalize().into_bytes().into();
    let mut key = [0u8; 16];
    key.copy_from_slice(&full[..16]);
    full.zeroize();
    key
}

/// A key from 32 hex digits.
pub fn parse_key(hex_key: &str) -> Result<PinKey, String> {
    let mut bytes = hex::decode(hex_key.trim()).map_err(|_| "a key is 32 hex digits".to_string())?;
    let key = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "a key is 32 hex digits (16 bytes)".to_string());
    bytes.zeroize();
    key
}

/// The key check value banks print beside a key: the first three bytes of
/// eight zero bytes encrypted under it, as hex. It tells two people they hold
/// the same key without showing it.
pub fn check_value(key: &PinKey) -> String {
    let mut block = [0u8; 8];
    TdesEde2::new(key.into()).encrypt_block((&mut block).into());
    hex::encode_upper(&block[..3])
}

fn pan_field(pan: &str) -> [u8; 8] {
    // Rightmost 12 digits excluding the check digit, left-padded with zeros.
    // As bytes: a card number is ASCII digits, and anything else must not
    // panic on a character boundary.
    let pan = pan.as_bytes();
    let body = &pan[..pan.len().saturating_sub(1)];
    let take = &body[body.len().saturating_sub(12)..];
    let mut nibbles = [0u8; 16];
    for (i, &b) in take.iter().enumerate() {
        nibbles[16 - take.len() + i] = b.wrapping_sub(b'0') & 0xF;
    }
    pack(&nibbles)
}

fn pack(nibbles: &[u8; 16]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for i in 0..8 {
        out[i] = (nibbles[2 * i] << 4) | nibbles[2 * i + 1];
    }
    out
}

/// Builds the format 0 block for `pin` and `pan` and encrypts it under `key`.
pub fn encrypt(pin: &str, pan: &str, key: &PinKey) -> Result<String, PinError> {
    if !(4..=12).contains(&pin.len()) {
        return Err(PinError::Length);
    }
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PinError::NotDigits);
    }
    let mut nibbles = [0xFu8; 16];
    nibbles[0] = 0;
    nibbles[1] = pin.len() as u8;
    for (i, b) in pin.bytes().enumerate() {
        nibbles[2 + i] = b - b'0';
    }
    let mut block = pack(&nibbles);
    nibbles.zeroize();
    for (b, p) in block.iter_mut().zip(pan_field(pan)) {
        *b ^= p;
    }
    TdesEde2::new(key.into()).encrypt_block((&mut block).into());
    Ok(hex::encode_upper(block))
}

/// The clear format 0 block inside `block_hex`, decrypted under `key`.
fn open(block_hex: &str, key: &PinKey) -> Result<[u8; 8], PinError> {
    let bytes = hex::decode(block_hex).map_err(|_| PinError::BadBlock)?;
    let mut block: [u8; 8] = bytes.try_into().map_err(|_| PinError::BadBlock)?;
    TdesEde2::new(key.into()).decrypt_block((&mut block).into());
    Ok(block)
}

/// The PIN in a clear format 0 block for `pan`, if the block is one.
fn pin_in(clear: &[u8; 8], pan: &str) -> Option<String> {
    let mut nibbles = [0u8; 16];
    for (i, (c, p)) in clear.iter().zip(pan_field(pan)).enumerate() {
        let b = c ^ p;
        nibbles[2 * i] = b >> 4;
        nibbles[2 * i + 1] = b & 0xF;
    }
    let len = usize::from(nibbles[1]);
    let pin = (nibbles[0] == 0 && (4..=12).contains(&len))
        .then(|| (&nibbles[2..2 + len], &nibbles[2 + len..]))
        .filter(|(digits, padding)| digits.iter().all(|&d| d <= 9) && padding.iter().all(|&d| d == 0xF))
        .map(|(digits, _)| digits.iter().map(|d| char::from(b'0' + d)).collect());
    nibbles.zeroize();
    pin
}

/// Recovers the PIN from an encrypted format 0 block: what an issuer (here,
/// the simulated one) does to verify it. `None` when the block does not
/// decode.
pub fn decrypt(block_hex: &str, pan: &str, key: &PinKey) -> Result<Option<String>, PinError> {
    let mut clear = open(block_hex, key)?;
    let pin = pin_in(&clear, pan);
    clear.zeroize();
    Ok(pin)
}

/// The same PIN block under another key: decrypted under `from` (the
/// checkout's), checked to be a format 0 block for `pan`, and encrypted under
/// `to` (the acquirer's), all in memory and wiped after. The hub's only use
/// of a PIN.
pub fn translate(block_hex: &str, pan: &str, from: &PinKey, to: &PinKey) -> Result<String, PinError> {
    let mut clear = open(block_hex, from)?;
    let readable = pin_in(&clear, pan).map(|mut pin| pin.zeroize()).is_some();
    if !readable {
        clear.zeroize();
        return Err(PinError::Unreadable);
    }
    TdesEde2::new(to.into()).encrypt_block((&mut clear).into());
    Ok(hex::encode_upper(clear))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PinKey = *b"0123456789abcdef";

    #[test]
    fn clear_block_matches_the_standard_example() {
        // ISO 9564-1 format 0: PIN 1234, PAN 4111111111111111.
        let pin = [0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let pan = pan_field("4111111111111111");
        assert_eq!(hex::encode_upper(pan), "0000111111111111");
        let clear: Vec<u8> = pin.iter().zip(pan).map(|(a, b)| a ^ b).collect();
        assert_eq!(hex::encode_upper(clear), "041225EEEEEEEEEE");
    }

    #[test]
    fn round_trips_and_hides_the_pin() {
        let block = encrypt("1234", "6222021000000062", &KEY).unwrap();
        assert_eq!(block.len(), 16);
        assert!(!block.contains("1234"));
        let pin = decrypt(&block, "6222021000000062", &KEY).unwrap();
        assert_eq!(pin.as_deref(), Some("1234"));
        // Same PIN, other card: a different block.
        assert_ne!(block, encrypt("1234", "4111111111111111", &KEY).unwrap());
    }

    #[test]
    fn rejects_bad_pins_and_blocks() {
        assert_eq!(encrypt("12", "4111111111111111", &KEY), Err(PinError::Length));
        assert_eq!(
            encrypt("12a4", "4111111111111111", &KEY),
            Err(PinError::NotDigits)
        );
        assert_eq!(decrypt("zz", "4111111111111111", &KEY), Err(PinError::BadBlock));
        let other_key = [7u8; 16];
        let block = encrypt("1234", "4111111111111111", &KEY).unwrap();
        assert_ne!(
            decrypt(&block, "4111111111111111", &other_key)
                .unwrap()
                .as_deref(),
            Some("1234")
        );
    }

    #[test]
    fn each_checkout_has_its_own_key_and_the_hub_translates_into_the_acquirers() {
        let (a, b) = (checkout_key(&[1; 32]), checkout_key(&[2; 32]));
        assert_ne!(a, b, "two pairings, two PIN keys");
        assert_eq!(
            a,
            checkout_key(&[1; 32]),
            "the hub derives the checkout's key again"
        );
        let acquirer = [9u8; 16];
        let pan = "6222021000000062";
        let from_checkout = encrypt("2468", pan, &a).unwrap();
        let to_acquirer = translate(&from_checkout, pan, &a, &acquirer).unwrap();
        assert_ne!(to_acquirer, from_checkout);
        assert_eq!(
            decrypt(&to_acquirer, pan, &acquirer).unwrap().as_deref(),
            Some("2468")
        );
        assert_eq!(
            decrypt(&to_acquirer, pan, &a).unwrap(),
            None,
            "the checkout's key opens nothing on the link"
        );
        // A block under another checkout's key, or for another card, is refused, not passed on.
        assert_eq!(
            translate(&from_checkout, pan, &b, &acquirer),
            Err(PinError::Unreadable)
        );
        assert_eq!(
            translate(&from_checkout, "4111111111111111", &a, &acquirer),
            Err(PinError::Unreadable)
        );
        assert_eq!(translate("00", pan, &a, &acquirer), Err(PinError::BadBlock));
    }

    #[test]
    fn a_card_number_that_is_not_ascii_digits_is_refused_not_a_panic() {
        // What the fuzzer found: the card number cut inside a character.
        let block = encrypt("1234", "6222021000000054", &KEY).unwrap();
        for pan in ["2\0\0\0\0\0\0\0\u{d4a6}-11", "é", "", "1"] {
            let _ = translate(&block, pan, &KEY, &[3; 16]);
            let _ = decrypt(&block, pan, &KEY);
        }
    }

    #[test]
    fn translation_of_any_bytes_never_panics() {
        for i in 0..2000u32 {
            let block = hex::encode_upper(i.wrapping_mul(2_654_435_761).to_be_bytes().repeat(2));
            let _ = translate(&block, "6222021000000062", &KEY, &[3; 16]);
        }
    }
}
