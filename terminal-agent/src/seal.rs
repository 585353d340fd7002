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

use std::sync::atomic::{AtomicU64, Ordering};

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

/// A sender's counter: the clock in microseconds, always above the last —
/// also across restarts, when it is kept in a file ([`Counter::kept_in`]): a
/// Raspberry Pi has no clock battery and may start with its clock behind the
/// last counter it sent, and a receiver drops a counter it has passed.
///
/// The file holds a floor no counter has reached yet; when one would, the
/// floor moves [`Counter::RESERVE`] ahead first (one small synced write every
/// ten minutes of sealing), and a restart starts from it.
#[derive(Debug, Default)]
pub struct Counter {
    last: AtomicU64,
    kept: Option<std::sync::Mutex<Kept>>,
}

#[derive(Debug)]
struct Kept {
    path: std::path::PathBuf,
    floor: u64,
}

impl Counter {
    /// How far ahead the kept floor moves: ten minutes of microseconds.
    pub const RESERVE: u64 = 600_000_000;

    /// How far ahead of the clock a counter whose file was damaged starts:
    /// receivers accept any counter above the last they saw, so a day ahead
    /// covers a clock up to a day behind at no cost.
    pub const DAMAGED_AHEAD: u64 = 86_400_000_000;

    /// A counter whose floor is kept in `path`; it starts above every
    /// counter issued before under the same file. A damaged file (only a
    /// damaged disk makes one: it is written whole) is logged, and the
    /// counter starts a day ahead of the clock rather than refusing to run.
    pub fn kept_in(path: &std::path::Path) -> std::io::Result<Counter> {
        let floor = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                tracing::error!(path = %path.display(), "the message counter file is damaged; counting on from a day ahead of the clock");
                now_micros() + Self::DAMAGED_AHEAD
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Counter {
            last: AtomicU64::new(floor),
            kept: Some(std::sync::Mutex::new(Kept {
                path: path.to_path_buf(),
                floor,
            })),
        })
    }

    pub fn next(&self) -> u64 {
        let now = now_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        let next = loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        if let Some(kept) = &self.kept {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            if next >= kept.floor {
                let floor = next + Self::RESERVE;
                match write_synced(&kept.path, floor.to_string().as_bytes()) {
                    Ok(()) => kept.floor = floor,
                    Err(e) => {
                        tracing::error!(path = %kept.path.display(), error = %e, "cannot keep the message counter")
                    }
                }
            }
        }
        next
    }
}

/// The clock, in microseconds since 1970.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Writes `bytes` to a temporary file (mode 0600), syncs it and renames it
/// over `path`: a crash leaves the old file or the new one.
pub fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
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

/// Reads a key file (64 hex digits).
pub fn read_key(path: &std::path::Path) -> std::io::Result<Option<Key>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let key: Key = bytes.try_into().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a key file holds 64 hex digits")
            })?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a key file readable by its owner alone (mode 0600), durably.
pub fn write_key(path: &std::path::Path, key: &Key) -> std::io::Result<()> {
    write_synced(path, hex::encode(key).as_bytes())
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
        let counter = Counter::default();
        let plain = br#"{"v":1,"type":"sale","amount":"12.50"}"#;
        let n = counter.next();
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
    fn a_kept_counter_starts_above_all_it_issued_even_with_the_clock_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal-counter");
        // A counter that ran a day ahead of this clock (the clock then went back).
        let day = 86_400_000_000u64;
        let ahead = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64
            + day;
        std::fs::write(&path, ahead.to_string()).unwrap();
        let counter = Counter::kept_in(&path).unwrap();
        let issued: Vec<u64> = (0..3).map(|_| counter.next()).collect();
        assert!(issued[0] > ahead && issued[1] > issued[0] && issued[2] > issued[1]);
        let floor: u64 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        assert!(floor > issued[2], "the floor moved ahead before it was reached");
        // A restart (same file): above everything issued before.
        let again = Counter::kept_in(&path).unwrap();
        assert!(again.next() > issued[2]);
        // A damaged file is not a silent restart from zero: a day ahead.
        std::fs::write(&path, "garbage").unwrap();
        let damaged = Counter::kept_in(&path).unwrap();
        assert!(damaged.next() > now_micros() + Counter::DAMAGED_AHEAD - 60_000_000);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .trim()
                .parse::<u64>()
                .is_ok(),
            "rewritten whole"
        );
    }

    #[test]
    fn counters_grow_and_a_replay_is_refused() {
        let counter = Counter::default();
        let (a, b) = (counter.next(), counter.next());
        assert!(b > a);
        let mut guard = ReplayGuard::default();
        guard.accept(a).unwrap();
        guard.accept(b).unwrap();
        assert_eq!(guard.accept(b), Err(SealError::Replayed { got: b, seen: b }));
        assert!(guard.accept(a).is_err());
    }

    #[test]
    fn a_key_file_is_private_and_reads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.key");
        assert_eq!(read_key(&path).unwrap(), None);
        let key: Key = rand::random();
        write_key(&path, &key).unwrap();
        assert_eq!(read_key(&path).unwrap(), Some(key));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
