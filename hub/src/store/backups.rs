//! Backups nobody has to remember: after each settlement and once a night
//! the hub copies its database into `backups/` (`auto-TIME.db`, by SQLite's
//! `VACUUM INTO`, on a connection of its own), then proves the copy: it
//! opens, `integrity_check` says ok and its audit chain holds. A copy that
//! fails the proof is deleted and said. The automatic copies are rotated:
//! the newest is always kept, older ones go once they pass [`KEEP`] or the
//! size budget. `tallybox restore` puts one back.
//!
//! A backup kept on the hub also holds the key of the card-number hashes
//! (`pan-hash.key`, in a table `backup_keys` that a restore takes out
//! again), so a restore brings back a key that was lost or damaged and the
//! same-card rules go on matching the cards before it. A backup that
//! leaves the hub (the page's download) never holds it: with the key, the
//! stored first six and last four digits leave only 100 000 numbers to try
//! against each hash.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{audit, Store, StoreError};

/// The most automatic backups kept.
pub const KEEP: usize = 14;
const PREFIX: &str = "auto-";

/// A proven backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    /// Audit records in it.
    pub records: u64,
}

impl Store {
    /// Copies the database into `backups/`, proves the copy, and rotates the
    /// automatic copies within `budget` bytes.
    pub fn automatic_backup(&self, budget: u64) -> Result<Backup, StoreError> {
        let path = self.new_backup_path(PREFIX)?;
        let dir = self.data_dir().join("backups");
        let io = |error| StoreError::DataDir {
            dir: dir.display().to_string(),
            error,
        };
        // Written and proven under another name, then renamed: a file called
        // `auto-…` is always whole and proven, whoever looks (the recovery
        // page, `tallybox restore`) and whenever (a crash mid-copy leaves
        // only a partial file, removed by the next backup).
        remove_partials(&dir).map_err(io)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = dir.join(format!("{PARTIAL}{name}"));
        self.backup_to(&partial)?;
        add_keys(&partial, &self.data_dir())?;
        let records = match prove(&partial) {
            Ok(records) => records,
            Err(why) => {
                let _ = std::fs::remove_file(&partial);
                return Err(StoreError::Restore(format!(
                    "the backup {} failed its check ({why}); deleted",
                    path.display()
                )));
            }
        };
        std::fs::rename(&partial, &path).map_err(io)?;
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
        let bytes = std::fs::metadata(&path).map_err(io)?.len();
        rotate(&dir, budget).map_err(io)?;
        Ok(Backup { path, bytes, records })
    }
}

/// The table of keys in a backup kept on the hub.
pub(super) const KEYS_TABLE: &str = "backup_keys";
/// The key files a backup kept on the hub holds.
pub(super) const KEY_FILES: [&str; 1] = ["pan-hash.key"];

/// Adds the data directory's key files to the backup at `copy`.
pub(super) fn add_keys(copy: &Path, data_dir: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(copy)?;
    conn.execute_batch(&format!(
        "CREATE TABLE {KEYS_TABLE} (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
    ))?;
    for name in KEY_FILES {
        let value = std::fs::read(data_dir.join(name)).map_err(|error| StoreError::DataDir {
            dir: data_dir.display().to_string(),
            error,
        })?;
        conn.execute(
            &format!("INSERT INTO {KEYS_TABLE} (name, value) VALUES (?1, ?2)"),
            rusqlite::params![name, value],
        )?;
    }
    Ok(())
}

/// What a backup is called while it is written and proven.
pub(crate) const PARTIAL: &str = ".partial-";

/// Removes what a backup cut short left behind.
pub(super) fn remove_partials(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Opens a backup read-only and checks it whole: its audit records.
pub fn prove(path: &Path) -> Result<u64, String> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if integrity != "ok" {
        return Err(format!("integrity check: {integrity}"));
    }
    audit::verify(&conn).map_err(|e| e.to_string())
}

/// The automatic backups in `dir`, newest first, with their sizes.
pub fn automatic(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".db") {
            found.push((entry.path(), entry.metadata()?.len()));
        }
    }
    found.sort_by_key(|(path, _)| std::cmp::Reverse(taken(path)));
    Ok(found)
}

/// When a backup was taken, from its name (`auto-YYYYMMDD-HHMMSS[-N].db`):
/// the time, then the count within that second.
fn taken(path: &Path) -> (String, u32) {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = name.trim_start_matches(PREFIX);
    match stamp.get(15..).and_then(|n| n.strip_prefix('-')) {
        Some(n) => (stamp[..15].to_string(), n.parse().unwrap_or(0)),
        None => (stamp.to_string(), 1),
    }
}

/// Deletes the oldest automatic backups past [`KEEP`] or past `budget`
/// bytes in all; the newest always stays.
pub(super) fn rotate(dir: &Path, budget: u64) -> std::io::Result<()> {
    let mut total = 0u64;
    for (i, (path, bytes)) in automatic(dir)?.into_iter().enumerate() {
        total += bytes;
        if i > 0 && (i >= KEEP || total > budget) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backup_is_proven_and_the_oldest_go_past_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.freeze("T1", "a test").unwrap();
        let first = store.automatic_backup(u64::MAX).unwrap();
        assert!(first.records >= 1 && first.bytes > 0);
        assert_eq!(prove(&first.path), Ok(first.records));
        let backups = dir.path().join("backups");
        // Older copies from other days, then a budget of two copies' size.
        for day in ["20261101-030000", "20261102-030000", "20261103-030000"] {
            std::fs::copy(&first.path, backups.join(format!("auto-{day}.db"))).unwrap();
        }
        let newest = store.automatic_backup(first.bytes * 2).unwrap();
        let kept: Vec<PathBuf> = automatic(&backups).unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[0], newest.path, "the newest stays");
        // A damaged copy fails its proof.
        std::fs::write(&kept[1], b"SQLite format 3\0 but not really").unwrap();
        assert!(prove(&kept[1]).is_err());
    }

    fn holds_keys(path: &Path) -> bool {
        Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_schema WHERE name = ?1",
                [KEYS_TABLE],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_backup_kept_on_the_hub_brings_back_a_lost_card_hash_key_and_a_download_holds_none() {
        use tallybox_core::card::{test_cards, EntryMode};
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let sold = crate::store::tests::sale(&mut store, 1250);
        let backup = store.automatic_backup(u64::MAX).unwrap();
        let key_file = dir.path().join("pan-hash.key");
        let key = std::fs::read(&key_file).unwrap();
        let download = dir.path().join("download.db");
        store.backup_to(&download).unwrap();
        assert!(holds_keys(&backup.path));
        assert!(!holds_keys(&download), "a copy that leaves the hub holds no key");
        drop(store);

        // The SD card spoils the key file: the store cannot open.
        std::fs::write(&key_file, b"torn").unwrap();
        assert!(Store::open(dir.path()).is_err());
        super::super::restore::restore(dir.path(), &backup.path, "a test").unwrap();
        assert_eq!(std::fs::read(&key_file).unwrap(), key);
        let store = Store::open(dir.path()).unwrap();
        assert!(!holds_keys(&dir.path().join("tallybox.db")));
        // The same card hashes as it did: the same-card rules go on.
        let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
        let kept: String = store
            .connection()
            .query_row(
                "SELECT pan_hash FROM transactions WHERE id = ?1",
                [sold.id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(store.hasher.hash(card.pan.digits()), kept);
        assert!(!kept.is_empty());
    }
}
