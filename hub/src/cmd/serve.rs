//! `tallybox serve`: the hub as it runs in a shop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tallybox_platform::mqtt::BrokerAddr;

use tallybox::config::Config;
use tallybox::hub::{self, Options};

pub const DEFAULT_CONFIG: &str = "/etc/tallybox/tallybox.toml";

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Settings file (TOML). Default /etc/tallybox/tallybox.toml when it exists.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the database and keys live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Web page and API address.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Embedded broker's address.
    #[arg(long, conflicts_with = "broker")]
    pub mqtt: Option<SocketAddr>,
    /// Use an external broker (mqtt://HOST:PORT) instead of the embedded one.
    #[arg(long)]
    pub broker: Option<BrokerAddr>,
    /// Acquirer link: `sim` (built in) or `iso8583://HOST:PORT` (see `tallybox acquirer-sim`).
    #[arg(long)]
    pub acquirer: Option<String>,
    /// The file of terminal master keys the acquirer issued (instead of
    /// `acquirer_master_keys` in the settings).
    #[arg(long)]
    pub acquirer_master_keys: Option<PathBuf>,
    /// The acquirer's message layout: `iso8583-1987` or `cup-pos`.
    #[arg(long)]
    pub acquirer_dialect: Option<String>,
    /// The hub's own checkout: `hw` (the Pi's parts), `sim` (chip models) or `none`.
    #[arg(long, value_parser = ["hw", "sim", "none"])]
    pub devices: Option<String>,
    /// Open the own checkout's control API here (simulated devices only).
    #[arg(long)]
    pub control: Option<SocketAddr>,
    #[command(flatten)]
    pub owner: super::OwnerPassword,
    /// Language of a simulated checkout's screens (real ones: the device settings').
    #[arg(long, value_enum, default_value = "en")]
    pub lang: tallybox_terminal::session::Lang,
    /// Read the machine's temperature, power and Bluetooth below this
    /// directory (its `sys/…`): `/` on a Pi, a fake tree in tests.
    #[arg(long, env = "TALLYBOX_SYS_ROOT", default_value = "/")]
    pub sys_root: PathBuf,
    /// Do not announce the hub by mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Where versions are installed: after an update, the new version
    /// confirms itself here once healthy.
    #[arg(long, env = "TALLYBOX_ROOT", default_value = tallybox::install::INSTALL_ROOT)]
    pub root: PathBuf,
    /// The public keys update bundles must be signed with (`*.pub`).
    #[arg(long, default_value = tallybox::install::UPDATE_KEYS)]
    pub update_keys: PathBuf,
}

impl ServeArgs {
    /// The settings file, then these flags on top.
    pub fn config(&self) -> Result<Config, tallybox::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path, true)?,
            None => Config::load(Path::new(DEFAULT_CONFIG), false)?,
        };
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(a) = self.http {
            config.http = a;
        }
        if let Some(a) = self.mqtt {
            config.mqtt = a;
            config.broker = None;
        }
        if let Some(b) = &self.broker {
            config.broker = Some(b.url());
        }
        if let Some(a) = &self.acquirer {
            config.acquirer = a.clone();
        }
        if let Some(path) = &self.acquirer_master_keys {
            config.acquirer_master_keys = Some(path.clone());
        }
        if let Some(dialect) = &self.acquirer_dialect {
            config.acquirer_dialect = dialect.clone();
        }
        if let Some(d) = &self.devices {
            config.devices = d.clone();
        }
        if self.no_mdns {
            config.mdns = false;
        }
        config.validate()?;
        Ok(config)
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let options = Options {
        extra_terminals: 0,
        control: args.control,
        lang: args.lang,
        owner_password: args.owner.read()?,
        sys_root: args.sys_root.clone(),
        install_root: Some(args.root.clone()),
        simulated_codes: false,
        update_keys: args.update_keys.clone(),
    };
    let shutdown = super::stop_signal();
    let (data_dir, http) = (config.data_dir.clone(), config.http);
    // A backup the owner ordered put back from the page, before the store opens.
    match tallybox::store::restore::ordered(&data_dir) {
        Ok(None) => {}
        Ok(Some(done)) => match &done.error {
            None => tracing::warn!(
                file = %done.order.file, by = %done.order.by, transactions = done.transactions,
                missing = done.lost.as_deref().unwrap_or("nothing"),
                "the backup ordered from the web page is put back"
            ),
            Some(why) => tracing::error!(
                file = %done.order.file, error = %why,
                "the backup ordered from the web page was not put back"
            ),
        },
        Err(e) => tracing::error!(error = %e, "the restore ordered from the web page"),
    }
    // For the recovery page, should the database not open.
    let (store_id, offsite) = (config.store_id.clone(), config.offsite.clone());
    let ran = hub::run(config, options, shutdown.clone(), |started| {
        tracing::info!(
            http = %started.http, broker = %started.broker, embedded = started.embedded_broker,
            "hub ready"
        );
    })
    .await;
    match ran {
        // A damaged database: the recovery page, not a restart loop.
        Err(hub::HubError::Store(e)) if e.is_damage() => {
            let offsite = tallybox::offsite::setup::Setup::start(&data_dir, &store_id, offsite)
                .ok()
                .and_then(|setup| setup.bucket());
            tallybox::recovery::serve(&data_dir, http, &e, offsite, shutdown).await
        }
        other => Ok(other?),
    }
}
