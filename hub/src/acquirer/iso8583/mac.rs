//! The message authentication code in field 64 (128 in a message with a
//! secondary bitmap): ISO 9797-1 MAC algorithm 3
//! (the "retail MAC") with a double-length DES key — single-DES CBC over the
//! message with the key's left half, then decrypt with the right half and
//! encrypt with the left on the last block — padding method 2 (`80 00…`).
//! It covers every byte of the message before the MAC's value.
//!
//! China UnionPay's layout uses its own "ECB" MAC instead ([`MacKey::cup_mac`]).

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};

use super::codec::{CodecError, Dialect, Message};

/// The key both ends share: 16 bytes (two DES keys).
#[derive(Clone, PartialEq, Eq)]
pub struct MacKey([u8; 16]);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// The unit tests' key. The product has none built in: the acquirer issues
/// the key, and the simulator makes a random one.
#[cfg(test)]
pub const TEST_MAC_KEY: MacKey = MacKey([
    0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78, 0x87, 0x96, 0xA5, 0xB4, 0xC3, 0xD2, 0xE1, 0xF0,
]);

impl MacKey {
    /// From 32 hex digits.
    pub fn parse(hex_key: &str) -> Result<MacKey, String> {
        let bytes = hex::decode(hex_key).map_err(|_| "the MAC key must be 32 hex digits".to_string())?;
        let key: [u8; 16] = bytes
            .try_into()
            .map_err(|_| "the MAC key must be 32 hex digits (16 bytes)".to_string())?;
        Ok(MacKey(key))
    }

    pub fn from_bytes(key: [u8; 16]) -> MacKey {
        MacKey(key)
    }

    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }

    /// A random key.
    #[cfg(test)]
    pub fn random() -> MacKey {
        MacKey(rand::random())
    }

    /// The key check value acquirers print beside a key: the first three
    /// bytes of eight zero bytes encrypted under it (two-key triple DES),
    /// as hex. It tells two people they hold the same key without showing it.
    pub fn check_value(&self) -> String {
        tallybox_core::card::pin_block::check_value(&self.0)
    }

    pub fn mac(&self, data: &[u8]) -> [u8; 8] {
        let (k1, k2) = (Des::new((&self.0[..8]).into()), Des::new((&self.0[8..]).into()));
        let mut padded = data.to_vec();
        padded.push(0x80);
        while !padded.len().is_multiple_of(8) {
            padded.push(0);
        }
        let mut block = [0u8; 8];
        for chunk in padded.chunks(8) {
            for (b, c) in block.iter_mut().zip(chunk) {
                *b ^= c;
            }
            k1.encrypt_block((&mut block).into());
        }
        k2.decrypt_block((&mut block).into());
        k1.encrypt_block((&mut block).into());
        block
    }

    /// China UnionPay's "ECB" MAC: the data XORed together in 8-byte
    /// blocks (the last one padded with zeros), written as 16 hex digits;
    /// the first 8 of them encrypted under the key (two-key triple DES), XORed
    /// with the last 8, encrypted again; of that, as 16 hex digits, the first 8.
    pub fn cup_mac(&self, data: &[u8]) -> [u8; 8] {
        let cipher = TdesEde2::new((&self.0).into());
        let mut folded = [0u8; 8];
        for chunk in data.chunks(8) {
            for (f, c) in folded.iter_mut().zip(chunk) {
                *f ^= c;
            }
        }
        let expanded = hex::encode_upper(folded).into_bytes();
        let mut block = [0u8; 8];
        block.copy_from_slice(&expanded[..8]);
        cipher.encrypt_block((&mut block).into());
        for (b, e) in block.iter_mut().zip(&expanded[8..]) {
            *b ^= e;
        }
        cipher.encrypt_block((&mut block).into());
        let mut mac = [0u8; 8];
        mac.copy_from_slice(&hex::encode_upper(block).as_bytes()[..8]);
        mac
    }

    /// The MAC of `data` in `dialect`.
    fn mac_in(&self, dialect: Dialect, data: &[u8]) -> [u8; 8] {
        match dialect {
            Dialect::Iso1987 => self.mac(data),
            Dialect::CupPos => self.cup_mac(data),
        }
    }

    /// Sets the MAC field (64, or 128 in a message with a secondary bitmap)
    /// to the MAC of `message` and returns its ISO 8583:1987 bytes.
    pub fn seal(&self, message: &mut Message) -> Result<Vec<u8>, CodecError> {
        self.seal_in(Dialect::Iso1987, message)
    }

    /// The same in `dialect`: the bytes are that dialect's (without TPDU
    /// and header).
    pub fn seal_in(&self, dialect: Dialect, message: &mut Message) -> Result<Vec<u8>, CodecError> {
        let field = mac_field(message);
        message.set(field, vec![0; 8])?;
        let mut bytes = dialect.encode(message)?;
        let body = bytes.len() - 8;
        let mac = self.mac_in(dialect, &bytes[..body]);
        bytes[body..].copy_from_slice(&mac);
        message.set(field, mac.to_vec())?;
        Ok(bytes)
    }

    /// True when `bytes` (an encoded ISO 8583:1987 message ending in its MAC
    /// field) carries the right MAC.
    pub fn verify(&self, bytes: &[u8], message: &Message) -> bool {
        self.verify_in(Dialect::Iso1987, bytes, message)
    }

    /// The same for a message in `dialect`.
    pub fn verify_in(&self, dialect: Dialect, bytes: &[u8], message: &Message) -> bool {
        let Some(mac) = message.get(mac_field(message)) else {
            return false;
        };
        let body = bytes.len().saturating_sub(8);
        // Not secret-dependent timing worth guarding: the MAC is public on the wire.
        mac == self.mac_in(dialect, &bytes[..body])
    }
}

