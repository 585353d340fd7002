//! The store's PAN-hash key: 32 random bytes in a file of mode 0600 beside the
//! database, made at first start. The keyed hash lets fraud rules count one
//! card's uses without the card number ever being stored.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub struct PanHasher {
    key: [u8; 32],
}

impl PanHasher {
    pub fn load_or_create(path: &Path) -> std::io::Result<PanHasher> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} is damaged (not 32 bytes); restore it from a backup",
                            path.display()
                        ),
                    )
                })?;
                Ok(PanHasher { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(PanHasher { key })
            }
            Err(e) => Err(e),
        }
    }

    pub fn hash(&self, pan: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(pan.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Writes a file that holds keys, readable by its owner alone, replacing it
/// whole (a crash leaves the old one or the new one, synced).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let partial = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&partial);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&partial, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a file that holds keys, refusing one that anyone but its owner
/// (and its group, read only: the hub's, when root owns the file) may read.
pub fn read_private(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o027 != 0 {
        return Err(format!(
            "{shown} holds keys but others may read or change it (mode {mode:o}): chmod 600 {shown} (or 640, owned by root with the hub's group)"
        ));
    }
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("cannot read {shown}: {e}"))
}
