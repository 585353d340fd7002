//! What crosses the uplink between a shop's hub and head office, as bytes.
//!
//! - An [`Entry`] of a store's outbox: numbered per store from 1, chained by
//!   SHA-256 over the one before ([`entry_hash`]), its body a JSON text kept
//!   byte for byte as the hub wrote it (the hash covers those bytes).
//! - A [`Batch`] of consecutive entries goes from the hub to head office;
//!   an [`Ack`] comes back. Each is [`seal`]ed: its JSON, then a 64-byte
//!   ed25519 signature of that JSON. The hub signs with its store key, made
//!   when it joined the chain; head office signs with its own key, whose
//!   public half the hub got in the enrolment code. A message anyone else
//!   wrote does not open.
//! - An [`Enrol`]ment: the hub's public key, proved by the one-time secret
//!   of the code head office gave ([`EnrolCode`]).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before a store's first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The most entries one [`Batch`] carries.
pub const BATCH_MAX: usize = 200;

/// One change a head office keeps, as the hub's outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// `txn` (a transaction as it now stands), `settled`, `fraud_hit`, `freeze`.
    pub kind: String,
    /// When the hub appended it, UTC (RFC 3339).
    pub at: String,
    /// The change as JSON text: the hash covers these bytes.
    pub body: String,
    /// [`entry_hash`] of this entry over the one before, hex.
    pub hash: String,
}

/// SHA-256 over the previous entry's hash and this entry's fields.
pub fn entry_hash(prev: &[u8; 32], seq: u64, kind: &str, at: &str, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    for part in [kind, at, body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

impl Entry {
    /// Whether `hash` is this entry's hash over `prev`.
    pub fn follows(&self, prev: &[u8; 32]) -> bool {
        hex::encode(entry_hash(prev, self.seq, &self.kind, &self.at, &self.body)) == self.hash
    }

    pub fn hash_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.hash).ok()?.try_into().ok()
    }
}

/// Consecutive entries of one store, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub store: String,
    pub entries: Vec<Entry>,
}

/// Head office's answer to a store: it holds every entry below `next`.
/// `resend` when it found a gap and wants the store to send again from
/// `next` (an ack alone only moves forward).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub store: String,
    pub next: u64,
    #[serde(default)]
    pub resend: bool,
}

/// A document head office publishes to every store (retained on the
/// broker, so a store that connects later gets the newest): its kind, a
/// version that only grows, and the body. Kinds a store takes today:
/// [`DOCUMENT_KINDS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub kind: String,
    pub version: u64,
    pub body: serde_json::Value,
}

/// The fraud rules a chain sets (the names of the `[fraud]` settings); the
/// rules a shop's owner wrote in its own settings file win.
pub const FRAUD_RULES: &str = "fraud_rules";

/// The shop settings a chain sets ([`crate::shop::CHAIN_WIDE`]); those a
/// shop's owner set on the shop's page win.
pub const SHOP_SETTINGS: &str = "shop_settings";

/// `base` with head office's `chain` settings on top, except those the
/// shop set itself (`local`): the shop's own choice wins. Also which of
/// `chain`'s settings stayed local. `what` names the settings in refusals
/// ("fraud rules"); `takes` says whether head office may set a setting.
pub fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    what: &str,
    takes: impl Fn(&str, &serde_json::Map<String, serde_json::Value>) -> Result<(), String>,
    local: &std::collections::BTreeSet<String>,
    chain: &serde_json::Map<String, serde_json::Value>,
) -> Result<(T, Vec<String>), String> {
    let mut fields = match serde_json::to_value(base) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => return Err(format!("the {what} do not serialize")),
    };
    let mut kept_local = Vec::new();
    for (key, value) in chain {
        takes(key, &fields)?;
        if local.contains(key) {
            kept_local.push(key.clone());
        } else {
            fields.insert(key.clone(), value.clone());
        }
    }
    let merged = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| format!("head office's {what}: {e}"))?;
    Ok((merged, kept_local))
}

/// A hub update offered to every shop ([`crate::chain::bundle::Offer`]).
pub const HUB_UPDATE: &str = "hub_update";

/// A checkout update offered to every shop's checkouts.
pub const TERMINAL_UPDATE: &str = "terminal_update";

/// Every kind of document a store takes.
pub const DOCUMENT_KINDS: &[&str] = &[FRAUD_RULES, SHOP_SETTINGS, HUB_UPDATE, TERMINAL_UPDATE];

/// A hub asking to join as `store` with `key` (its public key, hex); `proof`
/// is [`enrol_proof`] with the code's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrol {
    pub store: String,
    pub key: String,
    pub proof: String,
}

