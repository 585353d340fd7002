//! `tallybox evidence`: the evidence pack ([`tallybox::evidence`]) written to a
//! file. `tallybox freeze` and `unfreeze` stop and restart selling at a
//! terminal or the whole store.

use std::io::Write;
use std::path::{Path, PathBuf};

use tallybox::config::Config;
use tallybox::evidence;
use tallybox::shop::Shop;
use tallybox::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct EvidenceArgs {
    /// Start of the period, local `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`.
    #[arg(long)]
    pub from: String,
    /// End of the period, same forms (a bare date includes the whole day).
    #[arg(long)]
    pub to: String,
    /// The archive to write (a .tar file).
    #[arg(long)]
    pub out: PathBuf,
    /// The hub's data directory.
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
    /// The hub's settings (store name and merchant number for the slips).
    #[arg(long, default_value = "/etc/tallybox/tallybox.toml")]
    pub config: PathBuf,
}

fn open(data_dir: &Path) -> anyhow::Result<Store> {
    if !data_dir.join("tallybox.db").exists() {
        anyhow::bail!(
            "no Tallybox database in {}; give the hub's --data-dir",
            data_dir.display()
        );
    }
    Ok(Store::open(data_dir)?)
}

pub fn run(args: EvidenceArgs) -> anyhow::Result<()> {
    let store = open(&args.data_dir)?;
    let settings = Config::load(&args.config, false)?;
    let shop = Shop::from_config(&settings).map_err(|e| anyhow::anyhow!("supervisor_pin: {e}"))?;
    let pack = evidence::pack(&store, &shop, &args.from, &args.to)?;
    let mut file = std::fs::File::create(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    file.write_all(&pack.tar)?;
    file.sync_all()?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "wrote {}: {} transactions, {} rule hits; {}",
        args.out.display(),
        pack.transactions,
        pack.hits,
        pack.verify
    )?;
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct FreezeArgs {
    /// The terminal to freeze or unfreeze, e.g. T1.
    #[arg(long, conflicts_with = "store", required_unless_present = "store")]
    pub terminal: Option<String>,
    /// The whole store.
    #[arg(long)]
    pub store: bool,
    /// Why (shown in the logs and the audit record).
    #[arg(long, default_value = "frozen by the owner")]
    pub reason: String,
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
}

impl FreezeArgs {
    fn scope(&self) -> String {
        self.terminal.clone().unwrap_or_else(|| "store".into())
    }
}

pub fn freeze(args: FreezeArgs) -> anyhow::Result<()> {
    let mut store = open(&args.data_dir)?;
    store.freeze(&args.scope(), &args.reason)?;
    println!(
        "{} frozen: it refuses sales, voids and refunds until unfrozen",
        args.scope()
    );
    Ok(())
}

pub fn unfreeze(args: FreezeArgs) -> anyhow::Result<()> {
    let mut store = open(&args.data_dir)?;
    if store.unfreeze(&args.scope())? {
        println!("{} unfrozen: it sells again", args.scope());
    } else {
        println!("{} was not frozen", args.scope());
    }
    Ok(())
}
