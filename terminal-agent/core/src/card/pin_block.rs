//! ISO 9564 format 0 PIN blocks, encrypted under a terminal PIN key with 3DES.
//!
//! The clear PIN exists only inside [`encrypt`]; what leaves the terminal is the
//! 16-hex-digit encrypted block. Until terminal pairing hands each terminal its
//! own key, terminals and the simulated acquirer share [`TEST_PIN_KEY`]; an
//! ISO 8583 host is given its real key in configuration.

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde2;

/// Double-length test key (16 bytes); for the simulator and tests only.
pub const TEST_PIN_KEY: [u8; 16] = *b"TallyboxTestTPK!";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("a PIN has 4 to 12 digits")]
    Length,
    #[error("a PIN has digits only")]
    NotDigits,
    #[error("the PIN block is not 16 hex digits")]
    BadBlock,
}

fn pan_field(pan: &str) -> [u8; 8] {
    // Rightmost 12 digits excluding the check digit, left-padded with zeros.
    let body = &pan[..pan.len() - 1];
    let take = &body[body.len().saturating_sub(12)..];
    let mut nibbles = [0u8; 16];
    for (i, b) in take.bytes().enumerate() {
        nibbles[16 - take.len() + i] = b - b'0';
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
pub fn encrypt(pin: &str, pan: &str, key: &[u8; 16]) -> Result<String, PinError> {
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
    let pin_field = pack(&nibbles);
    let pan_field = pan_field(pan);
    let mut block = [0u8; 8];
    for i in 0..8 {
        block[i] = pin_field[i] ^ pan_field[i];
    }
    let cipher = TdesEde2::new(key.into());
    cipher.encrypt_block((&mut block).into());
    Ok(hex::encode_upper(block))
}

/// Recovers the PIN from an encrypted format 0 block: what an issuer (here, the
/// simulated one) does to verify it. `None` when the block does not decode.
pub fn decrypt(block_hex: &str, pan: &str, key: &[u8; 16]) -> Result<Option<String>, PinError> {
    let bytes = hex::decode(block_hex).map_err(|_| PinError::BadBlock)?;
    let mut block: [u8; 8] = bytes.try_into().map_err(|_| PinError::BadBlock)?;
    let cipher = TdesEde2::new(key.into());
    cipher.decrypt_block((&mut block).into());
    let pan_field = pan_field(pan);
    let mut nibbles = [0u8; 16];
    for i in 0..8 {
        let b = block[i] ^ pan_field[i];
        nibbles[2 * i] = b >> 4;
        nibbles[2 * i + 1] = b & 0xF;
    }
    let len = usize::from(nibbles[1]);
    if nibbles[0] != 0 || !(4..=12).contains(&len) {
        return Ok(None);
    }
    let digits = &nibbles[2..2 + len];
    let padding = &nibbles[2 + len..];
    if digits.iter().any(|&d| d > 9) || padding.iter().any(|&d| d != 0xF) {
        return Ok(None);
    }
    Ok(Some(digits.iter().map(|d| char::from(b'0' + d)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let block = encrypt("1234", "6222021000000062", &TEST_PIN_KEY).unwrap();
        assert_eq!(block.len(), 16);
        assert!(!block.contains("1234"));
        let pin = decrypt(&block, "6222021000000062", &TEST_PIN_KEY).unwrap();
        assert_eq!(pin.as_deref(), Some("1234"));
        // Same PIN, other card: a different block.
        assert_ne!(block, encrypt("1234", "4111111111111111", &TEST_PIN_KEY).unwrap());
    }

    #[test]
    fn rejects_bad_pins_and_blocks() {
        assert_eq!(
            encrypt("12", "4111111111111111", &TEST_PIN_KEY),
            Err(PinError::Length)
        );
        assert_eq!(
            encrypt("12a4", "4111111111111111", &TEST_PIN_KEY),
            Err(PinError::NotDigits)
        );
        assert_eq!(
            decrypt("zz", "4111111111111111", &TEST_PIN_KEY),
            Err(PinError::BadBlock)
        );
        let other_key = [7u8; 16];
        let block = encrypt("1234", "4111111111111111", &TEST_PIN_KEY).unwrap();
        assert_ne!(
            decrypt(&block, "4111111111111111", &other_key)
                .unwrap()
                .as_deref(),
            Some("1234")
        );
    }
}