/// Where a message's MAC goes: the last field of its bitmap.
fn mac_field(message: &Message) -> u8 {
    if message.has_secondary() {
        128
    } else {
        64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_verifies_and_any_change_breaks_it() {
        let mut m = Message::new("0800");
        m.set_str(11, "000001").unwrap();
        m.set_str(41, "T1      ").unwrap();
        let bytes = TEST_MAC_KEY.seal(&mut m).unwrap();
        let back = Message::decode(&bytes).unwrap();
        assert!(TEST_MAC_KEY.verify(&bytes, &back));
        for i in 0..bytes.len() - 8 {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            if let Ok(t) = Message::decode(&tampered) {
                assert!(!TEST_MAC_KEY.verify(&tampered, &t), "byte {i}");
            }
        }
        let other = MacKey::parse("00112233445566778899AABBCCDDEEFF").unwrap();
        assert!(!other.verify(&bytes, &back));
    }

    #[test]
    fn retail_mac_matches_a_known_answer() {
        // ISO 9797-1 algorithm 3, padding 2, key 0123456789ABCDEF FEDCBA9876543210,
        // data "Now is the time for all " (the classic DES test text). The answer
        // was computed independently with OpenSSL: des-cbc under the left key
        // over the padded text, then des-ecb decrypt (right key), encrypt (left).
        let key = MacKey::parse("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let mac = key.mac(b"Now is the time for all ");
        assert_eq!(hex::encode_upper(mac), KNOWN);
    }

    const KNOWN: &str = "E9086230CA3BE796";

    /// `data` encrypted by `openssl enc` with `cipher`, hex `key` and `iv`.
    pub(crate) fn openssl(cipher: &str, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
        openssl_with(&[cipher], key, iv, data)
    }

    /// [`openssl`] with more of `openssl enc`'s arguments (a provider).
    pub(crate) fn openssl_with(args: &[&str], key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .arg("enc")
            .args(args)
            .args(["-nopad", "-K", &hex::encode(key)])
            .args(if iv.is_empty() {
                vec![]
            } else {
                vec!["-iv".to_string(), hex::encode(iv)]
            })
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl (scripts/test installs it)");
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl {args:?} failed");
        out.stdout
    }

    #[test]
    fn china_unionpays_mac_agrees_with_openssl_step_by_step() {
        for round in 0..8 {
            let key = MacKey::random();
            let data: Vec<u8> = (0..1 + usize::from(rand::random::<u8>()) % 200)
                .map(|_| rand::random())
                .collect();
            // XOR of the zero-padded blocks, as hex; its halves through
            // OpenSSL's two-key triple DES (ECB), XORed between.
            let mut folded = [0u8; 8];
            for (i, b) in data.iter().enumerate() {
                folded[i % 8] ^= b;
            }
            let hex_text = hex::encode_upper(folded);
            let first = openssl("-des-ede", &key.0, &[], &hex_text.as_bytes()[..8]);
            let mixed: Vec<u8> = first
                .iter()
                .zip(&hex_text.as_bytes()[8..])
                .map(|(a, b)| a ^ b)
                .collect();
            let second = openssl("-des-ede", &key.0, &[], &mixed);
            let expected = hex::encode_upper(second)[..8].to_string();
            assert_eq!(
                key.cup_mac(&data).to_vec(),
                expected.into_bytes(),
                "round {round}"
            );
        }
    }

    #[test]
    fn macs_and_check_values_agree_with_openssl_for_random_keys_and_messages() {
        for round in 0..8 {
            let key = MacKey::random();
            let (left, right) = (&key.0[..8], &key.0[8..]);
            let data: Vec<u8> = (0..1 + usize::from(rand::random::<u8>()) % 200)
                .map(|_| rand::random())
                .collect();
            let mut padded = data.clone();
            padded.push(0x80);
            padded.resize(padded.len().div_ceil(8) * 8, 0);
            // Single DES is two-key triple DES with both halves the same
            // (OpenSSL 3 keeps single DES in its legacy provider): CBC under
            // the left key up to the last block, then the last block under
            // the whole key (encrypt left, decrypt right, encrypt left).
            let (head, last) = padded.split_at(padded.len() - 8);
            let left_twice = [left, left].concat();
            let chained = if head.is_empty() {
                vec![0; 8]
            } else {
                openssl("-des-ede-cbc", &left_twice, &[0; 8], head)[head.len() - 8..].to_vec()
            };
            let expected = openssl("-des-ede-cbc", &[left, right].concat(), &chained, last);
            assert_eq!(key.mac(&data).to_vec(), expected, "round {round}");
            let kcv = openssl("-des-ede", &key.0, &[], &[0; 8]);
            assert_eq!(key.check_value(), hex::encode_upper(&kcv[..3]), "round {round}");
        }
        // The classic check value of 0123456789ABCDEF FEDCBA9876543210.
        let key = MacKey::parse("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(key.check_value(), "08D7B4");
    }
}
