//! `tallybox acquirer-sim`: the simulated acquirer as an ISO 8583 host on
//! TCP, deciding on the same test cards as the built-in one, so the hub's
//! real acquirer client can be tried over a real socket:
//! `tallybox serve --acquirer iso8583://127.0.0.1:5800`.

use std::net::SocketAddr;
use std::path::PathBuf;

use tallybox::acquirer::iso8583::host::Host;
use tallybox::acquirer::iso8583::mac::MacKey;

#[derive(Debug, Clone, clap::Args)]
pub struct AcquirerSimArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:5800")]
    pub listen: SocketAddr,
    /// The MAC key shared with the hub (32 hex digits).
    #[arg(long, conflicts_with = "mac_key_file")]
    pub mac_key: Option<String>,
    /// Read the MAC key from this file; when it does not exist, make a
    /// random key and write it there (for `tallybox serve
    /// --acquirer-mac-key-file`). With neither, a random key is logged.
    #[arg(long)]
    pub mac_key_file: Option<PathBuf>,
    /// Append every message in and out to this file, as hex.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

pub async fn run(args: AcquirerSimArgs) -> anyhow::Result<()> {
    let key = match (&args.mac_key, &args.mac_key_file) {
        (Some(k), _) => MacKey::parse(k).map_err(|e| anyhow::anyhow!("--mac-key: {e}"))?,
        (None, Some(path)) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            MacKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        (None, Some(path)) => {
            let key = MacKey::random();
            write_key(path, &key)?;
            tracing::info!(file = %path.display(), check_value = %key.check_value(), "made a MAC key");
            key
        }
        (None, None) => {
            let key = MacKey::random();
            tracing::info!(mac_key = %key.to_hex(), "made a MAC key for this run: give it to the hub as acquirer_mac_key");
            key
        }
    };
    let host =
        Host::new(key, args.log.clone()).map_err(|e| anyhow::anyhow!("cannot open the message log: {e}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}: {e}; pick another with --listen",
            args.listen
        )
    })?;
    tracing::info!(addr = %args.listen, "simulated acquirer listening (ISO 8583, 2-byte length header)");
    let stop = super::stop_signal();
    tokio::select! {
        _ = host.serve(listener) => {}
        _ = stop.cancelled() => tracing::info!("stopping"),
    }
    Ok(())
}

/// Writes `key` as hex to a new file only its owner can read.
fn write_key(path: &std::path::Path, key: &MacKey) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write the MAC key to {}: {e}", path.display()))?;
    writeln!(f, "{}", key.to_hex())?;
    f.sync_all()?;
    Ok(())
}
