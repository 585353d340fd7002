//! `tallybox update FILE`: checks a signed update bundle and switches the
//! hub to it, with a backup of the database first; `tallybox release`: the
//! release side (a signing key pair, signing a bundle). How versions are kept
//! and rolled back is in `tallybox_platform::update`.

use std::path::PathBuf;

use tallybox::install::{install, INSTALL_ROOT, UPDATE_KEYS};
use tallybox_platform::update;

#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    /// The bundle (`tallybox-hub-<version>-<arch>.update`).
    pub bundle: PathBuf,
    /// Where versions are installed.
    #[arg(long, env = "TALLYBOX_ROOT", default_value = INSTALL_ROOT)]
    pub root: PathBuf,
    /// The public keys updates must be signed with.
    #[arg(long, default_value = UPDATE_KEYS)]
    pub keys: PathBuf,
    /// The hub's data directory (its database is backed up first).
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
    /// Install an older version than the one installed (on purpose only).
    #[arg(long)]
    pub allow_downgrade: bool,
}

pub fn run(args: UpdateArgs) -> anyhow::Result<()> {
    let (installed, backup) = install(
        &args.bundle,
        &args.keys,
        &args.root,
        &args.data_dir,
        args.allow_downgrade,
    )?;
    if let Some(backup) = backup {
        println!("database backed up first: {}", backup.display());
    }
    match &installed.previous {
        Some(previous) => println!(
            "{} installed (was {previous}); restart the hub to run it (systemctl restart tallybox). \
             If it does not prove healthy within a minute, {previous} comes back by itself.",
            installed.version
        ),
        None => println!("{} installed", installed.version),
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReleaseAction {
    /// A new signing key pair: OUT.key (secret: keep it off the machines and out of the repository) and OUT.pub.
    Keygen {
        /// The files' path without extension.
        out: PathBuf,
    },
    /// Sign a bundle of files (NAME=PATH, the name they get when installed).
    Sign {
        /// The secret key file (64 hex digits).
        #[arg(long)]
        key: PathBuf,
        /// `hub` or `terminal`.
        #[arg(long)]
        product: String,
        /// MAJOR.MINOR.PATCH.
        #[arg(long)]
        version: String,
        /// The machines it is for.
        #[arg(long, default_value = std::env::consts::ARCH)]
        arch: String,
        /// The bundle to write.
        #[arg(long)]
        out: PathBuf,
        /// NAME=PATH of each file.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

pub fn release(action: ReleaseAction) -> anyhow::Result<()> {
    match action {
        ReleaseAction::Keygen { out } => {
            let (secret, public) = update::new_signing_key();
            let secret_path = out.with_extension("key");
            tallybox_platform::fsync::write_synced(&secret_path, format!("{secret}\n").as_bytes())?;
            std::fs::write(out.with_extension("pub"), format!("{public}\n"))?;
            println!(
                "secret key: {} (keep it offline); public key: {} (install it in {UPDATE_KEYS}/)",
                secret_path.display(),
                out.with_extension("pub").display()
            );
        }
        ReleaseAction::Sign {
            key,
            product,
            version,
            arch,
            out,
            files,
        } => {
            if product != "hub" && product != "terminal" {
                anyhow::bail!("--product is hub or terminal, not '{product}'");
            }
            let files = files
                .iter()
                .map(|f| {
                    f.split_once('=')
                        .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
                        .ok_or_else(|| anyhow::anyhow!("'{f}' is not NAME=PATH"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let secret = std::fs::read_to_string(&key)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", key.display()))?;
            let manifest = update::write_bundle(&out, &secret, &product, &version, &arch, &files)?;
            println!(
                "{}: {product} {version} for {arch}, {} file(s)",
                out.display(),
                manifest.files.len()
            );
        }
    }
    Ok(())
}
