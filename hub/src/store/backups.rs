//! Backups nobody has to remember: after each settlement and once a night
//! the hub copies its database into `backups/` (`auto-TIME.db`, by SQLite's
//! `VACUUM INTO`, on a connection of its own), then proves the copy: it
//! opens, `integrity_check` says ok and its audit chain holds. A copy that
//! fails the proof is deleted and said. The automatic copies are rotated:
//! the newest is always kept, older ones go once they pass [`KEEP`] or the
//! size budget. `tallybox restore` puts one back.

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

/// What a backup is called while it is written and proven.
const PARTIAL: &str = ".partial-";

/// Removes what a backup cut short left behind.
fn remove_partials(dir: &Path) -> std::io::Result<()> {
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
fn rotate(dir: &Path, budget: u64) -> std::io::Result<()> {
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
}
