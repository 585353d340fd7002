//! Batch numbers as a China UnionPay host assigns them. The host numbers
//! each terminal's batches itself and says, in its sign-in answer (0810,
//! field 60.2), which batch it holds open for the terminal. The hub numbers
//! one batch for the whole shop (its checkouts settle together), so on the
//! link each terminal's messages carry the host's number for the hub's
//! batch: the number the host gave at the terminal's latest sign-in when the
//! first message of that batch went out, kept from then on in a small file
//! beside the database. A settlement repeated after a restart, a batch
//! upload and a void of an earlier sale then name the batch the host knows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Each terminal's batches, hub's number → host's number.
type Book = BTreeMap<String, BTreeMap<u32, u32>>;

/// The batches a terminal keeps in the book: the open one and those a void
/// or refund may still name.
const KEPT: usize = 16;

pub struct HostBatches {
    /// Where the book is kept; `None` keeps it in memory only (tests).
    path: Option<PathBuf>,
    book: Mutex<Book>,
}

impl std::fmt::Debug for HostBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBatches").field("path", &self.path).finish()
    }
}

impl HostBatches {
    /// The book in `path` (none yet is an empty one). A file that cannot be
    /// read is set aside with a warning: the next sign-ins fill it again.
    pub fn open(path: Option<PathBuf>) -> HostBatches {
        let book = match &path {
            None => Book::new(),
            Some(p) => match std::fs::read(p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Book::new(),
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "cannot read the acquirer's batch numbers; the next sign-ins give them again");
                    Book::new()
                }
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    tracing::warn!(file = %p.display(), error = %e, "the acquirer's batch numbers are damaged; the next sign-ins give them again");
                    Book::new()
                }),
            },
        };
        HostBatches {
            path,
            book: Mutex::new(book),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host's number for the hub's `batch` of `terminal`: the one kept,
    /// or else `signed_in` (the batch the host held open at the terminal's
    /// latest sign-in), kept from now on. With neither, the hub's own.
    pub fn number(&self, terminal: &str, batch: u32, signed_in: Option<u32>) -> u32 {
        let mut book = self.book();
        if let Some(&host) = book.get(terminal).and_then(|b| b.get(&batch)) {
            return host;
        }
        let Some(host) = signed_in else {
            return batch;
        };
        let batches = book.entry(terminal.to_string()).or_default();
        batches.insert(batch, host);
        while batches.len() > KEPT {
            batches.pop_first();
        }
        tracing::info!(
            terminal,
            batch,
            host_batch = host,
            "the acquirer numbers this batch"
        );
        self.keep(&book);
        host
    }

    /// The host's number for an earlier `batch` of `terminal` (a void's or
    /// refund's original): the one kept, else the hub's own.
    pub fn known(&self, terminal: &str, batch: u32) -> u32 {
        self.book()
            .get(terminal)
            .and_then(|b| b.get(&batch))
            .copied()
            .unwrap_or(batch)
    }

    /// Forgets the batch of `terminal` that the host numbers `host`: the
    /// host refused it (`77`), so its next sign-in numbers it again.
    pub fn forget(&self, terminal: &str, host: u32) {
        let mut book = self.book();
        if let Some(batches) = book.get_mut(terminal) {
            batches.retain(|_, h| *h != host);
            self.keep(&book);
        }
    }

    /// Writes the book, whole and synced. A failure is logged: the numbers
    /// stay right while the hub runs.
    fn keep(&self, book: &Book) {
        let Some(path) = &self.path else { return };
        let written = serde_json::to_vec(book)
            .map_err(|e| e.to_string())
            .and_then(|bytes| crate::store::write_private(path, &bytes));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot keep the acquirer's batch numbers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_number_its_first_message_took_across_sign_ins_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acquirer-batches.json");
        let batches = HostBatches::open(Some(path.clone()));
        assert_eq!(batches.number("T1", 3, None), 3, "never signed in: the hub's own");
        assert_eq!(batches.number("T1", 3, Some(417)), 417);
        assert_eq!(
            batches.number("T1", 3, Some(418)),
            417,
            "the host moved on after settling it: a repeat names the batch it settled"
        );
        assert_eq!(batches.number("T2", 3, Some(90)), 90, "each terminal its own");
        assert_eq!(batches.number("T1", 4, Some(418)), 418);

        let again = HostBatches::open(Some(path.clone()));
        assert_eq!(again.known("T1", 3), 417, "kept over a restart");
        assert_eq!(again.known("T2", 3), 90);
        assert_eq!(again.known("T1", 2), 2, "not known: the hub's own");
        again.forget("T1", 418);
        assert_eq!(
            again.number("T1", 4, Some(1)),
            1,
            "a forgotten batch is numbered again"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(
            HostBatches::open(Some(path)).known("T1", 3),
            3,
            "a damaged book starts empty"
        );
    }

    #[test]
    fn a_terminal_keeps_its_latest_batches_only() {
        let batches = HostBatches::open(None);
        for b in 1..=40 {
            batches.number("T1", b, Some(b + 100));
        }
        assert_eq!(batches.book()["T1"].len(), KEPT);
        assert_eq!(batches.known("T1", 40), 140);
        assert_eq!(batches.known("T1", 1), 1);
    }
}
