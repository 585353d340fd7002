//! Keys the way acquirers issue them to terminals. Each acquirer terminal id
//! has a terminal master key (TMK) that the acquirer hands the shop once,
//! as a key file or as two components with their check values
//! (`tallybox acquirer-keys add`). At every sign-in the host sends fresh
//! working keys in field 62 of its 0810, each encrypted under the TMK
//! (two-key triple DES, ECB) and followed by its check value: the PIN key
//! (field 52's blocks) and the MAC key. A working key whose check value does
//! not match is refused, so a host (or anyone on the path) without the TMK
//! cannot plant one.
//!
//! Field 62 of an 0810: PIN key (16) + its check value (4) + MAC key (16) +
//! its check value (4), 40 bytes; a host that adds a track key (16 + 4, 60
//! bytes) has it checked and set aside (track data goes in clear over TLS).
//! Single-length keys (8 + 4 each, 24 bytes; or 8 in a 16-byte place) are
//! taken as K‖K: single DES wherever the hub uses triple DES.

use std::collections::BTreeMap;
use std::path::Path;

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde2;
use tallybox_core::card::pin_block::PinKey;
use zeroize::{Zeroize, Zeroizing};

use super::mac::MacKey;

/// A terminal master key: 16 bytes, wiped when dropped, never shown.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 16]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(check value {})", self.check_value())
    }
}

impl MasterKey {
    pub fn from_bytes(key: [u8; 16]) -> MasterKey {
        MasterKey(Zeroizing::new(key))
    }

    /// A random key (the simulated acquirer's, and tests').
    pub fn random() -> MasterKey {
        MasterKey::from_bytes(rand::random())
    }

    /// The check value printed on the acquirer's key letter: 6 hex digits.
    pub fn check_value(&self) -> String {
        hex::encode_upper(&check_value(&self.0)[..3])
    }

    /// `key` encrypted under this one, and its check value: what a host
    /// puts in field 62.
    fn wrap(&self, key: &[u8; 16]) -> [u8; 20] {
        let cipher = TdesEde2::new((&*self.0).into());
        let mut out = [0u8; 20];
        out[..16].copy_from_slice(key);
        for block in out[..16].chunks_mut(8) {
            cipher.encrypt_block(block.into());
        }
        out[16..].copy_from_slice(&check_value(key));
        out
    }

    /// The key in `wrapped`: the key under this one (16 bytes, or 8 for a
    /// single-length key), then 4 bytes of its check value. Some hosts send
    /// a single-length key in a double-length place (its 8 bytes, then 8
    /// more that are not key): the check value tells which. A single-length
    /// key K comes back as K‖K, which is single DES wherever the hub uses
    /// two-key triple DES.
    fn unwrap(&self, wrapped: &[u8], name: &str) -> Result<Zeroizing<[u8; 16]>, String> {
        let cipher = TdesEde2::new((&*self.0).into());
        let (under, check) = wrapped.split_at(wrapped.len() - 4);
        let mut key = Zeroizing::new([0u8; 16]);
        key[..under.len()].copy_from_slice(under);
        for block in key[..under.len()].chunks_mut(8) {
            cipher.decrypt_block(block.into());
        }
        if under.len() == 16 && check_value(&key) == check {
            return Ok(key);
        }
        let (single, _) = key.split_at_mut(8);
        let mut doubled = Zeroizing::new([0u8; 16]);
        doubled[..8].copy_from_slice(single);
        doubled[8..].copy_from_slice(single);
        if check_value(&doubled) == check {
            return Ok(doubled);
        }
        Err(format!(
            "the {name}'s check value does not match: the terminal master key here is not the one the acquirer holds"
        ))
    }
}

/// The first four bytes of eight zero bytes encrypted under `key`.
fn check_value(key: &[u8; 16]) -> [u8; 4] {
    let mut block = [0u8; 8];
    TdesEde2::new(key.into()).encrypt_block((&mut block).into());
    [block[0], block[1], block[2], block[3]]
}

