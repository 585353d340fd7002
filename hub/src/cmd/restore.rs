//! `tallybox restore FILE`: puts a backup (the page's download, or one in the
//! data directory's `backups/`) back, with the hub stopped. The database it
//! replaces is kept; what the backup lacks against the history's witness is
//! said, and the hub waits for the owner to accept it before it sells.
//!
//! `tallybox restore --offsite [NAME]`: the same from the off-site bucket
//! the settings name (`[offsite]`), on a new SD card after the hub was lost:
//! without NAME it lists the copies there, newest first; with one (or
//! `latest`) it brings that copy into `backups/` and puts it back.

use std::path::{Path, PathBuf};

use tallybox::config::Config;
use tallybox::store::restore;

#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The backup to put back; with `--offsite`, the name of a copy in the
    /// bucket (`auto-….db`, or `latest`), or none to list them.
    pub file: Option<PathBuf>,
    /// Bring the copy from the off-site bucket the settings name.
    #[arg(long)]
    pub offsite: bool,
    /// Settings file (its `[offsite]` table, its data directory). Default
    /// /etc/tallybox/tallybox.toml when it exists.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The hub's data directory (default: the settings', /var/lib/tallybox).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path, true)?,
        None => Config::load(Path::new(super::serve::DEFAULT_CONFIG), false)?,
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(|| config.data_dir.clone());
    let file = if args.offsite {
        // The bucket entered on the hub's page, else the settings file's.
        let setup =
            tallybox::offsite::setup::Setup::start(&data_dir, &config.store_id, config.offsite.clone())
                .map_err(|e| anyhow::anyhow!("[offsite]: {e}"))?;
        let bucket = setup.bucket().ok_or_else(|| {
            anyhow::anyhow!(
                "no off-site bucket: name it in the settings file's [offsite] table (README, Backups), or give that file with --config"
            )
        })?;
        let Some(name) = &args.file else {
            let copies = bucket.copies().await.map_err(anyhow::Error::msg)?;
            if copies.is_empty() {
                println!("no copies in {}", bucket.object(""));
            }
            for name in copies {
                println!("{name}");
            }
            return Ok(());
        };
        let (object, path, bytes) = tallybox::offsite::fetch(&data_dir, &bucket, &name.to_string_lossy())
            .await
            .map_err(anyhow::Error::msg)?;
        println!("brought {object} ({bytes} bytes) into {}", path.display());
        path
    } else {
        args.file
            .clone()
            .ok_or_else(|| anyhow::anyhow!("name the backup to put back (or --offsite)"))?
    };
    let done = restore::restore(&data_dir, &file, "the command line")?;
    if let Some(kept) = &done.kept {
        println!("the database it replaced is kept in {}", kept.display());
    }
    println!(
        "restored {}: {} transactions, {} audit records, the chain intact",
        file.display(),
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
