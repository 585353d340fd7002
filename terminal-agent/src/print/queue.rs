//! Slips not yet on paper, kept on disk so a restart loses none. Written whole
//! to a temporary file, synced, then renamed over the old one: a crash leaves
//! either the old queue or the new one.
//!
//! The queue also remembers the keys of the last slips it took for a sale
//! (the sale's request id): a checkout that crashes after queueing a sale's
//! slips but before forgetting the sale recalls it at restart, and its slips
//! are then not queued a second time.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use tallybox_core::slip::Slip;
use tallybox_platform::fsync::write_synced;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedSlip {
    pub id: u64,
    #[serde(flatten)]
    pub slip: Slip,
}

pub struct PrintQueue {
    path: PathBuf,
    slips: VecDeque<QueuedSlip>,
    next_id: u64,
    recent: VecDeque<String>,
}

/// How many sales' keys the queue remembers.
const RECENT: usize = 64;

/// The file: the slips, and the keys of the sales queued last.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Saved {
    Keyed {
        slips: VecDeque<QueuedSlip>,
        recent: VecDeque<String>,
    },
    /// The first format, slips only.
    Plain(VecDeque<QueuedSlip>),
}

#[derive(Serialize)]
struct SavedRef<'a> {
    slips: &'a VecDeque<QueuedSlip>,
    recent: &'a VecDeque<String>,
}

impl PrintQueue {
    pub fn open(dir: &Path) -> io::Result<PrintQueue> {
        tallybox_platform::fsync::private_dir(dir)?;
        let path = dir.join("print-queue.json");
        let (slips, recent) = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Saved::Keyed { slips, recent }) => (slips, recent),
                Ok(Saved::Plain(slips)) => (slips, VecDeque::new()),
                Err(e) => {
                    // Keep the damaged file for a person to look at; start empty.
                    let aside = dir.join("print-queue.damaged");
                    tracing::error!(error = %e, "print queue unreadable; kept aside as print-queue.damaged");
                    fs::rename(&path, aside)?;
                    (VecDeque::new(), VecDeque::new())
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (VecDeque::new(), VecDeque::new()),
            Err(e) => return Err(e),
        };
        let next_id = slips.iter().map(|s| s.id + 1).max().unwrap_or(1);
        Ok(PrintQueue {
            path,
            slips,
            next_id,
            recent,
        })
    }

    pub fn push(&mut self, slip: Slip) -> io::Result<()> {
        self.add(slip);
        self.save()
    }

    /// Queues a sale's slips in one write, unless the sale `key` was queued
    /// before; whether they were queued now.
    pub fn push_once(&mut self, key: &str, slips: Vec<Slip>) -> io::Result<bool> {
        if self.recent.iter().any(|k| k == key) {
            return Ok(false);
        }
        for slip in slips {
            self.add(slip);
        }
        self.recent.push_back(key.to_string());
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.save()?;
        Ok(true)
    }

    fn add(&mut self, slip: Slip) {
        self.slips.push_back(QueuedSlip {
            id: self.next_id,
            slip,
        });
        self.next_id += 1;
    }

    pub fn front(&self) -> Option<&QueuedSlip> {
        self.slips.front()
    }

    pub fn pop_front(&mut self) -> io::Result<()> {
        self.slips.pop_front();
        self.save()
    }

    /// Takes slip `id` off the front once it is on paper (a no-op if another
    /// hand already did).
    pub fn printed(&mut self, id: u64) -> io::Result<()> {
        if self.slips.front().is_some_and(|q| q.id == id) {
            self.pop_front()?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.slips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slips.is_empty()
    }

    fn save(&self) -> io::Result<()> {
        let saved = SavedRef {
            slips: &self.slips,
            recent: &self.recent,
        };
        write_synced(&self.path, &serde_json::to_vec(&saved).map_err(io::Error::other)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_slips_survive_a_restart_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = PrintQueue::open(dir.path()).unwrap();
        let slip = |text: &str, qr: Option<&str>| Slip {
            lines: vec![text.to_string()],
            qr: qr.map(str::to_string),
        };
        q.push(slip("one", None)).unwrap();
        q.push(slip("two", Some("http://tallybox.local/r/X"))).unwrap();
        q.pop_front().unwrap();
        q.push(slip("three", None)).unwrap();
        drop(q);
        let q = PrintQueue::open(dir.path()).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(
            q.front().unwrap().slip,
            slip("two", Some("http://tallybox.local/r/X"))
        );
    }

    #[test]
    fn a_sales_slips_are_queued_once_even_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let slip = |text: &str| Slip {
            lines: vec![text.to_string()],
            qr: None,
        };
        let mut q = PrintQueue::open(dir.path()).unwrap();
        let copies = vec![slip("merchant"), slip("cardholder")];
        assert!(q.push_once("sale-1", copies.clone()).unwrap());
        assert!(!q.push_once("sale-1", copies.clone()).unwrap());
        assert_eq!(q.len(), 2);
        drop(q);
        let mut q = PrintQueue::open(dir.path()).unwrap();
        assert!(!q.push_once("sale-1", copies.clone()).unwrap(), "remembered");
        q.printed(1).unwrap();
        q.printed(1).unwrap(); // twice: still only the one slip off
        assert_eq!(q.len(), 1);
        assert!(q.push_once("sale-2", copies).unwrap());
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn a_queue_written_before_keys_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("print-queue.json"),
            br#"[{"id":4,"lines":["old"]}]"#,
        )
        .unwrap();
        let mut q = PrintQueue::open(dir.path()).unwrap();
        assert_eq!(q.front().unwrap().slip.lines, ["old"]);
        q.push(Slip {
            lines: vec!["new".into()],
            qr: None,
        })
        .unwrap();
        assert_eq!(PrintQueue::open(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_damaged_queue_is_kept_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("print-queue.json"), b"{not json").unwrap();
        let q = PrintQueue::open(dir.path()).unwrap();
        assert!(q.is_empty());
        assert_eq!(
            fs::read(dir.path().join("print-queue.damaged")).unwrap(),
            b"{not json"
        );
    }
}
