//! `tallybox chain join CODE`: makes this shop part of a chain with the
//! one-time code head office gave (`tallybox-hq enrol`); the hub feeds head
//! office from its next start. `tallybox chain status`: where the uplink
//! stands (entries written, acknowledged, waiting).

use std::path::PathBuf;

use tallybox::chain::ChainConfig;
use tallybox::store::Store;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ChainAction {
    /// Join a chain with head office's one-time code (the whole line, tbx-chain-1.…).
    Join {
        /// The code; read from standard input when it is `-`.
        code: String,
        /// The hub's data directory.
        #[arg(long, default_value = "/var/lib/tallybox")]
        data_dir: PathBuf,
    },
    /// Say which chain this hub is in and what head office has yet to receive.
    Status {
        /// The hub's data directory.
        #[arg(long, default_value = "/var/lib/tallybox")]
        data_dir: PathBuf,
    },
}

pub fn run(action: ChainAction) -> anyhow::Result<()> {
    match action {
        ChainAction::Join { code, data_dir } => {
            let code = if code == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                code
            };
            let chain = ChainConfig::join(&data_dir, &code).map_err(anyhow::Error::msg)?;
            println!(
                "joined the chain as store {} (head office's broker {}); restart the hub (systemctl restart tallybox) to start sending",
                chain.store, chain.broker
            );
            println!("store key: {}", chain.public_key());
            Ok(())
        }
        ChainAction::Status { data_dir } => {
            let Some(chain) = ChainConfig::load(&data_dir).map_err(anyhow::Error::msg)? else {
                println!("not in a chain");
                return Ok(());
            };
            let store = Store::open(&data_dir)?;
            let (last, acked) = (store.outbox_last()?, store.chain_acked()?);
            println!("store {} feeds head office through {}", chain.store, chain.broker);
            println!(
                "outbox: {last} entries written, {acked} acknowledged, {} waiting",
                last.saturating_sub(acked)
            );
            Ok(())
        }
    }
}
