//! `tallybox acquirer-sim`: the simulated acquirer as an ISO 8583 host on
//! TCP, deciding on the same test cards as the built-in one, so the hub's
//! real acquirer client can be tried over a real socket:
//! `tallybox serve --acquirer iso8583://127.0.0.1:5800`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tallybox_core::card::pin_block::{self, PinKey};

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
    /// The same for the key PIN blocks reach the issuer under (for `tallybox
    /// serve --acquirer-pin-key-file`).
    #[arg(long)]
    pub pin_key_file: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM) and `--tls-key`.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Append every message in and out to this file, as hex.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

pub async fn run(args: AcquirerSimArgs) -> anyhow::Result<()> {
    let mac_key = match &args.mac_key {
        Some(k) => MacKey::parse(k).map_err(|e| anyhow::anyhow!("--mac-key: {e}"))?,
        None => MacKey::from_bytes(key(args.mac_key_file.as_deref(), "MAC", "acquirer_mac_key")?),
    };
    let pin_key = key(args.pin_key_file.as_deref(), "PIN", "acquirer_pin_key")?;
    let host = Host::new(mac_key, pin_key, args.log.clone())
        .map_err(|e| anyhow::anyhow!("cannot open the message log: {e}"))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            tallybox::acquirer::iso8583::tls::acceptor(cert, key)
                .map_err(|e| anyhow::anyhow!("--tls-cert: {e}"))?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}: {e}; pick another with --listen",
            args.listen
        )
    })?;
    tracing::info!(addr = %args.listen, tls = tls.is_some(), "simulated acquirer listening (ISO 8583, 2-byte length header)");
    let stop = super::stop_signal();
    tokio::select! {
        _ = host.serve(listener, tls) => {}
        _ = stop.cancelled() => tracing::info!("stopping"),
    }
    Ok(())
}

/// A key read from `file`, or made at random (then written to `file`, or
/// logged for the hub's `setting`): the simulator's keys are its own.
fn key(file: Option<&Path>, what: &str, setting: &str) -> anyhow::Result<PinKey> {
    match file {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            pin_block::parse_key(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Some(path) => {
            let key: PinKey = rand::random();
            write_key(path, &key)?;
            tracing::info!(file = %path.display(), check_value = %pin_block::check_value(&key), "made a {what} key");
            Ok(key)
        }
        None => {
            let key: PinKey = rand::random();
            tracing::info!(key = %hex::encode_upper(key), "made a {what} key for this run: give it to the hub as {setting}");
            Ok(key)
        }
    }
}

/// Writes `key` as hex to a new file only its owner can read.
fn write_key(path: &Path, key: &PinKey) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write the key to {}: {e}", path.display()))?;
    writeln!(f, "{}", hex::encode_upper(key))?;
    f.sync_all()?;
    Ok(())
}
