//! The checkout's own record of the approvals it told its cashier of, kept
//! so that the hub can bring back any its database loses (a power cut that
//! cut its WAL, an old backup put back): after each sign-in the checkout
//! sends the hub those of the hub's open batch and later.
//!
//! One JSON line an approval, appended and synced before the slips are
//! queued. A line cut short by a power cut is skipped when read. The file
//! keeps the newest [`KEEP`] approvals: past twice that, it is written anew
//! (synced, then renamed over). It holds what the slip shows (the card
//! masked as printed), never card data or PINs.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tallybox_core::protocol::requests::PrintedEntry;
use tallybox_platform::fsync::write_synced;

/// The approvals kept: more than a long day's at a busy checkout.
pub const KEEP: usize = 2000;

pub struct PrintedRecord {
    path: PathBuf,
    lines: usize,
    /// The newest entries' request ids: an answer taken twice (a recall
    /// after a restart) is recorded once.
    recent: VecDeque<String>,
    /// The highest trace number in the record.
    last_trace: Option<u32>,
}

const RECENT: usize = 64;

impl PrintedRecord {
    pub fn open(dir: &Path) -> io::Result<PrintedRecord> {
        tallybox_platform::fsync::private_dir(dir)?;
        let path = dir.join("printed.jsonl");
        let entries = read(&path)?;
        let recent = entries
            .iter()
            .rev()
            .take(RECENT)
            .rev()
            .map(|e| e.request_id.to_string())
            .collect();
        Ok(PrintedRecord {
            last_trace: entries.iter().map(|e| e.receipt.trace_no).max(),
            lines: entries.len(),
            path,
            recent,
        })
    }

    /// Appends `entry`, synced, unless it is already there.
    pub fn append(&mut self, entry: &PrintedEntry) -> io::Result<()> {
        let id = entry.request_id.to_string();
        if self.recent.contains(&id) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()?;
        self.lines += 1;
        self.last_trace = self.last_trace.max(Some(entry.receipt.trace_no));
        self.recent.push_back(id);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        if self.lines > 2 * KEEP {
            self.compact()?;
        }
        Ok(())
    }

    /// The highest trace number the hub gave an approval in the record.
    pub fn last_trace(&self) -> Option<u32> {
        self.last_trace
    }

    /// The approvals of batch `batch_no` and later, oldest first.
    pub fn since_batch(&self, batch_no: u32) -> io::Result<Vec<PrintedEntry>> {
        Ok(read(&self.path)?
            .into_iter()
            .filter(|e| e.receipt.batch_no >= batch_no)
            .collect())
    }

    /// Keeps the newest [`KEEP`] approvals.
    fn compact(&mut self) -> io::Result<()> {
        let entries = read(&self.path)?;
        let keep = &entries[entries.len().saturating_sub(KEEP)..];
        let mut bytes = Vec::new();
        for entry in keep {
            bytes.extend(serde_json::to_vec(entry).map_err(io::Error::other)?);
            bytes.push(b'\n');
        }
        write_synced(&self.path, &bytes)?;
        self.lines = keep.len();
        Ok(())
    }
}

/// The entries in the file; a line that does not read (cut short by a
/// power cut) is skipped and said.
fn read(path: &Path) -> io::Result<Vec<PrintedEntry>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                tracing::warn!(line = n + 1, error = %e, "a line of the record of printed approvals does not read; skipped")
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::receipt;
    use std::fs;
    use tallybox_core::money::Amount;
    use tallybox_core::protocol::RequestId;

    fn entry(batch_no: u32, trace_no: u32) -> PrintedEntry {
        let mut receipt = receipt(Amount::from_minor(100 * trace_no as u64).unwrap());
        (receipt.batch_no, receipt.trace_no) = (batch_no, trace_no);
        PrintedEntry {
            request_id: RequestId::new(),
            original_trace: None,
            receipt,
        }
    }

    #[test]
    fn approvals_survive_a_restart_once_each_and_a_line_cut_short_is_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (first, second, third) = (entry(1, 1), entry(1, 2), entry(2, 3));
        let mut record = PrintedRecord::open(dir.path()).unwrap();
        record.append(&first).unwrap();
        record.append(&second).unwrap();
        record.append(&first).unwrap(); // the same answer taken again
        let path = dir.path().join("printed.jsonl");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A power cut in the middle of the next line.
        let whole = fs::read(&path).unwrap();
        let mut cut = whole.clone();
        cut.extend_from_slice(&serde_json::to_vec(&third).unwrap()[..40]);
        fs::write(&path, &cut).unwrap();
        let mut record = PrintedRecord::open(dir.path()).unwrap();
        assert_eq!(
            record.since_batch(1).unwrap(),
            vec![first.clone(), second.clone()]
        );
        // The next approval after the restart starts a line of its own.
        fs::write(&path, &whole).unwrap();
        let mut record_again = PrintedRecord::open(dir.path()).unwrap();
        record_again.append(&third).unwrap();
        assert_eq!(record_again.since_batch(2).unwrap(), vec![third.clone()]);
        assert_eq!(record_again.since_batch(1).unwrap().len(), 3);
        assert!(record.since_batch(3).unwrap().is_empty());
        record.append(&second).unwrap(); // still known after the restart
        assert_eq!(record.since_batch(1).unwrap().len(), 3);
    }

    #[test]
    fn the_record_keeps_the_newest_approvals() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = PrintedRecord::open(dir.path()).unwrap();
        let total = 2 * KEEP as u32 + 1;
        for trace in 1..=total {
            record.append(&entry(1, trace)).unwrap();
        }
        let kept = record.since_batch(0).unwrap();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept.last().unwrap().receipt.trace_no, total);
        assert_eq!(kept[0].receipt.trace_no, total - KEEP as u32 + 1);
    }
}
