//! The history's witness: a small file beside the database that says how far
//! the history had come (the audit chain's last record and hash, the newest
//! transaction, the open batch and each checkout's next trace number). The
//! store thread writes it, synced, after each commit and before anyone hears
//! of that commit, so the database can never be behind it unless something
//! below SQLite lost what it had written: a cut WAL, a worn SD card, an old
//! copy put back. At start the database is compared with it; a database
//! behind its witness stops sales until the owner restores a backup or
//! accepts the loss (recorded in the audit chain), and trace numbers are
//! never issued twice.
//!
//! The file holds two 4 KiB slots written in turn, each with its own
//! generation and checksum: a write cut by a power loss spoils one slot at
//! most, and the other still holds the previous witness.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FILE: &str = "history.witness";
const SLOT: usize = 4096;
const MAGIC: &[u8; 8] = b"TBWITNES";
/// Magic, generation, payload length, checksum.
const HEADER: usize = 8 + 8 + 4 + 32;

/// The audit event that accepts a loss the witness showed.
pub const ACCEPTED: &str = "history_loss_accepted";

/// How far the history had come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    /// The audit chain's last record, its hash and time.
    pub seq: i64,
    pub hash: String,
    pub at: String,
    /// The newest transaction's id.
    pub last_txn: i64,
    pub batch_no: u32,
    /// Each checkout's next trace number.
    pub traces: BTreeMap<String, u32>,
}

impl Witness {
    /// The history as the database has it now.
    pub fn of(conn: &Connection) -> rusqlite::Result<Witness> {
        let (seq, hash, at) = conn
            .prepare_cached("SELECT seq, hash, at FROM audit_log ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .unwrap_or((0, super::audit::GENESIS.to_string(), String::new()));
        let last_txn = conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM transactions")?
            .query_row([], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached("SELECT id, next_trace FROM terminals")?;
        let traces = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Witness {
            seq,
            hash,
            at,
            last_txn,
            batch_no: super::open_batch(conn)?,
            traces,
        })
    }
}

/// The database is behind (or beside) its witness: history was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub witnessed: Witness,
    /// The audit chain's last record on disk, and its time.
    pub on_disk_seq: i64,
    pub on_disk_at: String,
    pub on_disk_last_txn: i64,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.witnessed;
        let since = if self.on_disk_at.is_empty() {
            "the database is empty".to_string()
        } else {
            format!(
                "the database ends at record {} ({} UTC)",
                self.on_disk_seq, self.on_disk_at
            )
        };
        if self.on_disk_seq < w.seq {
            write!(
                f,
                "{since}, but the hub had recorded up to record {} ({} UTC): records {}–{} are missing",
                w.seq,
                w.at,
                self.on_disk_seq + 1,
                w.seq
            )?;
        } else {
            write!(
                f,
                "{since}, but its record {} is not the one the hub wrote ({} UTC): this is another copy of the history",
                w.seq, w.at
            )?;
        }
        match w.last_txn - self.on_disk_last_txn {
            1 => write!(f, "; transaction {} is missing", w.last_txn)?,
            n if n > 1 => write!(
                f,
                "; transactions {}–{} are missing",
                self.on_disk_last_txn + 1,
                w.last_txn
            )?,
            _ => {}
        }
        Ok(())
    }
}

/// Compares the database with `witness`: `Some` when the record the witness
/// names is missing or different, and no accepted loss names it.
pub fn compare(conn: &Connection, witness: &Witness) -> rusqlite::Result<Option<Lost>> {
    if witness.seq == 0 {
        return Ok(None);
    }
    let hash: Option<String> = conn
        .prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?
        .query_row([witness.seq], |r| r.get(0))
        .optional()?;
    if hash.as_deref() == Some(witness.hash.as_str()) || accepted(conn, witness)? {
        return Ok(None);
    }
    let now = Witness::of(conn)?;
    Ok(Some(Lost {
        witnessed: witness.clone(),
        on_disk_seq: now.seq,
        on_disk_at: now.at,
        on_disk_last_txn: now.last_txn,
    }))
}

fn accepted(conn: &Connection, witness: &Witness) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM audit_log WHERE event = ?1 AND json_extract(detail, '$.witness_hash') = ?2 LIMIT 1",
    )?
    .query_row(params![ACCEPTED, witness.hash], |_| Ok(()))
    .optional()
    .map(|found| found.is_some())
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("cannot read the history witness {FILE}: {0}")]
    Io(#[from] std::io::Error),
    #[error("the history witness {FILE} is damaged (neither copy in it is whole)")]
    Damaged,
}