/// One terminal's working keys, from its last sign-in.
#[derive(Clone)]
pub struct WorkingKeys {
    pub pin: PinKey,
    pub mac: MacKey,
}

impl Drop for WorkingKeys {
    fn drop(&mut self) {
        self.pin.zeroize();
    }
}

impl std::fmt::Debug for WorkingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkingKeys(..)")
    }
}

impl WorkingKeys {
    /// New random keys: what a host makes at each sign-in.
    pub fn random() -> WorkingKeys {
        WorkingKeys {
            pin: rand::random(),
            mac: MacKey::from_bytes(rand::random()),
        }
    }

    /// Field 62 of the sign-in answer: both keys under `tmk`.
    pub fn field62(&self, tmk: &MasterKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&tmk.wrap(&self.pin));
        out.extend_from_slice(&tmk.wrap(&self.mac.bytes()));
        out
    }

    /// The keys in an 0810's field 62, each checked against its check
    /// value: 20 bytes a key (double length, or single length in a double
    /// place), or 12 (single length, 24 bytes in all).
    pub fn from_field62(field: &[u8], tmk: &MasterKey) -> Result<WorkingKeys, String> {
        let place = match field.len() {
            24 => 12,
            40 | 60 => 20,
            n => {
                return Err(format!(
                    "field 62 of the sign-in answer is {n} bytes; the working keys take 40 (PIN and MAC key), 60 (and a track key) or 24 (single-length PIN and MAC key)"
                ))
            }
        };
        let pin = tmk.unwrap(&field[..place], "PIN key")?;
        let mac = tmk.unwrap(&field[place..2 * place], "MAC key")?;
        if field.len() == 60 {
            tmk.unwrap(&field[40..60], "track key")?;
        }
        Ok(WorkingKeys {
            pin: *pin,
            mac: MacKey::from_bytes(*mac),
        })
    }
}

/// The terminal master keys of the shop's acquirer terminal ids.
///
/// As a file (`acquirer_master_keys`), one terminal per line: its acquirer
/// terminal id, the key as 32 hex digits, and the key's check value as the
/// acquirer printed it (6 or 8 hex digits), which is checked; `#` starts a
/// comment. Only the hub's user may read the file.
#[derive(Clone, Default)]
pub struct MasterKeys(BTreeMap<String, MasterKey>);

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(t, k)| (t, k.check_value())))
            .finish()
    }
}

impl MasterKeys {
    pub fn get(&self, terminal: &str) -> Option<&MasterKey> {
        self.0.get(terminal)
    }

    pub fn insert(&mut self, terminal: &str, key: MasterKey) {
        self.0.insert(terminal.to_string(), key);
    }

    pub fn terminals(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parse(text: &str) -> Result<MasterKeys, String> {
        let mut keys = MasterKeys::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = |why: String| format!("line {}: {why}", n + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            let [terminal, key, check] = words[..] else {
                return Err(at(
                    "a line is a terminal id, its master key (32 hex digits) and the key's check value"
                        .into(),
                ));
            };
            check_terminal(terminal).map_err(at)?;
            let key = parse_key(key).map_err(|e| at(format!("terminal {terminal}: {e}")))?;
            check_matches(&key, check).map_err(|e| at(format!("terminal {terminal}: {e}")))?;
            if keys.0.insert(terminal.to_string(), key).is_some() {
                return Err(at(format!("terminal {terminal} has two lines")));
            }
        }
        Ok(keys)
    }

    /// Reads a key file, refusing one that anyone but its owner (and its
    /// group, read only: the hub's, when root owns the file) may read.
    pub fn load(path: &Path) -> Result<MasterKeys, String> {
        let shown = path.display();
        let text = crate::store::read_private(path)?;
        let keys = MasterKeys::parse(&text).map_err(|e| format!("{shown}, {e}"))?;
        if keys.is_empty() {
            return Err(format!("{shown} holds no terminal master key"));
        }
        Ok(keys)
    }

    /// The file's text: each terminal, its key and its check value.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::from(
            "# Terminal master keys: acquirer terminal id, key, check value. Keep secret.\n",
        ));
        for (terminal, key) in &self.0 {
            out.push_str(&format!(
                "{terminal} {} {}\n",
                hex::encode_upper(*key.0),
                key.check_value()
            ));
        }
        out
    }

    /// Writes the file, readable by its owner alone, replacing it whole.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        crate::store::write_private(path, self.to_text().as_bytes())
    }
}

