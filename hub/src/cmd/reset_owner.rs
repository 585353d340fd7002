//! `tallybox reset-owner`: for an owner who forgot the web page's password
//! (or is locked out). Run on the hub itself — being at its shell is the
//! proof of being the owner. It removes the owner's password only (and the
//! sign-in failures' lock with it); sales, settings, managers and the audit
//! log stay, and a backup of the whole database is taken first (its path is
//! printed). The next start of the hub shows a new setup code on its screen,
//! in its log and on a slip.

use std::path::PathBuf;

use tallybox::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct ResetOwnerArgs {
    /// The hub's data directory.
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
}

pub fn run(args: ResetOwnerArgs) -> anyhow::Result<()> {
    if !args.data_dir.join("tallybox.db").exists() {
        anyhow::bail!(
            "no Tallybox database in {}; give the hub's --data-dir",
            args.data_dir.display()
        );
    }
    let mut store = Store::open(&args.data_dir)?;
    let backup = store
        .backup_before("reset-owner")
        .map_err(|e| anyhow::anyhow!("cannot take a backup first ({e}); nothing was changed"))?;
    println!("backup of everything taken first: {}", backup.display());
    if store.reset_owner()? {
        println!(
            "the owner's password is removed; nothing else changed. Restart the hub \
             (systemctl restart tallybox): it shows a new setup code on its screen and in its log"
        );
    } else {
        println!("no owner password was set; the hub shows a setup code when it starts");
    }
    Ok(())
}
