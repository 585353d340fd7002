//! What a damaged database file still holds of its transactions, read the
//! way SQLite's `.recover` reads one: page by page, whatever its b-trees and
//! schema say. Each table-leaf page of the file, and of its write-ahead log
//! (the log's pages win, the latest frame last), is decoded from the file
//! format; a record shaped as a row of `transactions` (its first columns: an
//! id, a request id, a checkout, a kind and a status Tallybox writes) is
//! taken, the newest copy of each row by its `updated_at`.
//!
//! (Debian's `sqlite3` cannot do this: its `.recover` needs the
//! `sqlite_dbpage` table, which Debian's build leaves out.)
//!
//! The recovery page shows what this finds against the newest backup;
//! nothing of it enters the books, which only a restore and the checkouts'
//! own records fill again.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One transaction as the damaged file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    pub rowid: i64,
    pub request_id: String,
    pub terminal_id: String,
    pub kind: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub batch_no: i64,
    pub trace_no: i64,
    pub local_time: String,
    pub updated_at: String,
}

/// Reads the transactions in `db` (and its `-wal` beside it) into a new
/// database at `into` (table `transactions`, by rowid, the newest copy of
/// each row), a page at a time, so a store of any size fits in memory; the
/// number of rows found.
pub fn salvage(db: &Path, into: &Path) -> Result<i64, String> {
    let io = |e: std::io::Error| format!("{}: {e}", db.display());
    let file = File::open(db).map_err(io)?;
    let mut header = [0u8; 100];
    file.read_exact_at(&mut header, 0).map_err(io)?;
    let page_size = match [header[16], header[17]] {
        [1, 0] => 65_536,
        [hi, lo] if u16::from_be_bytes([hi, lo]).is_power_of_two() && u16::from_be_bytes([hi, lo]) >= 512 => {
            u16::from_be_bytes([hi, lo]) as u64
        }
        _ => 4096,
    };
    let in_file = file.metadata().map_err(io)?.len() / page_size;
    let mut wal_name = db.as_os_str().to_owned();
    wal_name.push("-wal");
    let wal = File::open(&wal_name).ok();
    let in_wal = wal.as_ref().map(|w| wal_frames(w, page_size)).unwrap_or_default();
    let last = in_wal.keys().copied().max().unwrap_or(0).max(in_file as u32);

    let _ = std::fs::remove_file(into);
    let mut out = rusqlite::Connection::open(into).map_err(|e| e.to_string())?;
    out.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         CREATE TABLE transactions (rowid INTEGER PRIMARY KEY, request_id TEXT, terminal_id TEXT, kind TEXT, \
         status TEXT, amount INTEGER, currency TEXT, batch_no INTEGER, trace_no INTEGER, local_time TEXT, \
         updated_at TEXT);",
    )
    .map_err(|e| e.to_string())?;
    let tx = out.transaction().map_err(|e| e.to_string())?;
    {
        let mut keep = tx
            .prepare(
                "INSERT INTO transactions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (rowid) DO UPDATE SET request_id = excluded.request_id, terminal_id = excluded.terminal_id, \
                 kind = excluded.kind, status = excluded.status, amount = excluded.amount, currency = excluded.currency, \
                 batch_no = excluded.batch_no, trace_no = excluded.trace_no, local_time = excluded.local_time, \
                 updated_at = excluded.updated_at WHERE excluded.updated_at > transactions.updated_at",
            )
            .map_err(|e| e.to_string())?;
        let mut page = vec![0u8; page_size as usize];
        for number in 1..=last {
            let read = match in_wal.get(&number) {
                Some(at) => wal.as_ref().map(|w| w.read_exact_at(&mut page, *at)),
                None => Some(file.read_exact_at(&mut page, (number as u64 - 1) * page_size)),
            };
            if !matches!(read, Some(Ok(()))) {
                continue;
            }
            let header = if number == 1 { 100 } else { 0 };
            for (rowid, record) in leaf_cells(&page, header) {
                let Some(r) = transaction(rowid, record) else {
                    continue;
                };
                keep.execute(rusqlite::params![
                    r.rowid,
                    r.request_id,
                    r.terminal_id,
                    r.kind,
                    r.status,
                    r.amount,
                    r.currency,
                    r.batch_no,
                    r.trace_no,
                    r.local_time,
                    r.updated_at
                ])
                .map_err(|e| e.to_string())?;
            }
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    out.query_row("SELECT count(*) FROM transactions", [], |r| r.get(0))
        .map_err(|e| e.to_string())
}

/// The frames of the log's current generation (salts as in its header):
/// each page's newest frame, by where its page starts in the log.
fn wal_frames(wal: &File, page_size: u64) -> HashMap<u32, u64> {
    let mut frames = HashMap::new();
    let mut header = [0u8; 32];
    if wal.read_exact_at(&mut header, 0).is_err() {
        return frames;
    }
    let len = wal.metadata().map_or(0, |m| m.len());
    let mut frame = [0u8; 24];
    let mut at = 32u64;
    while at + 24 + page_size <= len && wal.read_exact_at(&mut frame, at).is_ok() {
        if frame[8..16] != header[16..24] {
            break;
        }
        frames.insert(
            u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]),
            at + 24,
        );
        at += 24 + page_size;
    }
    frames
}

/// A SQLite varint at `at`: its value and length.
fn varint(bytes: &[u8], at: usize) -> Option<(i64, usize)> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *bytes.get(at + i)?;
        if i == 8 {
            return Some((((value << 8) | byte as u64) as i64, 9));
        }
        value = (value << 7) | (byte & 0x7f) as u64;
        if byte & 0x80 == 0 {
            return Some((value as i64, i + 1));
        }
    }
    None
}

