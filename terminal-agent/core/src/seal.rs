//! Pairing and sealed messages. A terminal is paired with the hub once: the
//! owner's page shows an 8-digit code, the cashier keys it on the terminal,
//! and the two run SPAKE2 over MQTT with it. SPAKE2 turns the short code into
//! a strong shared key without letting an eavesdropper test guesses offline:
//! a wrong guess costs one live attempt, and the hub allows three.
//!
//! From then on every request and answer between them is sealed with that
//! key (XChaCha20-Poly1305): the whole JSON message — card data, PIN blocks,
//! cashier PINs included — is encrypted, and a forged or altered one fails to
//! open. Each sealed message carries a counter that only grows; a receiver
//! refuses one it has already passed (a replay). The counter is the sender's
//! clock in microseconds, bumped when two messages share one, so it keeps
//! growing across restarts without being written down. Nonces are random
//! (192 bits), so a counter that ever repeated could not repeat a nonce.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// A terminal's secret key, shared with the hub alone.
pub type Key = [u8; 32];

/// Digits in a pairing code.
pub const CODE_DIGITS: usize = 8;

/// Which way a message goes: part of what is authenticated, so a message
/// cannot be reflected back to its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToHub,
    ToTerminal,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::ToHub => "to-hub",
            Direction::ToTerminal => "to-terminal",
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the message is not sealed")]
    NotSealed,
    #[error("the sealed message is malformed")]
    Malformed,
    #[error(
        "the sealed message does not open with this terminal's key: forged, altered or under another key"
    )]
    Forged,
    #[error("the message's counter {got} is not above {seen}, the last one accepted: a replay")]
    Replayed { got: u64, seen: u64 },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    v: u8,
    #[serde(rename = "type")]
    kind: String,
    n: u64,
    nonce: String,
    data: String,
}

fn aad(direction: Direction, terminal: &str, counter: u64) -> Vec<u8> {
    format!("tallybox/v1 {} {terminal} {counter}", direction.label()).into_bytes()
}

/// `plaintext` (a protocol message) sealed for `terminal`'s link.
pub fn seal(key: &Key, direction: Direction, terminal: &str, counter: u64, plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; 24] = rand::random();
    let aad = aad(direction, terminal, counter);
    let data = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("XChaCha20-Poly1305 seals any length this protocol sends");
    serde_json::to_vec(&Envelope {
        v: 1,
        kind: "sealed".into(),
        n: counter,
        nonce: BASE64.encode(&nonce),
        data: BASE64.encode(&data),
    })
    .unwrap_or_default()
}

/// Whether `payload` is a sealed envelope (without opening it).
pub fn is_sealed(payload: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<&'a str>,
    }
    serde_json::from_slice::<Peek>(payload).is_ok_and(|p| p.kind == Some("sealed"))
}

/// Opens a sealed message: its counter and the protocol message inside.
pub fn open(
    key: &Key,
    direction: Direction,
    terminal: &str,
    payload: &[u8],
) -> Result<(u64, Vec<u8>), SealError> {
    if !is_sealed(payload) {
        return Err(SealError::NotSealed);
    }
    let envelope: Envelope = serde_json::from_slice(payload).map_err(|_| SealError::Malformed)?;
    let nonce = BASE64
        .decode(envelope.nonce.as_bytes())
        .map_err(|_| SealError::Malformed)?;
    let data = BASE64
        .decode(envelope.data.as_bytes())
        .map_err(|_| SealError::Malformed)?;
    if nonce.len() != 24 || envelope.kind != "sealed" || envelope.v != 1 {
        return Err(SealError::Malformed);
    }
    let aad = aad(direction, terminal, envelope.n);
    let plain = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &data,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Forged)?;
    Ok((envelope.n, plain))
}

/// A receiver's memory of the highest counter accepted on one link.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayGuard {
    seen: u64,
}

impl ReplayGuard {
    /// A guard that has already seen counters up to `seen` (kept across a restart).
    pub fn from_seen(seen: u64) -> ReplayGuard {
        ReplayGuard { seen }
    }

