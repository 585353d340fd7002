//! `tallybox audit verify`: walks the hash-chained audit log and says whether
//! it is intact, or names the first record that was altered, removed or
//! reordered; then compares the database with its history's witness, which
//! sees records lost from the end of the chain (a cut WAL). Exit code 0
//! intact, 1 broken or lost.

use std::path::PathBuf;

use tallybox::store::Store;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditAction {
    /// Check the audit log's hash chain.
    Verify {
        /// The hub's data directory.
        #[arg(long, default_value = "/var/lib/tallybox")]
        data_dir: PathBuf,
    },
}

/// True when the log is intact.
pub fn run(action: AuditAction) -> anyhow::Result<bool> {
    let AuditAction::Verify { data_dir } = action;
    if !data_dir.join("tallybox.db").exists() {
        anyhow::bail!(
            "no Tallybox database in {}; give the hub's --data-dir",
            data_dir.display()
        );
    }
    let store = Store::open(&data_dir)?;
    let keep = "keep this database as evidence (copy the whole data directory) before the hub writes more";
    match store.verify_audit() {
        Ok(records) => println!("audit log intact: {records} records, each chained to the one before"),
        Err(e) => {
            println!("audit log BROKEN: {e}");
            println!("{keep}");
            return Ok(false);
        }
    }
    match store.history_lost()? {
        None => {
            println!("history whole: the database holds everything its witness has seen");
            Ok(true)
        }
        Some(lost) => {
            println!("history LOST: {lost}");
            println!("{keep}");
            Ok(false)
        }
    }
}
