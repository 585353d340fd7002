//! `tallybox acquirer-sim`: the simulated acquirer as an ISO 8583 host on
//! TCP, deciding on the same test cards as the built-in one, so the hub's
//! real acquirer client can be tried over a real socket:
//! `tallybox serve --acquirer iso8583://127.0.0.1:5800 --acquirer-master-keys FILE`.

use std::net::SocketAddr;
use std::path::PathBuf;

use tallybox::acquirer::iso8583::codec::{Dialect, Layout};
use tallybox::acquirer::iso8583::host::Host;
use tallybox::acquirer::iso8583::keys::{MasterKey, MasterKeys};

#[derive(Debug, Clone, clap::Args)]
pub struct AcquirerSimArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:5800")]
    pub listen: SocketAddr,
    /// The message layout: `iso8583-1987` or `cup-pos` (China UnionPay).
    #[arg(long, default_value = "iso8583-1987", value_parser = ["iso8583-1987", "cup-pos"])]
    pub dialect: String,
    /// The layout of that dialect to speak, when not the built-in one (a
    /// copy of `hub/dialects/DIALECT.toml`, adjusted).
    #[arg(long)]
    pub layout: Option<PathBuf>,
    /// The terminal master keys (the file the hub's `acquirer_master_keys`
    /// names). When it does not exist, random keys are made for
    /// `--terminals` and written there, readable by its owner alone.
    #[arg(long)]
    pub master_keys: PathBuf,
    /// The acquirer terminal ids to make master keys for, comma-separated
    /// (only when `--master-keys` does not exist yet).
    #[arg(long, default_value = "T0,T1,T2,T3,T4,T5,T6,T7,T8,T9", value_delimiter = ',')]
    pub terminals: Vec<String>,
    /// Serve TLS with this certificate chain (PEM) and `--tls-key`.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Take only terminals whose client certificate this CA (PEM) signed.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// The batch number each terminal's sign-in names first (China
    /// UnionPay's layout, where the host numbers batches).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=999_999))]
    pub first_batch: u32,
    /// Append every message in and out to this file, as hex.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

pub async fn run(args: AcquirerSimArgs) -> anyhow::Result<()> {
    let master_keys = master_keys(&args)?;
    let dialect = Dialect::parse(&args.dialect).map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.layout {
        Dialect::adjust(Layout::load(path, dialect, "--dialect").map_err(anyhow::Error::msg)?)
            .map_err(anyhow::Error::msg)?;
    }
    let host = Host::new(dialect, master_keys, args.log.clone())
        .map_err(|e| anyhow::anyhow!("cannot open the message log: {e}"))?
        .first_batch(args.first_batch);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            tallybox::acquirer::iso8583::tls::acceptor_for_clients(cert, key, args.tls_client_ca.as_deref())
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
    tracing::info!(addr = %args.listen, dialect = dialect.name(), tls = tls.is_some(), "simulated acquirer listening (ISO 8583, 2-byte length header)");
    let stop = super::stop_signal();
    tokio::select! {
        _ = host.serve(listener, tls) => {}
        _ = stop.cancelled() => tracing::info!("stopping"),
    }
    Ok(())
}

/// The key file, or new random keys for `--terminals` written to it.
fn master_keys(args: &AcquirerSimArgs) -> anyhow::Result<MasterKeys> {
    let path = &args.master_keys;
    if path.exists() {
        return MasterKeys::load(path).map_err(|e| anyhow::anyhow!("--master-keys: {e}"));
    }
    let mut keys = MasterKeys::default();
    for terminal in &args.terminals {
        keys.insert(terminal, MasterKey::random());
    }
    // Checked as the hub will read it.
    let keys = MasterKeys::parse(&keys.to_text()).map_err(|e| anyhow::anyhow!("--terminals: {e}"))?;
    keys.save(path)
        .map_err(|e| anyhow::anyhow!("--master-keys: {e}"))?;
    tracing::info!(file = %path.display(), keys = ?keys, "made terminal master keys: give the file to the hub as acquirer_master_keys");
    Ok(keys)
}
