//! A copy of the backups off the SD card: while a USB stick is mounted at
//! the hub's `backup_usb_dir` (`/media/tallybox-usb` on the image, where
//! the image mounts a stick the owner plugs in, `sync`), the hub writes a
//! proven copy of its database onto it, in `tallybox-backups/`, after each
//! automatic backup and as soon as a stick appears that lacks the newest.
//!
//! The folder counts as a stick only while it is a file system of its own
//! (another device than the folder it is in), so an empty mount point
//! never fills the SD card. Each copy is written under another name,
//! synced, proven (`integrity_check` and the audit chain) and renamed, so a
//! stick pulled out mid-copy holds whole copies only; the oldest go past
//! [`backups::KEEP`] or the budget. A copy holds no key file: the stick
//! leaves the hub. What happened last is kept in `usb-copy.json` in the
//! data directory, for the troubleshooting page.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{backups, Store, StoreError};

/// The folder on the stick.
pub const FOLDER: &str = "tallybox-backups";
/// How long after a failed copy the next is tried.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(600);
/// What happened last, in the data directory.
pub const STATUS_FILE: &str = "usb-copy.json";

/// The last copy to a stick, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copied {
    /// Where the stick was mounted.
    pub stick: PathBuf,
    /// When (UTC, RFC 3339) and which file; or the failure.
    pub at: String,
    pub file: Option<String>,
    pub error: Option<String>,
}

/// Whether `dir` is a mounted file system of its own: a stick plugged in.
pub fn plugged(dir: &Path) -> bool {
    let (Ok(own), Some(parent)) = (std::fs::metadata(dir), dir.parent()) else {
        return false;
    };
    std::fs::metadata(parent).is_ok_and(|p| own.is_dir() && own.dev() != p.dev())
}

/// The last copy's record in `data_dir`, if a stick was ever used.
pub fn last(data_dir: &Path) -> Option<Copied> {
    let bytes = std::fs::read(data_dir.join(STATUS_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the stick at `stick` lacks a copy as new as the newest automatic
/// backup (or has none of this hub's at all).
pub fn wants_copy(data_dir: &Path, stick: &Path) -> bool {
    let Some(last) = last(data_dir) else {
        return true;
    };
    let on_stick = last
        .file
        .as_ref()
        .is_some_and(|f| last.stick == stick && stick.join(FOLDER).join(f).exists());
    let newest_backup = backups::automatic(&data_dir.join("backups"))
        .ok()
        .and_then(|found| found.first().map(|(path, _)| path.clone()))
        .and_then(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
    let copied_at = chrono::DateTime::parse_from_rfc3339(&last.at)
        .ok()
        .map(std::time::SystemTime::from);
    // A failed copy (a full or read-only stick) is tried again after a while.
    let failed_lately = last.error.is_some()
        && last.stick == stick
        && copied_at.is_some_and(|at| at.elapsed().is_ok_and(|e| e < RETRY_AFTER));
    if failed_lately {
        return false;
    }
    let behind = match (newest_backup, copied_at) {
        (Some(backup), Some(copied)) => backup > copied,
        (Some(_), None) => true,
        (None, _) => false,
    };
    !on_stick || behind
}

impl Store {
    /// Writes a proven copy of the database onto the stick at `stick` and
    /// keeps what happened in [`STATUS_FILE`]; the copies there are rotated
    /// within `budget` bytes.
    pub fn copy_to_stick(&self, stick: &Path, budget: u64) -> Result<PathBuf, StoreError> {
        let result = self.write_to_stick(stick, budget);
        let record = Copied {
            stick: stick.to_path_buf(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            file: result
                .as_ref()
                .ok()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
            error: result.as_ref().err().map(|e| e.to_string()),
        };
        let json = serde_json::to_vec(&record).unwrap_or_default();
        tallybox_platform::fsync::write_synced(&self.data_dir().join(STATUS_FILE), &json).map_err(
            |error| StoreError::DataDir {
                dir: self.data_dir().display().to_string(),
                error,
            },
        )?;
        result
    }

    fn write_to_stick(&self, stick: &Path, budget: u64) -> Result<PathBuf, StoreError> {
        let folder = stick.join(FOLDER);
        let io = |error| StoreError::DataDir {
            dir: folder.display().to_string(),
            error,
        };
        std::fs::create_dir_all(&folder).map_err(io)?;
        backups::remove_partials(&folder).map_err(io)?;
        let stamp = tallybox_platform::clock::now().format("%Y%m%d-%H%M%S");
        let name = (1..)
            .map(|n| match n {
                1 => format!("auto-{stamp}.db"),
                n => format!("auto-{stamp}-{n}.db"),
            })
            .find(|name| !folder.join(name).exists())
            .expect("a free name");
        let (partial, path) = (
            folder.join(format!("{}{name}", backups::PARTIAL)),
            folder.join(&name),
        );
        self.vacuum_into(&partial)?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        if let Err(why) = backups::prove(&partial) {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Restore(format!(
                "the copy on the USB stick failed its check ({why}); deleted"
            )));
        }
        std::fs::rename(&partial, &path).map_err(io)?;
        std::fs::File::open(&folder)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        backups::rotate(&folder, budget).map_err(io)?;
        Ok(path)
    }
}