/// An acquirer terminal id as field 41 carries it: 1 to 8 letters or digits.
pub fn check_terminal(terminal: &str) -> Result<(), String> {
    if terminal.is_empty() || terminal.len() > 8 || !terminal.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "{terminal:?} is not an acquirer terminal id (1 to 8 letters or digits)"
        ));
    }
    Ok(())
}

/// The master keys the link signs in with, and the file that keeps them:
/// the owner may enter a key on the page while the hub runs, and the next
/// sign-in of its terminal uses it.
pub struct KeyFile {
    /// `None`: kept in memory only (the simulated acquirer's, tests').
    path: Option<std::path::PathBuf>,
    keys: std::sync::Mutex<MasterKeys>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", *self.lock())
    }
}

impl KeyFile {
    pub fn new(keys: MasterKeys, path: Option<std::path::PathBuf>) -> KeyFile {
        KeyFile {
            path,
            keys: std::sync::Mutex::new(keys),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MasterKeys> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, terminal: &str) -> Option<MasterKey> {
        self.lock().get(terminal).cloned()
    }

    /// Each terminal that has a key, with the key's check value.
    pub fn check_values(&self) -> Vec<(String, String)> {
        let keys = self.lock();
        keys.0.iter().map(|(t, k)| (t.clone(), k.check_value())).collect()
    }

    /// The first terminal (by id) that has a key.
    pub fn first_terminal(&self) -> Option<String> {
        self.lock().terminals().next().map(str::to_string)
    }

    /// Keeps `key` as `terminal`'s master key: in the file first (replaced
    /// whole, synced), then for the link's next sign-in.
    pub fn enter(&self, terminal: &str, key: MasterKey) -> Result<(), String> {
        check_terminal(terminal)?;
        let mut keys = self.lock();
        let mut next = keys.clone();
        next.insert(terminal, key);
        if let Some(path) = &self.path {
            next.save(path)?;
        }
        *keys = next;
        Ok(())
    }
}

fn parse_key(hex_key: &str) -> Result<MasterKey, String> {
    let bytes = Zeroizing::new(hex::decode(hex_key).map_err(|_| "a key is 32 hex digits".to_string())?);
    let key: [u8; 16] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "a key is 32 hex digits (16 bytes)".to_string())?;
    Ok(MasterKey::from_bytes(key))
}

/// Checks `key` against the check value `expected` (6 or 8 hex digits).
fn check_matches(key: &MasterKey, expected: &str) -> Result<(), String> {
    let full = hex::encode_upper(check_value(&key.0));
    let expected = expected.to_ascii_uppercase();
    if !matches!(expected.len(), 6 | 8) || !full.starts_with(&expected) {
        return Err(format!(
            "the key's check value is {}, not {expected}: a digit was mistyped",
            key.check_value()
        ));
    }
    Ok(())
}

/// A key component refused: which one (1 or 2), and whether it was its check
/// value that did not match (rather than the component not being a key).
#[derive(Debug, thiserror::Error)]
#[error("component {component}: {detail}")]
pub struct ComponentError {
    pub component: usize,
    pub mistyped_check: bool,
    pub detail: String,
}

