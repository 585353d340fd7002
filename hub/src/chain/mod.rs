//! A shop in a chain: the hub feeds head office (`tallybox-hq`) through an
//! MQTT broker of the chain's, and keeps selling when that uplink is down.
//!
//! - [`wire`]: the messages and how they are signed.
//! - The outbox ([`crate::store::outbox`]): what head office keeps, appended
//!   in the same SQLite transaction as the change itself.
//! - [`uplink`]: the hub's own MQTT client to the chain's broker (the shop's
//!   checkouts never talk to it), sending the outbox in order and resuming
//!   from what head office last acknowledged.
//! - [`ChainConfig`]: `chain.json` in the data directory, written by
//!   `tallybox chain join CODE` from head office's one-time code; the store's
//!   signing key is made there and never leaves the hub.

pub mod bundle;
pub mod uplink;
pub mod wire;

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use tallybox_platform::mqtt::BrokerAddr;
use zeroize::Zeroizing;

use wire::EnrolCode;

/// The file that makes a hub part of a chain.
pub const FILE: &str = "chain.json";

/// What `chain.json` holds (mode 0600: the store's key is in it).
#[derive(Serialize, Deserialize)]
struct ChainFile {
    broker: String,
    store: String,
    /// Head office's public key, hex.
    hq: String,
    /// The enrolment code's one-time secret, hex (sent with every enrolment
    /// until head office answers; worthless once used).
    secret: String,
    /// The store's ed25519 secret key, hex.
    key: String,
}

/// The hub's place in a chain.
#[derive(Clone)]
pub struct ChainConfig {
    pub broker: BrokerAddr,
    pub store: String,
    pub hq: VerifyingKey,
    pub secret: Zeroizing<Vec<u8>>,
    pub key: SigningKey,
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("broker", &self.broker)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

impl ChainConfig {
    /// The chain this hub is in, if it joined one.
    pub fn load(data_dir: &Path) -> Result<Option<ChainConfig>, String> {
        let path = path(data_dir);
        if !path.exists() {
            return Ok(None);
        }
        let text = crate::store::read_private(&path)?;
        let bad = |what: &str| {
            format!(
                "{} is damaged ({what}): join the chain again with a new code from head office",
                path.display()
            )
        };
        let file: ChainFile = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let key = wire::signing_key(&file.key).ok_or_else(|| bad("the store key"))?;
        Ok(Some(ChainConfig {
            broker: file.broker.parse().map_err(|e: String| bad(&e))?,
            store: file.store,
            hq: wire::verifying_key(&file.hq).map_err(|e| bad(&e.to_string()))?,
            secret: Zeroizing::new(hex::decode(&file.secret).map_err(|_| bad("the secret"))?),
            key,
        }))
    }

    /// Joins the chain `code` names: makes the store's key and writes
    /// `chain.json`. Refuses when the hub is already in a chain.
    pub fn join(data_dir: &Path, code: &str) -> Result<ChainConfig, String> {
        let code = EnrolCode::decode(code)?;
        let path = path(data_dir);
        if path.exists() {
            return Err(format!(
                "this hub is already in a chain ({}): to move it, stop the hub and remove that file first",
                path.display()
            ));
        }
        code.broker.parse::<BrokerAddr>()?;
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let file = ChainFile {
            broker: code.broker,
            store: code.store,
            hq: code.hq,
            secret: code.secret,
            key: hex::encode(key.to_bytes()),
        };
        let json = Zeroizing::new(serde_json::to_vec_pretty(&file).expect("plain data serializes"));
        tallybox_platform::fsync::write_synced(&path, &json)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(ChainConfig::load(data_dir)?.expect("just written"))
    }

    /// The store's public key, hex, as head office records it.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_writes_a_private_file_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ChainConfig::load(dir.path()).unwrap().is_none());
        let hq = SigningKey::from_bytes(&[3; 32]);
        let code = EnrolCode {
            broker: "mqtt://127.0.0.1:1883".into(),
            store: "S2".into(),
            hq: hex::encode(hq.verifying_key().to_bytes()),
            secret: hex::encode([5u8; 16]),
        }
        .encode();
        let joined = ChainConfig::join(dir.path(), &code).unwrap();
        assert_eq!(joined.store, "S2");
        assert_eq!(joined.hq, hq.verifying_key());
        let loaded = ChainConfig::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.public_key(), joined.public_key());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = ChainConfig::join(dir.path(), &code).unwrap_err();
        assert!(again.contains("already in a chain"), "{again}");
        assert!(ChainConfig::join(tempfile::tempdir().unwrap().path(), "S2").is_err());
    }
}
