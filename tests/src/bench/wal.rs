//! Where a store's writes go: the frames of its write-ahead log, each a
//! whole page, counted by the table or index the page belongs to. Read from
//! a hub killed under load, so the log still holds what the last commits
//! wrote since the last checkpoint started it over.

use std::collections::BTreeMap;
use std::path::Path;

/// The log's frames since it last started over, by table or index.
pub struct Frames {
    pub page_size: u32,
    /// Commits among them.
    pub commits: u64,
    /// Frames (pages written) per table or index, most first.
    pub by_tree: Vec<(String, u64)>,
}

impl Frames {
    pub fn total(&self) -> u64 {
        self.by_tree.iter().map(|(_, n)| n).sum()
    }
}

/// A copy of `db` and its log, opened: what a hub starting on them would
/// read, the originals left as they are. The copy lasts as long as the
/// directory returned.
pub fn open_copy(db: &Path) -> anyhow::Result<(tempfile::TempDir, rusqlite::Connection)> {
    let copy = tempfile::tempdir()?;
    let copied = copy.path().join("copy.db");
    std::fs::copy(db, &copied)?;
    std::fs::copy(db.with_extension("db-wal"), copied.with_extension("db-wal"))?;
    let conn = rusqlite::Connection::open(&copied)?;
    Ok((copy, conn))
}

/// The committed frames of `db`'s log (`db-wal`), by the b-tree each page
/// is in (SQLite's `dbstat`, read on a copy of both files).
pub fn frames(db: &Path) -> anyhow::Result<Frames> {
    let wal_path = db.with_extension("db-wal");
    let wal = std::fs::read(&wal_path)?;
    anyhow::ensure!(wal.len() >= 32, "{} has no header", wal_path.display());
    let be = |at: usize| u32::from_be_bytes(wal[at..at + 4].try_into().unwrap());
    let page_size = be(8);
    let salts = (be(16), be(20));
    let frame = 24 + page_size as usize;
    let mut pages: Vec<u32> = Vec::new();
    let mut committed = 0;
    let mut commits = 0;
    let mut at = 32;
    // Frames of this round of the log carry its salts; after them come
    // leftovers of an earlier round. Frames after the last commit frame
    // are not committed.
    while at + frame <= wal.len() && (be(at + 8), be(at + 12)) == salts {
        pages.push(be(at));
        if be(at + 4) != 0 {
            committed = pages.len();
            commits += 1;
        }
        at += frame;
    }
    pages.truncate(committed);

    let (_copy, conn) = open_copy(db)?;
    let mut tree_of: BTreeMap<u32, String> = BTreeMap::new();
    let mut rows = conn.prepare("SELECT name, pageno FROM dbstat")?;
    for row in rows.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))? {
        let (name, page) = row?;
        tree_of.insert(page, name);
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for page in pages {
        let name = match page {
            1 => "(database header)".to_string(),
            p => tree_of.get(&p).cloned().unwrap_or_else(|| "(free pages)".into()),
        };
        *counts.entry(name).or_default() += 1;
    }
    let mut by_tree: Vec<(String, u64)> = counts.into_iter().collect();
    by_tree.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(Frames {
        page_size,
        commits,
        by_tree,
    })
}