/// The newest whole witness in `dir`; `None` when there is no file yet.
pub fn read(dir: &Path) -> Result<Option<Witness>, WitnessError> {
    let bytes = match std::fs::read(dir.join(FILE)) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    match newest(&bytes) {
        Some((_, w)) => Ok(Some(w)),
        None if bytes.iter().all(|b| *b == 0) => Ok(None),
        None => Err(WitnessError::Damaged),
    }
}

/// The whole slot with the highest generation.
fn newest(bytes: &[u8]) -> Option<(u64, Witness)> {
    bytes
        .chunks(SLOT)
        .filter_map(parse_slot)
        .max_by_key(|(generation, _)| *generation)
}

fn parse_slot(slot: &[u8]) -> Option<(u64, Witness)> {
    if slot.len() < HEADER || &slot[..8] != MAGIC {
        return None;
    }
    let generation = u64::from_le_bytes(slot[8..16].try_into().ok()?);
    let len = u32::from_le_bytes(slot[16..20].try_into().ok()?) as usize;
    let payload = slot.get(HEADER..HEADER + len)?;
    if checksum(generation, payload) != slot[20..52] {
        return None;
    }
    Some((generation, serde_json::from_slice(payload).ok()?))
}

fn checksum(generation: u64, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(generation.to_le_bytes());
    h.update(payload);
    h.finalize().into()
}

/// The witness file, open for the store thread's writes.
pub struct WitnessFile {
    file: File,
    generation: u64,
    /// What is on file now.
    current: Option<Witness>,
}

impl WitnessFile {
    /// Opens (or creates) the file in `dir`; a damaged one is written anew.
    pub fn open(dir: &Path) -> std::io::Result<WitnessFile> {
        let path = dir.join(FILE);
        let created = !path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        if created {
            File::open(dir)?.sync_all()?;
        }
        let bytes = std::fs::read(&path)?;
        let (generation, current) = match newest(&bytes) {
            Some((generation, w)) => (generation, Some(w)),
            None => (0, None),
        };
        Ok(WitnessFile {
            file,
            generation,
            current,
        })
    }

    /// The witness on file when it was opened or last written.
    pub fn current(&self) -> Option<&Witness> {
        self.current.as_ref()
    }

    /// Writes `witness` over the older slot and syncs it; nothing when the
    /// history has not moved since the last write.
    pub fn write(&mut self, witness: &Witness) -> std::io::Result<()> {
        if self.current.as_ref() == Some(witness) {
            return Ok(());
        }
        let payload = serde_json::to_vec(witness).map_err(std::io::Error::other)?;
        if HEADER + payload.len() > SLOT {
            return Err(std::io::Error::other(format!(
                "the witness of {} checkouts does not fit its {SLOT}-byte slot",
                witness.traces.len()
            )));
        }
        let generation = self.generation + 1;
        let mut slot = vec![0u8; SLOT];
        slot[..8].copy_from_slice(MAGIC);
        slot[8..16].copy_from_slice(&generation.to_le_bytes());
        slot[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        slot[20..52].copy_from_slice(&checksum(generation, &payload));
        slot[HEADER..HEADER + payload.len()].copy_from_slice(&payload);
        let offset = (generation % 2) * SLOT as u64;
        self.file.write_all_at(&slot, offset)?;
        self.file.sync_data()?;
        self.generation = generation;
        self.current = Some(witness.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn witness(seq: i64) -> Witness {
        Witness {
            seq,
            hash: format!("{seq:064}"),
            at: "2026-12-04T10:00:00".into(),
            last_txn: seq,
            batch_no: 1,
            traces: [("T1".to_string(), seq as u32 + 1)].into(),
        }
    }

    #[test]
    fn the_newest_write_is_read_back_and_a_torn_slot_leaves_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None, "no file yet");
        let mut file = WitnessFile::open(dir.path()).unwrap();
        file.write(&witness(1)).unwrap();
        file.write(&witness(2)).unwrap();
        file.write(&witness(3)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(witness(3)));
        // A power cut in the middle of writing generation 3's slot (slot 1).
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT + HEADER + 5] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(witness(2)));
        // Reopened, the next write goes over the torn slot, not the good one.
        let mut file = WitnessFile::open(dir.path()).unwrap();
        assert_eq!(file.current(), Some(&witness(2)));
        file.write(&witness(4)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(witness(4)));
        std::fs::write(&path, vec![0x55; 2 * SLOT]).unwrap();
        assert!(matches!(read(dir.path()), Err(WitnessError::Damaged)));
    }
}
