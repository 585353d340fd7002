//! Putting a backup back (`tallybox restore FILE`), with the hub stopped: the
//! file is checked first (a whole SQLite database, a schema this build
//! knows, an audit chain that holds), what is there now is kept beside the
//! backups, and the backup replaces it in one rename. The restore is the
//! restored history's next audit record. The key files a backup kept on the
//! hub holds are put back with it (the one there now is kept too). What the
//! backup lacks against the
//! history's witness is then said, and the hub keeps sales stopped until the
//! owner accepts it, as after any loss.
//!
//! From the owner's page, on a hub that runs: the backup is checked at
//! once, and the order is written down ([`order`]); the hub then stops, and
//! at its next start (systemd's), before the store opens, [`ordered`] puts
//! the backup back the same way and writes how it ended for the page
//! ([`last`]). A power cut in between leaves the order to be done at the
//! start after.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use super::lock::DataLock;
use super::{audit, backups, now_utc, schema, witness, Store, StoreError};

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Where the database that was replaced is kept.
    pub kept: Option<PathBuf>,
    /// The restored history: audit records and transactions.
    pub records: u64,
    pub transactions: i64,
    /// What it lacks against the witness, if anything.
    pub lost: Option<witness::Lost>,
}

/// Checks `from` and makes it the database of `dir`; `by` says who asked,
/// for the audit record.
pub fn restore(dir: &Path, from: &Path, by: &str) -> Result<Restored, StoreError> {
    let lock = DataLock::take(dir)?;
    restore_held(dir, from, by, &lock)
}

/// [`restore`], by the holder of `dir`'s lock (the hub's recovery page).
pub fn restore_held(dir: &Path, from: &Path, by: &str, _held: &DataLock) -> Result<Restored, StoreError> {
    let records = check(from)?;
    let kept = keep_current(dir)?;
    let io = |error| data_dir(dir, error);
    let incoming = dir.join("tallybox.db.restoring");
    std::fs::copy(from, &incoming).map_err(io)?;
    take_keys(&incoming, dir)?;
    std::fs::File::open(&incoming)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    for name in ["tallybox.db-wal", "tallybox.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    std::fs::rename(&incoming, dir.join("tallybox.db")).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    let store = Store::open(dir)?;
    let detail = serde_json::json!({
        "from": from.file_name().map(|n| n.to_string_lossy().into_owned()),
        "records": records,
        "by": by,
    });
    audit::append(
        store.connection(),
        &now_utc(),
        "restored",
        None,
        &detail.to_string(),
    )?;
    let transactions = store
        .connection()
        .query_row("SELECT count(*) FROM transactions", [], |r| r.get(0))?;
    Ok(Restored {
        kept,
        records: records + 1,
        transactions,
        lost: store.history_lost()?,
    })
}

/// A backup fit to restore: its audit records.
pub fn check(from: &Path) -> Result<u64, StoreError> {
    let refuse = |why: String| {
        StoreError::Restore(format!(
            "{} cannot be restored: {why}; nothing was changed",
            from.display()
        ))
    };
    let conn = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| refuse(format!("it does not open ({e})")))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| refuse(format!("it is not a Tallybox database ({e})")))?;
    if integrity != "ok" {
        return Err(refuse(format!("it is damaged ({integrity})")));
    }
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| refuse(e.to_string()))?;
    if version == 0 || version > schema::latest() {
        return Err(refuse(format!(
            "its schema is {version}, and this build knows 1 to {}",
            schema::latest()
        )));
    }
    audit::verify(&conn).map_err(|e| refuse(format!("its audit log does not hold ({e})")))
}

/// Puts back the key files the backup copy at `incoming` holds, synced,
/// and takes their table out of it.
fn take_keys(incoming: &Path, dir: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(incoming)?;
    let held: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [backups::KEYS_TABLE],
        |r| r.get(0),
    )?;
    if !held {
        return Ok(());
    }
    let keys: Vec<(String, Vec<u8>)> = conn
        .prepare(&format!("SELECT name, value FROM {}", backups::KEYS_TABLE))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, value) in keys {
        if !backups::KEY_FILES.contains(&name.as_str()) {
            continue;
        }
        tallybox_platform::fsync::write_synced(&dir.join(&name), &value).map_err(|error| {
            StoreError::DataDir {
                dir: dir.display().to_string(),
                error,
            }
        })?;
    }
    conn.execute_batch(&format!("DROP TABLE {}", backups::KEYS_TABLE))?;
    Ok(())
}

