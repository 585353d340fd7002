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
    /// The MAC key shared with the hub (32 hex digits); default: the test key.
    #[arg(long)]
    pub mac_key: Option<String>,
    /// Append every message in and out to this file, as hex.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

pub async fn run(args: AcquirerSimArgs) -> anyhow::Result<()> {
    let key = match &args.mac_key {
        Some(k) => MacKey::parse(k).map_err(|e| anyhow::anyhow!("--mac-key: {e}"))?,
        None => tallybox::acquirer::iso8583::mac::TEST_MAC_KEY,
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
