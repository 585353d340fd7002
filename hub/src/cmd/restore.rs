//! `tallybox restore FILE`: puts a backup (the page's download, or one in the
//! data directory's `backups/`) back, with the hub stopped. The database it
//! replaces is kept; what the backup lacks against the history's witness is
//! said, and the hub waits for the owner to accept it before it sells.

use std::path::PathBuf;

use tallybox::store::restore;

#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The backup to put back.
    pub file: PathBuf,
    /// The hub's data directory.
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
}

pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let done = restore::restore(&args.data_dir, &args.file)?;
    if let Some(kept) = &done.kept {
        println!("the database it replaced is kept in {}", kept.display());
    }
    println!(
        "restored {}: {} transactions, {} audit records, the chain intact",
        args.file.display(),
        done.transactions,
        done.records
    );
    match &done.lost {
        None => println!("nothing the hub had recorded is missing; start the hub (systemctl start tallybox)"),
        Some(lost) => println!(
            "still missing after the backup: {lost}. Start the hub (systemctl start tallybox): \
             it sells again once the owner presses \"Accept the loss\" on the troubleshooting page"
        ),
    }
    Ok(())
}