/// Copies the database there now (whatever its state) into `backups/`.
fn keep_current(dir: &Path) -> Result<Option<PathBuf>, StoreError> {
    if !dir.join("tallybox.db").exists() {
        return Ok(None);
    }
    let stamp = tallybox_platform::clock::now().format("%Y%m%d-%H%M%S");
    let kept = dir.join("backups").join(format!("replaced-{stamp}"));
    let io = |error| StoreError::DataDir {
        dir: kept.display().to_string(),
        error,
    };
    std::fs::create_dir_all(&kept).map_err(io)?;
    for name in ["tallybox.db", "tallybox.db-wal"]
        .into_iter()
        .chain(backups::KEY_FILES)
    {
        if dir.join(name).exists() {
            std::fs::copy(dir.join(name), kept.join(name)).map_err(io)?;
        }
    }
    Ok(Some(kept))
}

/// A restore ordered from the page, done at the hub's next start.
const ORDERED: &str = "restore-ordered.json";
/// How the last restore ordered from the page ended.
const LAST: &str = "restore-last.json";

/// A restore the owner ordered: a file in `backups/`, who, when (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub file: String,
    pub by: String,
    pub at: String,
}

/// How an ordered restore ended: the order, when it was done, and what the
/// restored history holds (or why nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub order: Order,
    pub done_at: String,
    pub transactions: Option<i64>,
    /// What the backup lacks against the witness, in words.
    pub lost: Option<String>,
    pub error: Option<String>,
}

/// Checks the backup `file` (a name in `dir`'s `backups/`) and orders it put
/// back at the hub's next start: its audit records.
pub fn order(dir: &Path, file: &str, by: &str) -> Result<u64, StoreError> {
    let records = check(&dir.join("backups").join(file))?;
    let order = Order {
        file: file.to_string(),
        by: by.to_string(),
        at: now_utc(),
    };
    write_json(dir, ORDERED, &order)?;
    Ok(records)
}

/// At the hub's start, before its store opens: puts back the backup the
/// page ordered, if any, and says how it ended (also in [`last`]).
pub fn ordered(dir: &Path) -> Result<Option<Outcome>, StoreError> {
    let order: Order = match std::fs::read(dir.join(ORDERED)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        read => {
            let bytes = read.map_err(|error| data_dir(dir, error))?;
            match serde_json::from_slice(&bytes) {
                Ok(order) => order,
                Err(e) => {
                    // Not asked again at every start: the page can order anew.
                    std::fs::remove_file(dir.join(ORDERED)).map_err(|error| data_dir(dir, error))?;
                    return Err(StoreError::Restore(format!(
                        "the restore ordered in {} does not read ({e}); nothing was changed",
                        dir.join(ORDERED).display()
                    )));
                }
            }
        }
    };
    // Another process on this data directory: the order waits for a start
    // that can do it.
    let lock = DataLock::take(dir)?;
    let from = dir.join("backups").join(&order.file);
    let done = restore_held(dir, &from, &format!("the web page ({})", order.by), &lock);
    let outcome = Outcome {
        order,
        done_at: now_utc(),
        transactions: done.as_ref().ok().map(|d| d.transactions),
        lost: done
            .as_ref()
            .ok()
            .and_then(|d| d.lost.as_ref().map(|l| l.to_string())),
        error: done.as_ref().err().map(|e| e.to_string()),
    };
    write_json(dir, LAST, &outcome)?;
    std::fs::remove_file(dir.join(ORDERED)).map_err(|error| data_dir(dir, error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| data_dir(dir, error))?;
    Ok(Some(outcome))
}

/// How the last restore ordered from the page ended, if one was.
pub fn last(dir: &Path) -> Option<Outcome> {
    serde_json::from_slice(&std::fs::read(dir.join(LAST)).ok()?).ok()
}

fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Restore(e.to_string()))?;
    tallybox_platform::fsync::write_synced(&dir.join(name), &bytes).map_err(|error| data_dir(dir, error))
}

fn data_dir(dir: &Path, error: std::io::Error) -> StoreError {
    StoreError::DataDir {
        dir: dir.display().to_string(),
        error,
    }
}