    /// The highest counter accepted.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn accept(&mut self, counter: u64) -> Result<(), SealError> {
        if counter <= self.seen {
            return Err(SealError::Replayed {
                got: counter,
                seen: self.seen,
            });
        }
        self.seen = counter;
        Ok(())
    }
}

// ---- pairing --------------------------------------------------------------

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("a pairing code is {CODE_DIGITS} digits")]
    BadCode,
    #[error("the hub's answer is malformed")]
    Malformed,
    #[error("wrong pairing code")]
    WrongCode,
}

fn identities(terminal: &str, store: &str) -> (Identity, Identity) {
    (
        Identity::new(format!("tallybox terminal {store}/{terminal}").as_bytes()),
        Identity::new(format!("tallybox hub {store}").as_bytes()),
    )
}

fn check_code(code: &str) -> Result<(), PairError> {
    if code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PairError::BadCode)
    }
}

/// The terminal's key from SPAKE2's shared secret.
fn derive(secret: &[u8]) -> Key {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"tallybox terminal key v1");
    mac.finalize().into_bytes().into()
}

/// Proof that the hub holds `key`, for the terminal to check.
fn confirmation(key: &Key, terminal: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"tallybox hub confirms ");
    mac.update(terminal.as_bytes());
    mac
}

/// The terminal's side of a pairing in progress.
pub struct Pairing {
    state: Spake2<Ed25519Group>,
    terminal: String,
}

/// The terminal starts pairing with the code it was given: the message for
/// the hub (base64).
pub fn pair_start(code: &str, terminal: &str, store: &str) -> Result<(Pairing, String), PairError> {
    check_code(code)?;
    let (a, b) = identities(terminal, store);
    let (state, message) = Spake2::<Ed25519Group>::start_a(&Password::new(code.as_bytes()), &a, &b);
    Ok((
        Pairing {
            state,
            terminal: terminal.to_string(),
        },
        BASE64.encode(&message),
    ))
}

/// The hub answers a terminal's pairing message with its own and proof of
/// the key; the key is the terminal's from now on — if the terminal keyed the
/// same code, which its first sealed message shows.
pub fn pair_answer(
    code: &str,
    terminal: &str,
    store: &str,
    message: &str,
) -> Result<(Key, String, String), PairError> {
    check_code(code)?;
    let theirs = BASE64
        .decode(message.as_bytes())
        .map_err(|_| PairError::Malformed)?;
    let (a, b) = identities(terminal, store);
    let (state, ours) = Spake2::<Ed25519Group>::start_b(&Password::new(code.as_bytes()), &a, &b);
    let secret = state.finish(&theirs).map_err(|_| PairError::Malformed)?;
    let key = derive(&secret);
    Ok((
        key,
        BASE64.encode(&ours),
        BASE64.encode(&confirmation(&key, terminal).finalize().into_bytes()),
    ))
}

impl Pairing {
    /// The key, once the hub's answer proves it holds the same one.
    pub fn finish(self, message: &str, confirm: &str) -> Result<Key, PairError> {
        let theirs = BASE64
            .decode(message.as_bytes())
            .map_err(|_| PairError::Malformed)?;
        let confirm = BASE64
            .decode(confirm.as_bytes())
            .map_err(|_| PairError::Malformed)?;
        let secret = self.state.finish(&theirs).map_err(|_| PairError::Malformed)?;
        let key = derive(&secret);
        confirmation(&key, &self.terminal)
            .verify_slice(&confirm)
            .map_err(|_| PairError::WrongCode)?;
        Ok(key)
    }
}

