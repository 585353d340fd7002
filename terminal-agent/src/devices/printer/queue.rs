//! Slips not yet on paper, kept on disk so a restart loses none. Written whole
//! to a temporary file, synced, then renamed over the old one: a crash leaves
//! either the old queue or the new one.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::slip::Slip;

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
}

impl PrintQueue {
    pub fn open(dir: &Path) -> io::Result<PrintQueue> {
        fs::create_dir_all(dir)?;
        let path = dir.join("print-queue.json");
        let slips: VecDeque<QueuedSlip> = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(slips) => slips,
                Err(e) => {
                    // Keep the damaged file for a person to look at; start empty.
                    let aside = dir.join("print-queue.damaged");
                    tracing::error!(error = %e, "print queue unreadable; kept aside as print-queue.damaged");
                    fs::rename(&path, aside)?;
                    VecDeque::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => VecDeque::new(),
            Err(e) => return Err(e),
        };
        let next_id = slips.iter().map(|s| s.id + 1).max().unwrap_or(1);
        Ok(PrintQueue { path, slips, next_id })
    }

    pub fn push(&mut self, slip: Slip) -> io::Result<()> {
        self.slips.push_back(QueuedSlip {
            id: self.next_id,
            slip,
        });
        self.next_id += 1;
        self.save()
    }

    pub fn front(&self) -> Option<&QueuedSlip> {
        self.slips.front()
    }

    pub fn pop_front(&mut self) -> io::Result<()> {
        self.slips.pop_front();
        self.save()
    }

    pub fn len(&self) -> usize {
        self.slips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slips.is_empty()
    }

    fn save(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(&self.slips).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
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