fn enrol_mac(secret: &[u8], store: &str, key: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in [
        b"tallybox-chain-enrol".as_slice(),
        store.as_bytes(),
        key.as_bytes(),
    ] {
        mac.update(part);
        mac.update(b"\n");
    }
    mac
}

/// HMAC-SHA256 with the enrolment code's secret over the store and key.
pub fn enrol_proof(secret: &[u8], store: &str, key: &str) -> String {
    hex::encode(enrol_mac(secret, store, key).finalize().into_bytes())
}

/// Whether `proof` is [`enrol_proof`] of `secret` (compared in constant time).
pub fn enrol_proof_holds(secret: &[u8], store: &str, key: &str, proof: &str) -> bool {
    hex::decode(proof).is_ok_and(|proof| enrol_mac(secret, store, key).verify_slice(&proof).is_ok())
}

/// The MQTT topics of store `store` on the chain's broker.
pub struct ChainTopics {
    pub outbox: String,
    pub ack: String,
    pub enrol: String,
}

impl ChainTopics {
    pub fn new(store: &str) -> ChainTopics {
        ChainTopics {
            outbox: format!("tallybox-chain/{store}/outbox"),
            ack: format!("tallybox-chain/{store}/ack"),
            enrol: format!("tallybox-chain/{store}/enrol"),
        }
    }

    /// Head office's documents, one retained message per kind.
    pub const DOCUMENTS: &'static str = "tallybox-chain-docs/+";

    pub fn document(kind: &str) -> String {
        format!("tallybox-chain-docs/{kind}")
    }

    /// What head office subscribes to: every store's outbox and enrolment.
    pub const ALL_OUTBOXES: &'static str = "tallybox-chain/+/outbox";
    pub const ALL_ENROLMENTS: &'static str = "tallybox-chain/+/enrol";

    /// The store a topic of [`ChainTopics::ALL_OUTBOXES`] names.
    pub fn store_of(topic: &str) -> Option<&str> {
        let mut parts = topic.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("tallybox-chain"), Some(store), Some(_), None) => Some(store),
            _ => None,
        }
    }
}

/// A store id: 1 to 32 letters, digits, `-` or `_` (it is a topic level).
pub fn valid_store_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the message is too short to carry a signature")]
    Short,
    #[error("the signature does not verify: not written by the key it claims")]
    Signature,
    #[error("the message is not what it should be: {0}")]
    Malformed(String),
}

/// `value` as JSON followed by its ed25519 signature.
pub fn seal(value: &impl Serialize, key: &SigningKey) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("plain data serializes");
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    bytes
}

/// The value of a [`seal`]ed message, if `key` signed it.
pub fn open<T: DeserializeOwned>(payload: &[u8], key: &VerifyingKey) -> Result<T, WireError> {
    let split = payload.len().checked_sub(64).ok_or(WireError::Short)?;
    let (json, signature) = payload.split_at(split);
    let signature = Signature::from_slice(signature).map_err(|_| WireError::Signature)?;
    key.verify(json, &signature).map_err(|_| WireError::Signature)?;
    serde_json::from_slice(json).map_err(|e| WireError::Malformed(e.to_string()))
}

/// The value of a sealed message, unchecked: only to learn whose key to
/// check it with.
pub fn peek<T: DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
    let split = payload.len().checked_sub(64).ok_or(WireError::Short)?;
    serde_json::from_slice(&payload[..split]).map_err(|e| WireError::Malformed(e.to_string()))
}

/// 32 bytes written as 64 hex digits (an ed25519 key, either half).
fn key_bytes(hex_key: &str) -> Option<[u8; 32]> {
    hex::decode(hex_key.trim()).ok()?.try_into().ok()
}

pub fn verifying_key(hex_key: &str) -> Result<VerifyingKey, WireError> {
    let bytes =
        key_bytes(hex_key).ok_or_else(|| WireError::Malformed("a public key is 32 bytes of hex".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| WireError::Malformed(e.to_string()))
}

/// A secret signing key written as 64 hex digits.
pub fn signing_key(hex_key: &str) -> Option<SigningKey> {
    key_bytes(hex_key).map(|bytes| SigningKey::from_bytes(&bytes))
}

/// What head office gives a store to join: where the chain's broker is, the
/// store's id, head office's public key and a one-time secret. Shown as one
/// line (`tbx-chain-1.` and base64url) to paste, never typed field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolCode {
    pub broker: String,
    pub store: String,
    /// Head office's ed25519 public key, hex.
    pub hq: String,
    /// The one-time secret, hex.
    pub secret: String,
}

const CODE_PREFIX: &str = "tbx-chain-1.";

