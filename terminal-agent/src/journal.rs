//! The terminal's only persistent state: the sale it is waiting on, so that a
//! terminal that restarts mid-sale asks the hub what became of it instead of
//! forgetting a customer who may have been charged. It holds the request id
//! and what the screen said, never card data.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use tallybox_core::protocol::RequestId;
use tallybox_platform::fsync::write_synced;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub request_id: RequestId,
    /// What the cashier saw, e.g. "SALE CNY 12.50".
    pub title: String,
}

pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        tallybox_platform::fsync::private_dir(dir)?;
        Ok(Journal {
            path: dir.join("in-flight.json"),
        })
    }

    /// The sale left in flight by the last run. A damaged file is reported and
    /// kept aside rather than silently ignored.
    pub fn load(&self) -> std::io::Result<Option<InFlight>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match serde_json::from_slice(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(e) => {
                fs::rename(&self.path, self.path.with_extension("damaged"))?;
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Writes durably (temp file, fsync, rename, fsync dir) before the request leaves.
    pub fn record(&self, entry: &InFlight) -> std::io::Result<()> {
        write_synced(
            &self.path,
            &serde_json::to_vec(entry).map_err(std::io::Error::other)?,
        )
    }

    pub fn clear(&self) -> std::io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_clears() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A folder anyone may read, as a checkout run by hand makes it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.load().unwrap(), None);
        let entry = InFlight {
            request_id: RequestId::new(),
            title: "SALE CNY 1.00".into(),
        };
        journal.record(&entry).unwrap();
        // Only its owner reads it, and the folder it is in.
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("in-flight.json")), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(Journal::open(dir.path()).unwrap().load().unwrap(), Some(entry));
        journal.clear().unwrap();
        assert_eq!(journal.load().unwrap(), None);
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("in-flight.json"), b"{half").unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        assert!(journal.load().is_err());
        assert!(dir.path().join("in-flight.damaged").exists());
    }
}