/// The cells of a table-leaf page (type 13) whose payload lies on the page:
/// rowid and payload.
fn leaf_cells(page: &[u8], header: usize) -> Vec<(i64, &[u8])> {
    let mut cells = Vec::new();
    if page.get(header) != Some(&13) {
        return cells;
    }
    let count = match page.get(header + 3..header + 5) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]) as usize,
        _ => return cells,
    };
    // A payload larger than this spills to overflow pages: not read.
    let local_max = page.len().saturating_sub(35);
    for i in 0..count {
        let at = header + 8 + 2 * i;
        let Some(&[hi, lo]) = page.get(at..at + 2) else {
            break;
        };
        let cell = u16::from_be_bytes([hi, lo]) as usize;
        let Some((size, a)) = varint(page, cell) else {
            continue;
        };
        let Some((rowid, b)) = varint(page, cell + a) else {
            continue;
        };
        let start = cell + a + b;
        match usize::try_from(size) {
            Ok(size) if size <= local_max => {
                if let Some(payload) = page.get(start..start + size) {
                    cells.push((rowid, payload));
                }
            }
            _ => {}
        }
    }
    cells
}

/// One column's value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Other,
}

/// The values of a record.
fn values(record: &[u8]) -> Option<Vec<Value>> {
    let (header_len, n) = varint(record, 0)?;
    let header_len = usize::try_from(header_len).ok()?;
    let (mut at, mut body) = (n, header_len);
    let mut out = Vec::new();
    while at < header_len {
        let (serial, n) = varint(record, at)?;
        at += n;
        let (value, len) = match serial {
            0 => (Value::Null, 0),
            1..=6 => {
                let len = [0, 1, 2, 3, 4, 6, 8][serial as usize];
                let bytes = record.get(body..body + len)?;
                let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
                for b in bytes {
                    v = (v << 8) | *b as i64;
                }
                (Value::Int(v), len)
            }
            7 => (Value::Other, 8),
            8 => (Value::Int(0), 0),
            9 => (Value::Int(1), 0),
            s if s >= 13 && s % 2 == 1 => {
                let len = ((s - 13) / 2) as usize;
                let text = std::str::from_utf8(record.get(body..body + len)?).ok()?;
                (Value::Text(text.to_string()), len)
            }
            s if s >= 12 => (Value::Other, ((s - 12) / 2) as usize),
            _ => return None,
        };
        body += len;
        if body > record.len() {
            return None;
        }
        out.push(value);
    }
    Some(out)
}

/// A record shaped as a row of `transactions` (the columns of its first
/// schema, which later ones only extend).
fn transaction(rowid: i64, record: &[u8]) -> Option<Row> {
    let v = values(record)?;
    if v.len() < 20 || v[0] != Value::Null {
        return None;
    }
    let text = |i: usize| match &v[i] {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    };
    let int = |i: usize| match &v[i] {
        Value::Int(n) => Some(*n),
        _ => None,
    };
    let kind = text(3).filter(|k| ["sale", "void", "refund", "balance"].contains(&k.as_str()))?;
    let status = text(4)
        .filter(|s| ["pending", "approved", "declined", "failed", "reversed"].contains(&s.as_str()))?;
    Some(Row {
        rowid,
        request_id: text(1)?,
        terminal_id: text(2)?,
        kind,
        status,
        amount: int(5)?,
        currency: text(6)?,
        batch_no: int(12)?,
        trace_no: int(13)?,
        local_time: text(17)?,
        updated_at: text(19)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::sale;
    use crate::store::Store;

    #[test]
    fn transactions_are_read_from_a_file_whose_b_tree_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let sold: Vec<_> = (1..=300).map(|n| sale(&mut store, 100 + n)).collect();
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        // Five more, in the WAL only.
        let late: Vec<_> = (1..=5).map(|n| sale(&mut store, 9000 + n)).collect();
        let db = dir.path().join("tallybox.db");
        let (copy, wal) = (dir.path().join("copy.db"), dir.path().join("copy.db-wal"));
        std::fs::copy(&db, &copy).unwrap();
        std::fs::copy(dir.path().join("tallybox.db-wal"), &wal).unwrap();
        drop(store);

        let out = dir.path().join("salvaged.db");
        let read = |out: &Path| -> Vec<(String, String, i64, i64)> {
            let conn = rusqlite::Connection::open(out).unwrap();
            let mut stmt = conn
                .prepare("SELECT request_id, status, amount, trace_no FROM transactions ORDER BY rowid")
                .unwrap();
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows
        };
        assert_eq!(salvage(&copy, &out).unwrap(), 305);
        let whole = read(&out);
        assert_eq!(
            whole.last().unwrap(),
            &(late[4].request_id.to_string(), "approved".to_string(), 9005, 305)
        );
        assert_eq!(whole[0].0, sold[0].request_id.to_string());

        // The page the table's b-tree starts from, and the schema's, spoilt.
        let root: u32 = rusqlite::Connection::open(&copy)
            .unwrap()
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'transactions'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let _ = std::fs::remove_file(&wal); // closing the connection checkpointed it
        let mut bytes = std::fs::read(&copy).unwrap();
        let page_size = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
        let at = (root as usize - 1) * page_size;
        bytes[at..at + page_size].fill(0xA5);
        bytes[100..page_size].fill(0xA5);
        std::fs::write(&copy, &bytes).unwrap();
        let broken = rusqlite::Connection::open(&copy)
            .and_then(|c| c.query_row("SELECT count(*) FROM transactions", [], |r| r.get::<_, i64>(0)));
        assert!(broken.is_err(), "SQLite itself cannot read it: {broken:?}");
        assert_eq!(salvage(&copy, &out).unwrap(), 305, "every leaf page is whole");
        assert!(read(&out).iter().all(|r| r.1 == "approved"));
    }
}