/// The password a paired terminal logs in to the hub's embedded broker
/// with (its user name is its terminal id). Derived from the pairing key, so
/// nothing more is stored or sent; knowing it lets a client connect under the
/// terminal's client id, never read or forge its sealed messages.
pub fn broker_password(key: &Key, terminal: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"tallybox broker login ");
    mac.update(terminal.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Compares two secrets without stopping at the first differing byte, so how
/// fast a wrong one is refused tells nothing about it.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A new random pairing code.
pub fn new_code() -> String {
    format!("{:08}", rand::random::<u32>() % 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_password_belongs_to_one_key_and_one_terminal() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let p = broker_password(&k1, "T1");
        assert_eq!(p.len(), 32);
        assert_eq!(p, broker_password(&k1, "T1"));
        assert_ne!(p, broker_password(&k2, "T1"));
        assert_ne!(p, broker_password(&k1, "T2"));
        assert!(same_secret(p.as_bytes(), broker_password(&k1, "T1").as_bytes()));
        assert!(!same_secret(p.as_bytes(), &p.as_bytes()[..31]));
        assert!(!same_secret(b"abc", b"abd"));
    }

    #[test]
    fn the_same_code_gives_both_sides_one_key_and_a_wrong_code_is_found_out() {
        let (pairing, hello) = pair_start("48219930", "T3", "shop").unwrap();
        let (hub_key, answer, confirm) = pair_answer("48219930", "T3", "shop", &hello).unwrap();
        assert_eq!(pairing.finish(&answer, &confirm).unwrap(), hub_key);

        let (pairing, hello) = pair_start("48219931", "T3", "shop").unwrap();
        let (_, answer, confirm) = pair_answer("48219930", "T3", "shop", &hello).unwrap();
        assert_eq!(pairing.finish(&answer, &confirm), Err(PairError::WrongCode));

        // The code binds the terminal id: the same code for T4 gives another key.
        let (pairing, hello) = pair_start("48219930", "T4", "shop").unwrap();
        let (_, answer, confirm) = pair_answer("48219930", "T3", "shop", &hello).unwrap();
        assert!(pairing.finish(&answer, &confirm).is_err());
        assert_eq!(pair_start("1234", "T3", "shop").err(), Some(PairError::BadCode));
    }

    #[test]
    fn sealed_messages_open_once_with_the_right_key_direction_and_terminal() {
        let key: Key = rand::random();
        let plain = br#"{"v":1,"type":"sale","amount":"12.50"}"#;
        let n = 1_764_000_000_000_000;
        let sealed = seal(&key, Direction::ToHub, "T1", n, plain);
        assert!(is_sealed(&sealed));
        assert!(
            !sealed.windows(5).any(|w| w == b"12.50"),
            "the amount is not in clear"
        );
        assert_eq!(
            open(&key, Direction::ToHub, "T1", &sealed).unwrap(),
            (n, plain.to_vec())
        );
        let other: Key = rand::random();
        assert_eq!(
            open(&other, Direction::ToHub, "T1", &sealed),
            Err(SealError::Forged)
        );
        assert_eq!(
            open(&key, Direction::ToTerminal, "T1", &sealed),
            Err(SealError::Forged),
            "reflected"
        );
        assert_eq!(
            open(&key, Direction::ToHub, "T2", &sealed),
            Err(SealError::Forged),
            "another link"
        );
        // One flipped bit anywhere in the data: refused.
        let mut envelope: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        let mut data = BASE64
            .decode(envelope["data"].as_str().unwrap().as_bytes())
            .unwrap();
        data[3] ^= 1;
        envelope["data"] = BASE64.encode(&data).into();
        let altered = serde_json::to_vec(&envelope).unwrap();
        assert_eq!(
            open(&key, Direction::ToHub, "T1", &altered),
            Err(SealError::Forged)
        );
        // A counter changed in the envelope no longer matches what was sealed.
        envelope["n"] = (n + 1).into();
        assert!(open(
            &key,
            Direction::ToHub,
            "T1",
            &serde_json::to_vec(&envelope).unwrap()
        )
        .is_err());
        assert_eq!(
            open(&key, Direction::ToHub, "T1", plain),
            Err(SealError::NotSealed)
        );
    }

    #[test]
    fn a_replay_is_refused() {
        let (a, b) = (10, 11);
        let mut guard = ReplayGuard::default();
        guard.accept(a).unwrap();
        guard.accept(b).unwrap();
        assert_eq!(guard.accept(b), Err(SealError::Replayed { got: b, seen: b }));
        assert!(guard.accept(a).is_err());
    }
}