impl EnrolCode {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("plain data serializes");
        format!("{CODE_PREFIX}{}", data_encoding::BASE64URL_NOPAD.encode(&json))
    }

    pub fn decode(code: &str) -> Result<EnrolCode, String> {
        let bad = || {
            "not a chain enrolment code: paste the whole line head office gave (it starts tbx-chain-1.)"
                .to_string()
        };
        let rest = code.trim().strip_prefix(CODE_PREFIX).ok_or_else(bad)?;
        let json = data_encoding::BASE64URL_NOPAD
            .decode(rest.as_bytes())
            .map_err(|_| bad())?;
        let code: EnrolCode = serde_json::from_slice(&json).map_err(|_| bad())?;
        if !valid_store_id(&code.store) {
            return Err(format!(
                "the code names store '{}', which is not a store id",
                code.store
            ));
        }
        verifying_key(&code.hq).map_err(|e| format!("the code's head-office key: {e}"))?;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<Entry> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let body = format!("{{\"n\":{seq}}}");
                let hash = entry_hash(&prev, seq, "txn", "2026-12-05T10:00:00Z", &body);
                prev = hash;
                Entry {
                    seq,
                    kind: "txn".into(),
                    at: "2026-12-05T10:00:00Z".into(),
                    body,
                    hash: hex::encode(hash),
                }
            })
            .collect()
    }

    #[test]
    fn each_entry_follows_the_one_before_and_a_changed_byte_breaks_the_chain() {
        let chain = entries(3);
        assert!(chain[0].follows(&GENESIS));
        assert!(chain[1].follows(&chain[0].hash_bytes().unwrap()));
        assert!(
            !chain[2].follows(&chain[0].hash_bytes().unwrap()),
            "an entry skipped"
        );
        let mut changed = chain[1].clone();
        changed.body = "{\"n\":20}".into();
        assert!(!changed.follows(&chain[0].hash_bytes().unwrap()));
        // The fields' lengths are hashed: moving a byte between fields shows.
        assert_ne!(
            entry_hash(&GENESIS, 1, "tx", "n1", "{}"),
            entry_hash(&GENESIS, 1, "txn", "1", "{}")
        );
    }

    #[test]
    fn a_sealed_batch_opens_only_with_the_key_that_sealed_it() {
        let store = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let batch = Batch {
            store: "S1".into(),
            entries: entries(2),
        };
        let sealed = seal(&batch, &store);
        assert_eq!(open::<Batch>(&sealed, &store.verifying_key()), Ok(batch.clone()));
        assert_eq!(
            open::<Batch>(&sealed, &other.verifying_key()),
            Err(WireError::Signature)
        );
        let forged = seal(&batch, &other);
        assert_eq!(
            open::<Batch>(&forged, &store.verifying_key()),
            Err(WireError::Signature)
        );
        let mut altered = sealed.clone();
        altered[10] ^= 1;
        assert!(open::<Batch>(&altered, &store.verifying_key()).is_err());
        assert_eq!(
            open::<Batch>(&sealed[..40], &store.verifying_key()),
            Err(WireError::Short)
        );
        assert_eq!(peek::<Batch>(&forged).unwrap().store, "S1");
    }

    #[test]
    fn an_enrolment_code_reads_back_and_its_proof_needs_the_secret() {
        let code = EnrolCode {
            broker: "mqtt://hq.example:1883".into(),
            store: "shop-2".into(),
            hq: hex::encode(SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes()),
            secret: hex::encode([9u8; 16]),
        };
        let line = code.encode();
        assert!(line.starts_with("tbx-chain-1."));
        assert_eq!(EnrolCode::decode(&format!("  {line}\n")), Ok(code.clone()));
        assert!(EnrolCode::decode("tbx-chain-1.abc").is_err());
        assert!(EnrolCode::decode(&line[1..]).is_err());
        let proof = enrol_proof(&[9; 16], "shop-2", "ab");
        assert!(enrol_proof_holds(&[9; 16], "shop-2", "ab", &proof));
        assert!(!enrol_proof_holds(&[8; 16], "shop-2", "ab", &proof));
        assert!(!enrol_proof_holds(&[9; 16], "shop-3", "ab", &proof));
        assert!(!enrol_proof_holds(&[9; 16], "shop-2", "ab", "zz"));
    }

    #[test]
    fn store_ids_are_one_topic_level() {
        assert!(valid_store_id("shop-2_B"));
        for bad in ["", "a/b", "a+", "#", &"x".repeat(33)] {
            assert!(!valid_store_id(bad), "{bad}");
        }
        assert_eq!(ChainTopics::store_of("tallybox-chain/S1/outbox"), Some("S1"));
        assert_eq!(ChainTopics::store_of("other/S1/outbox"), None);
    }
}
