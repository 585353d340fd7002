//! The audit log: every state change of money is one row, hashed together with
//! the row before it. Editing or deleting a past row breaks the chain, and
//! [`verify`] says where — evidence a shop can hand over after a fraud.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn digest(prev: &str, seq: i64, at: &str, event: &str, txn_id: Option<i64>, detail: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        at,
        event,
        &txn_id.map(|t| t.to_string()).unwrap_or_default(),
        detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends one record inside the caller's transaction (or savepoint), so the
/// change and its record commit together or not at all.
pub fn append(
    tx: &Connection,
    at: &str,
    event: &str,
    txn_id: Option<i64>,
    detail: &str,
) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let hash = digest(&prev, seq, at, event, txn_id, detail);
    super::exec(
        tx,
        "INSERT INTO audit_log (seq, at, event, txn_id, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq, at, event, txn_id, detail, prev, hash],
    )?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("audit record {seq} does not match its hash: it was altered")]
    Altered { seq: i64 },
    #[error("audit record {seq} does not follow the one before it: records were removed or reordered")]
    Broken { seq: i64 },
    #[error("cannot read the audit log: {0}")]
    Read(String),
}

/// Walks the whole chain; returns how many records it holds.
pub fn verify(conn: &Connection) -> Result<u64, AuditError> {
    let read = |e: rusqlite::Error| AuditError::Read(e.to_string());
    let mut stmt = conn
        .prepare("SELECT seq, at, event, txn_id, detail, prev_hash, hash FROM audit_log ORDER BY seq")
        .map_err(read)?;
    let mut rows = stmt.query([]).map_err(read)?;
    let (mut expected_prev, mut expected_seq, mut count) = (GENESIS.to_string(), 1i64, 0u64);
    while let Some(row) = rows.next().map_err(read)? {
        let seq: i64 = row.get(0).map_err(read)?;
        let at: String = row.get(1).map_err(read)?;
        let event: String = row.get(2).map_err(read)?;
        let txn_id: Option<i64> = row.get(3).map_err(read)?;
        let detail: String = row.get(4).map_err(read)?;
        let prev: String = row.get(5).map_err(read)?;
        let hash: String = row.get(6).map_err(read)?;
        if seq != expected_seq || prev != expected_prev {
            return Err(AuditError::Broken { seq });
        }
        if digest(&prev, seq, &at, &event, txn_id, &detail) != hash {
            return Err(AuditError::Altered { seq });
        }
        expected_prev = hash;
        expected_seq += 1;
        count += 1;
    }
    Ok(count)
}

/// One audit record, as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Record {
    pub seq: i64,
    pub at: String,
    pub event: String,
    pub txn_id: Option<i64>,
    pub detail: String,
    pub hash: String,
}

/// Every record of the chain, oldest first.
pub fn records(conn: &Connection) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare("SELECT seq, at, event, txn_id, detail, hash FROM audit_log ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(Record {
            seq: r.get(0)?,
            at: r.get(1)?,
            event: r.get(2)?,
            txn_id: r.get(3)?,
            detail: r.get(4)?,
            hash: r.get(5)?,
        })
    })?;
    rows.collect()
}