/// A master key from the two components an acquirer sends separately (to
/// two people), each checked against its own check value: the key is their
/// XOR.
pub fn combine(parts: [(&str, &str); 2]) -> Result<MasterKey, ComponentError> {
    let mut key = Zeroizing::new([0u8; 16]);
    for (n, (component, check)) in parts.iter().enumerate() {
        let refused = |mistyped_check: bool| {
            move |detail: String| ComponentError {
                component: n + 1,
                mistyped_check,
                detail,
            }
        };
        let part = parse_key(component.trim()).map_err(refused(false))?;
        check_matches(&part, check.trim()).map_err(refused(true))?;
        for (k, p) in key.iter_mut().zip(part.0.iter()) {
            *k ^= p;
        }
    }
    Ok(MasterKey::from_bytes(*key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_keys_travel_under_the_master_key_and_come_back_checked() {
        let tmk = MasterKey::random();
        let keys = WorkingKeys::random();
        let field = keys.field62(&tmk);
        assert_eq!(field.len(), 40);
        assert!(
            !field.windows(16).any(|w| w == keys.pin),
            "the PIN key is not in clear"
        );
        let back = WorkingKeys::from_field62(&field, &tmk).unwrap();
        assert_eq!((back.pin, back.mac.bytes()), (keys.pin, keys.mac.bytes()));
        let e = WorkingKeys::from_field62(&field, &MasterKey::random()).unwrap_err();
        assert!(e.contains("PIN key's check value does not match"), "{e}");
        for at in [3, 18, 25, 39] {
            let mut bad = field.clone();
            bad[at] ^= 0x01;
            assert!(
                WorkingKeys::from_field62(&bad, &tmk).is_err(),
                "byte {at} changed"
            );
        }
        assert!(WorkingKeys::from_field62(&field[..24], &tmk).is_err());
        assert!(WorkingKeys::from_field62(&field[..30], &tmk).is_err());
    }

    #[test]
    fn single_length_working_keys_as_openssl_builds_them_are_single_des() {
        use crate::acquirer::iso8583::mac::tests::openssl;
        // Single DES, ECB: in OpenSSL 3 it is in the legacy provider.
        let des = |key: &[u8], data: &[u8]| {
            crate::acquirer::iso8583::mac::tests::openssl_with(
                &["-des-ecb", "-provider", "legacy", "-provider", "default"],
                key,
                &[],
                data,
            )
        };
        for _ in 0..4 {
            let (tmk, pin, mac): ([u8; 16], [u8; 8], [u8; 8]) =
                (rand::random(), rand::random(), rand::random());
            let tmk_key = MasterKey::from_bytes(tmk);
            // Each key under the master key, then the first four bytes of
            // zeros under the key itself with single DES.
            let wrapped = |key: &[u8; 8]| {
                let mut w = openssl("-des-ede", &tmk, &[], key);
                w.extend(&des(key, &[0; 8])[..4]);
                w
            };
            // 24 bytes: both keys single length.
            let short = [wrapped(&pin), wrapped(&mac)].concat();
            let keys = WorkingKeys::from_field62(&short, &tmk_key).unwrap();
            assert_eq!(keys.pin, [pin, pin].concat()[..]);
            let data = b"0200 a message to seal, 32 bytes";
            // The CUP MAC with K‖K is the single-DES one OpenSSL computes.
            let folded: Vec<u8> = data.chunks(8).fold(vec![0u8; 8], |acc, c| {
                acc.iter().zip(c).map(|(a, b)| a ^ b).collect()
            });
            let expanded = hex::encode_upper(&folded).into_bytes();
            let first = des(&mac, &expanded[..8]);
            let xored: Vec<u8> = first.iter().zip(&expanded[8..]).map(|(a, b)| a ^ b).collect();
            let last = des(&mac, &xored);
            assert_eq!(
                keys.mac.cup_mac(data).to_vec(),
                hex::encode_upper(&last).as_bytes()[..8].to_vec()
            );
            // 40 bytes with a single-length MAC key in a double-length place:
            // its 8 bytes under the master key, then 8 that are not key.
            let mut padded = openssl("-des-ede", &tmk, &[], &[mac, [0; 8]].concat());
            padded.extend(&des(&mac, &[0; 8])[..4]);
            let double_pin: [u8; 16] = rand::random();
            let mut field = openssl("-des-ede", &tmk, &[], &double_pin);
            field.extend(&openssl("-des-ede", &double_pin, &[], &[0; 8])[..4]);
            field.extend(padded);
            let keys = WorkingKeys::from_field62(&field, &tmk_key).unwrap();
            assert_eq!(
                (keys.pin, keys.mac.bytes()),
                (double_pin, [mac, mac].concat().try_into().unwrap())
            );
            // A check value that fits neither is refused.
            let mut bad = short.clone();
            bad[23] ^= 1;
            assert!(WorkingKeys::from_field62(&bad, &tmk_key).is_err());
        }
    }

    #[test]
    fn field_62_as_openssl_builds_it_gives_the_keys() {
        use crate::acquirer::iso8583::mac::tests::openssl;
        for _ in 0..4 {
            let (tmk, pin, mac): ([u8; 16], [u8; 16], [u8; 16]) =
                (rand::random(), rand::random(), rand::random());
            // Each key under the master key (two-key triple DES, ECB), then
            // the first four bytes of zeros under the key itself.
            let mut field = Vec::new();
            for key in [pin, mac] {
                field.extend(openssl("-des-ede", &tmk, &[], &key));
                field.extend(&openssl("-des-ede", &key, &[], &[0; 8])[..4]);
            }
            let keys = WorkingKeys::from_field62(&field, &MasterKey::from_bytes(tmk)).unwrap();
            assert_eq!((keys.pin, keys.mac.bytes()), (pin, mac));
            assert_eq!(keys.field62(&MasterKey::from_bytes(tmk)), field);
        }
    }

    #[test]
    fn a_key_file_is_checked_line_by_line() {
        let tmk = MasterKey::from_bytes([0x11; 16]);
        let line = format!("10000042 {} {}", "11".repeat(16), tmk.check_value());
        let keys = MasterKeys::parse(&format!("# the bank's letter\n\n{line}  # T0\n")).unwrap();
        assert_eq!(keys.terminals().collect::<Vec<_>>(), vec!["10000042"]);
        let again = MasterKeys::parse(&keys.to_text()).unwrap();
        assert_eq!(again.get("10000042").unwrap().check_value(), tmk.check_value());
        let e = MasterKeys::parse(&format!("10000042 {} 000000", "11".repeat(16))).unwrap_err();
        assert!(e.contains("line 1") && e.contains("mistyped"), "{e}");
        let e = MasterKeys::parse(&format!("{line}\n{line}")).unwrap_err();
        assert!(e.contains("line 2") && e.contains("two lines"), "{e}");
        assert!(MasterKeys::parse("10000042 1234 ABCDEF").is_err());
        assert!(MasterKeys::parse(&format!("TOOLONGID1 {} X", "11".repeat(16))).is_err());
        assert!(!format!("{keys:?}").contains("1111"), "keys are never shown");
    }

    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let mut keys = MasterKeys::default();
        keys.insert("T1", MasterKey::random());
        keys.save(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(MasterKeys::load(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(MasterKeys::load(&path).is_ok(), "its group may read it");
        for mode in [0o644, 0o660, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = MasterKeys::load(&path).unwrap_err();
            assert!(e.contains("chmod 600"), "{mode:o}: {e}");
        }
    }

    #[test]
    fn two_components_make_the_key_and_each_is_checked() {
        let (a, b) = ([0x5Au8; 16], [0x0Fu8; 16]);
        let kcv = |k: [u8; 16]| MasterKey::from_bytes(k).check_value();
        let key = combine([(&hex::encode(a), &kcv(a)), (&hex::encode(b), &kcv(b))]).unwrap();
        assert_eq!(key.check_value(), kcv([0x55; 16]));
        let e = combine([(&hex::encode(a), &kcv(b)), (&hex::encode(b), &kcv(b))]).unwrap_err();
        assert!(e.to_string().starts_with("component 1"), "{e}");
        assert_eq!((e.component, e.mistyped_check), (1, true));
        let e = combine([(&hex::encode(a), &kcv(a)), ("0F0F", &kcv(b))]).unwrap_err();
        assert_eq!((e.component, e.mistyped_check), (2, false));
    }
}
