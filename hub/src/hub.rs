//! A running hub, assembled: [`App::open`] opens the store → coordinator
//! (reversing what a crash left pending) → keys → broker → the web page's
//! state; [`App::serve`] starts the web server, the MQTT link, the background
//! jobs ([`crate::jobs`]), mDNS and the in-process checkouts on one task
//! tracker, all stopped by one cancellation token. `tallybox serve` and
//! `tallybox demo` both start it from here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{Provider, TerminalId, Topics};
use tallybox_platform::mqtt::BrokerAddr;
use tallybox_platform::sealed_files;
use tallybox_terminal::agent::{Agent, AgentConfig, AgentError};
use tallybox_terminal::config::DeviceConfig;
use tallybox_terminal::control;
use tallybox_terminal::devices::sim::SimDevices;
use tallybox_terminal::devices::Display;
use tallybox_terminal::hw::Hardware;
use tallybox_terminal::session::Lang;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acquirer::iso8583::batches::HostBatches;
use crate::acquirer::iso8583::client::{IsoAcquirer, IsoConfig};
use crate::acquirer::iso8583::codec::{Dialect, Layout};
use crate::acquirer::iso8583::keys::{KeyFile, MasterKeys};
use crate::acquirer::sim::SimAcquirer;
use crate::acquirer::AnyAcquirer;
use crate::broker::{self, BrokerError};
use crate::config::{Config, ConfigError};
use crate::coordinator::{Coordinator, Settings};
use crate::keys::Keys;
use crate::shop::{SharedShop, Shop};
use crate::store::{Store, StoreError, StoreHandle};
use crate::web::{self, BindError, WebState};
use crate::{discovery, jobs, link, notices};

/// The hub's own checkout's terminal id.
pub const OWN_CHECKOUT: &str = "T0";

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Web(#[from] BindError),
    #[error(transparent)]
    Checkout(#[from] AgentError),
    #[error(transparent)]
    Devices(#[from] tallybox_terminal::config::DeviceConfigError),
    #[error("cannot open a checkout's control API on {addr}: {source}")]
    Control {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("version {0} was not healthy within a minute of its start (no broker link): stopped, so that the previous version comes back")]
    UpdateUnhealthy(String),
}

/// What to start beside the hub.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Simulated terminals run in-process after the hub's own checkout (the demo's).
    pub extra_terminals: u16,
    /// Control API of the hub's own checkout; extra terminals take the next ports.
    pub control: Option<SocketAddr>,
    /// Screen language of simulated checkouts (real ones take the device settings').
    pub lang: Lang,
    /// Sets the owner's web password at start (scripted set-ups, tests); without
    /// it and without an owner yet, the hub makes a one-time setup code.
    pub owner_password: Option<String>,
    /// Where the machine's sysfs is (`/` on a Pi).
    pub sys_root: std::path::PathBuf,
    /// Where versions are installed (`/opt/tallybox`); `None` when the hub is
    /// not run from an install (the demo).
    pub install_root: Option<std::path::PathBuf>,
    /// The public keys update bundles must be signed with.
    pub update_keys: std::path::PathBuf,
    /// Takes the test payment codes through simulated providers (the demo
    /// only; no setting can ask for it).
    pub simulated_codes: bool,
}

/// Where things ended up listening, for the banner and for tests.
#[derive(Debug, Clone)]
pub struct Started {
    pub http: SocketAddr,
    pub broker: BrokerAddr,
    pub embedded_broker: bool,
    pub checkouts: Vec<(TerminalId, Option<SocketAddr>)>,
    /// The one-time code that sets the owner's password, while none is set.
    pub setup_code: Option<String>,
}

/// The address a local client uses to reach a listener on `addr`.
fn reachable(addr: SocketAddr) -> BrokerAddr {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    BrokerAddr {
        host: ip.to_string(),
        port: addr.port(),
        credentials: None,
    }
}

/// The checkouts the hub runs itself: its own (`T0`) when it has devices,
/// then the demo's simulated `T1`, `T2`, …
fn own_checkout_ids(config: &Config, extra: u16) -> Vec<TerminalId> {
    let first = if config.devices == "none" { 1 } else { 0 };
    (first..=extra)
        .map(|i| match i {
            0 => OWN_CHECKOUT.to_string(),
            i => format!("T{i}"),
        })
        .filter_map(|id| TerminalId::parse(&id).ok())
        .collect()
}

/// The acquirer's dialect, written as its layout file says when the
/// settings name one.
fn dialect(config: &Config) -> Result<Dialect, ConfigError> {
    let dialect = Dialect::parse(&config.acquirer_dialect).map_err(|message| ConfigError::Invalid {
        key: "acquirer_dialect",
        message,
    })?;
    if let Some(path) = &config.acquirer_layout {
        let invalid = |message| ConfigError::Invalid {
            key: "acquirer_layout",
            message,
        };
        Dialect::adjust(Layout::load(path, dialect, "acquirer_dialect").map_err(invalid)?)
            .map_err(invalid)?;
        tracing::info!(layout = %path.display(), "the acquirer's own layout of {}", dialect.name());
    }
    Ok(dialect)
}

/// The acquirer's terminal id of the hub's own checkout.
fn hub_terminal(config: &Config) -> String {
    config
        .acquirer_terminal_ids
        .get(OWN_CHECKOUT)
        .cloned()
        .unwrap_or_else(|| OWN_CHECKOUT.to_string())
}

/// The payment-code providers the settings name; with `simulated` (the
/// demo), the simulated provider for each the settings do not name.
fn code_providers(config: &Config, simulated: bool) -> Result<crate::payments::Codes, ConfigError> {
    let mut codes = crate::payments::Codes::new(
        Duration::from_secs(config.code_wait_secs),
        Duration::from_millis(config.code_poll_ms),
    );
    // The demo in another currency takes no codes (they are CNY only).
    let simulated = simulated && config.currency == Currency::CNY;
    let any = config.alipay.is_some() || config.wechat_pay.is_some();
    if any && config.currency != Currency::CNY {
        return Err(ConfigError::Invalid {
            key: "currency",
            message: format!(
                "payment codes are taken in CNY; this shop's currency is {}",
                config.currency.code()
            ),
        });
    }
    if let Some(wechat) = &config.wechat_pay {
        let client =
            crate::payments::setup::wechat_client(wechat, config.acquirer_timeout()).map_err(|message| {
                ConfigError::Invalid {
                    key: "wechat_pay",
                    message,
                }
            })?;
        tracing::info!(mch_id = %wechat.mch_id, gateway = %wechat.gateway, "WeChat Pay payment codes taken");
        codes = codes.with(Provider::WechatPay, Arc::new(client));
    } else if simulated {
        codes = codes.with(
            Provider::WechatPay,
            Arc::new(crate::payments::sim::SimCodes::new("4200")),
        );
    }
    let Some(alipay) = &config.alipay else {
        if simulated {
            codes = codes.with(
                Provider::Alipay,
                Arc::new(crate::payments::sim::SimCodes::new("2026")),
            );
        }
        return Ok(codes);
    };
    let client =
        crate::payments::setup::alipay_client(alipay, config.acquirer_timeout()).map_err(|message| {
            ConfigError::Invalid {
                key: "alipay",
                message,
            }
        })?;
    tracing::info!(app_id = %alipay.app_id, gateway = %alipay.gateway, "Alipay payment codes taken");
    Ok(codes.with(Provider::Alipay, Arc::new(client)))
}

/// The acquirer the settings name: the built-in simulator, or an ISO 8583 host.
fn acquirer(config: &Config) -> Result<AnyAcquirer, ConfigError> {
    let Some(addr) = config.iso8583_addr() else {
        return Ok(AnyAcquirer::Sim(SimAcquirer::default()));
    };
    let keys_file = config
        .acquirer_master_keys
        .as_deref()
        .ok_or_else(|| ConfigError::Invalid {
            key: "acquirer_master_keys",
            message: "the ISO 8583 link needs the terminal master keys your acquirer issued".into(),
        })?;
    let master_keys = MasterKeys::load(keys_file).map_err(|message| ConfigError::Invalid {
        key: "acquirer_master_keys",
        message,
    })?;
    tracing::info!(
        acquirer = %addr, dialect = %config.acquirer_dialect, tls = config.acquirer_tls(), master_keys = ?master_keys,
        "acquirer link: ISO 8583 (terminal master keys by check value)"
    );
    for (checkout, terminal) in &config.acquirer_terminal_ids {
        if master_keys.get(terminal).is_none() {
            tracing::warn!(
                checkout,
                terminal,
                "no master key for this acquirer terminal: its sales cannot be sent"
            );
        }
    }
    let currency = config.currency.numeric().ok_or_else(|| ConfigError::Invalid {
        key: "currency",
        message: format!(
            "{} has no ISO 4217 numeric code here, which the ISO 8583 link needs",
            config.currency
        ),
    })?;
    let tls = match &config.acquirer_tls_ca {
        Some(ca) if config.acquirer_tls() => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let client = config
                .acquirer_tls_cert
                .as_deref()
                .zip(config.acquirer_tls_key.as_deref());
            Some(
                crate::acquirer::iso8583::tls::TlsClient::new(ca, client, host).map_err(|message| {
                    ConfigError::Invalid {
                        key: "acquirer_tls_ca",
                        message,
                    }
                })?,
            )
        }
        _ => None,
    };
    Ok(AnyAcquirer::Iso(IsoAcquirer::start(IsoConfig {
        addr: addr.to_string(),
        tls,
        merchant_id: config.merchant_id.clone(),
        currency,
        master_keys: Arc::new(KeyFile::new(master_keys, Some(keys_file.to_path_buf()))),
        dialect: dialect(config)?,
        echo_every: std::time::Duration::from_secs(60),
        hub_terminal: hub_terminal(config),
        terminal_ids: config.acquirer_terminal_ids.clone(),
        host_batches: Arc::new(HostBatches::open(Some(
            config.data_dir.join("acquirer-batches.json"),
        ))),
    })))
}

/// Sets the owner's password when one is given; otherwise, while there is no
/// owner, makes the one-time setup code the page asks for.
fn owner_account(store: &mut Store, password: Option<&str>) -> Result<Option<String>, HubError> {
    use crate::store::accounts::{Role, OWNER};
    if let Some(password) = password {
        let n = password.chars().count();
        if !(8..=128).contains(&n) {
            return Err(ConfigError::Invalid {
                key: "owner_password",
                message: "a password has 8 to 128 characters".into(),
            }
            .into());
        }
        // Unchanged since the last start: nothing to write (or to audit).
        if let Some(owner) = store.account(OWNER)? {
            if web::auth::verify_password(password, &owner.password_hash) {
                return Ok(None);
            }
        }
        let hash = web::auth::hash_password(password).map_err(|_| ConfigError::Invalid {
            key: "owner_password",
            message: "cannot hash the password".into(),
        })?;
        store.set_account(OWNER, Role::Owner, &hash)?;
        return Ok(None);
    }
    if store.has_owner()? {
        return Ok(None);
    }
    let code = web::auth::Auth::new_setup_code();
    tracing::warn!(setup_code = %code, "no owner password yet: open the web page and enter this setup code");
    Ok(Some(code))
}

/// Opens the hub ([`App::open`]) and serves until `stop` is cancelled
/// ([`App::serve`]).
pub async fn run(
    config: Config,
    options: Options,
    stop: CancellationToken,
    on_start: impl FnOnce(&Started),
) -> Result<(), HubError> {
    App::open(config, options).await?.serve(stop, on_start).await
}

/// The hub, opened: the store and its writer, the coordinator (what a crash
/// left pending already reversed), the keys, the broker and the web page's
/// state. Nothing serves until [`App::serve`].
pub struct App {
    config: Config,
    options: Options,
    coordinator: Arc<Coordinator<AnyAcquirer>>,
    keys: Arc<Keys>,
    web: WebState,
    /// The store writer, to hear what its commits changed.
    writer: StoreHandle,
    /// The alerts of the hub's own checkout read the fraud hits here.
    alert_store: Arc<Mutex<Store>>,
    /// The broker as the LAN reaches it.
    broker: BrokerAddr,
    /// How the hub's own link logs in to the broker.
    link_broker: BrokerAddr,
    /// The broker for the checkouts the hub runs itself (past the gate).
    own_broker: BrokerAddr,
    /// The embedded broker's gate, when the broker is the embedded one.
    gate: Option<broker::Started>,
    embedded_broker: bool,
    connected: watch::Sender<bool>,
    pushes: crate::link::Pushes,
    setup_code: Option<String>,
    /// The chain this shop feeds, if it joined one.
    chain: Option<crate::chain::ChainConfig>,
    /// The fraud rules in force (head office's may replace them).
    rules: crate::chain::uplink::Rules,
    /// The shop settings in force (head office's may replace some).
    shop_settings: crate::chain::uplink::ShopSettings,
    /// The bucket the backups are also copied to, if the owner set one.
    offsite: crate::offsite::setup::Current,
    /// The data directory is this hub's while it runs.
    _lock: crate::store::lock::DataLock,
}

impl App {
    pub async fn open(config: Config, options: Options) -> Result<App, HubError> {
        config.validate()?;
        let lock = crate::store::lock::DataLock::take(&config.data_dir)?;
        let chain =
            crate::chain::ChainConfig::load(&config.data_dir).map_err(|message| ConfigError::Invalid {
                key: "chain",
                message,
            })?;
        let mut writer_store = Store::open(&config.data_dir)?;
        writer_store.keep_outbox(chain.is_some());
        let store = StoreHandle::spawn(writer_store).map_err(|error| StoreError::DataDir {
            dir: config.data_dir.display().to_string(),
            error,
        })?;
        // The settings file's shop, with the owner's edit from the page on top.
        let mut web_store = Store::open(&config.data_dir)?;
        let from_file = Shop::from_config(&config).map_err(|message| ConfigError::Invalid {
            key: "supervisor_pin",
            message,
        })?;
        web_store.hash_clear_supervisor_pin()?;
        let from_file_shop = from_file.clone();
        let shop: SharedShop = Arc::new(RwLock::new(match web_store.shop_edit()? {
            Some(edit) => from_file.with_edit(edit),
            None => from_file,
        }));
        if let Some(zone) = &crate::shop::current(&shop).time_zone {
            match tallybox_platform::clock::set_zone(zone) {
                Ok(()) => tracing::info!(time_zone = %zone, "local time is the owner's time zone"),
                Err(e) => {
                    tracing::warn!(error = %e, "the owner's time zone cannot be used; local time is the system's")
                }
            }
        }
        let acquirer = acquirer(&config)?;
        // What the owner entered on the page wins over the settings file.
        let offsite = Arc::new(
            crate::offsite::setup::Setup::start(&config.data_dir, &config.store_id, config.offsite.clone())
                .map_err(|message| ConfigError::Invalid {
                key: "offsite",
                message,
            })?,
        );
        if let Some(bucket) = offsite.bucket() {
            tracing::info!(
                ?bucket,
                source = offsite.access().source,
                "backups are also copied off-site"
            );
        }
        let acquirer_keys = match &acquirer {
            AnyAcquirer::Iso(link) => Some(link.clone()),
            AnyAcquirer::Sim(_) => None,
        };
        let acquirer_link = match (&acquirer, config.iso8583_addr()) {
            (AnyAcquirer::Iso(link), Some(addr)) => {
                let (link, addr) = (link.clone(), addr.to_string());
                let timeout_ms = config.acquirer_timeout().as_millis().min(u32::MAX as u128) as u32;
                Some(Arc::new(move || crate::acquirer::LinkHealth {
                    timeout_ms,
                    ..link.health(&addr)
                }) as web::LinkProbe)
            }
            _ => None,
        };
        let keys = Arc::new(Keys::load(
            Store::open(&config.data_dir)?,
            Arc::clone(&shop),
            &config.store_id,
            &config.data_dir.join("seal-counter"),
        )?);
        let writer = store.clone();
        let orders = Arc::new(crate::orders::UndoOrders::default());
        let (push, pushes) = tokio::sync::mpsc::channel(64);
        let rules = crate::chain::uplink::Rules::new(&config);
        let shop_settings = crate::chain::uplink::ShopSettings {
            shared: Arc::clone(&shop),
            file: from_file_shop.clone(),
        };
        if chain.is_some() {
            rules.take_kept(&web_store)?;
            shop_settings.take_kept(&web_store)?;
        }
        let codes = code_providers(&config, options.simulated_codes)?;
        // What the owner entered on the page wins over the settings file.
        let code_setup = Arc::new(crate::payments::setup::Setup::start(
            &config.data_dir,
            config.acquirer_timeout(),
            codes.clone(),
            options.simulated_codes,
        ));
        let coordinator = Arc::new(Coordinator::new(
            store,
            acquirer,
            Settings {
                shop: Arc::clone(&shop),
                currency: config.currency,
                max_sale: Amount::from_minor(config.max_sale_minor).unwrap_or(Amount::ZERO),
                acquirer_timeout: config.acquirer_timeout(),
                fraud: rules.in_force.clone(),
                pin_keys: {
                    let keys = Arc::clone(&keys);
                    crate::coordinator::PinKeys(Arc::new(move |terminal: &TerminalId| {
                        keys.checkout_pin_key(terminal)
                    }))
                },
                orders: Arc::clone(&orders),
                codes: codes.clone(),
                news: Some(push.clone()),
            },
        ));
        // Sales a crash left pending are settled before any new one is taken.
        let reversed = coordinator.reverse_leftovers().await?;
        if reversed > 0 {
            tracing::warn!(
                reversed,
                "reversed sales left pending by the last stop: not charged"
            );
        }

        // The hub's link logs in to its own broker; the checkouts it runs itself
        // log in with their keys like any other.
        let (broker, link_broker, own_broker, gate, logins) = match config.broker_addr() {
            Some(external) => (external.clone(), external.clone(), external, None, None),
            None => {
                let logins = Arc::new(broker::Logins::new(Arc::clone(&keys)));
                let started = broker::start(config.mqtt, &config.store_id, Arc::clone(&logins))?;
                let public = started.listener.local_addr().unwrap_or(config.mqtt);
                let inner = reachable(started.inner);
                let link_addr = BrokerAddr {
                    credentials: Some(logins.hub_login()),
                    ..inner.clone()
                };
                (reachable(public), link_addr, inner, Some(started), Some(logins))
            }
        };
        let embedded_broker = logins.is_some();

        let (connected, connected_rx) = watch::channel(false);
        let setup_code = owner_account(&mut web_store, options.owner_password.as_deref())?;
        let accounts: Vec<_> = web_store
            .accounts()?
            .into_iter()
            .filter_map(|a| web_store.account(&a.name).ok().flatten())
            .map(|a| (a.name, a.role, a.password_hash))
            .collect();
        let auth = Arc::new(web::auth::Auth::kept(
            setup_code.clone(),
            config.data_dir.join("web-sessions.json"),
            &accounts,
        ));
        let web_store = Arc::new(Mutex::new(web_store));
        let alert_store = Arc::clone(&web_store);
        let web = WebState {
            keys: Arc::clone(&keys),
            store: web_store,
            auth,
            shop,
            shop_file: shop_settings.file.clone(),
            push,
            currency: config.currency,
            broker_connected: connected_rx,
            broker_logins: logins,
            install_root: options.install_root.clone(),
            update_keys: options.update_keys.clone(),
            stop: CancellationToken::new(),
            terminal_update: Arc::new(Mutex::new(web::update::kept_terminal_update(
                &config.data_dir,
                &options.update_keys,
            ))),
            http_port: Arc::new(std::sync::atomic::AtomicU16::new(config.http.port())),
            changes: web::watch_changes(config.data_dir.join("tallybox.db"), writer.subscribe()),
            machine: tallybox_platform::machine::Machine::at(&options.sys_root),
            acquirer: acquirer_link,
            acquirer_keys,
            own_checkouts: own_checkout_ids(&config, options.extra_terminals),
            checks: Arc::new(Mutex::new(web::Watch::new(Store::open(&config.data_dir)?))),
            orders,
            codes,
            code_setup,
            offsite: Arc::clone(&offsite),
        };
        Ok(App {
            _lock: lock,
            config,
            options,
            coordinator,
            keys,
            web,
            writer,
            alert_store,
            broker,
            link_broker,
            own_broker,
            gate,
            embedded_broker,
            connected,
            pushes,
            setup_code,
            chain,
            rules,
            shop_settings,
            offsite: offsite.current(),
        })
    }

    /// Serves the shop — web page, MQTT link, background jobs, mDNS, the
    /// hub's own checkouts — until `stop` is cancelled (or the page's update
    /// stops the hub); then waits a moment for every task to say goodbye.
    pub async fn serve(
        self,
        stop: CancellationToken,
        on_start: impl FnOnce(&Started),
    ) -> Result<(), HubError> {
        let App {
            config,
            options,
            coordinator,
            keys,
            mut web,
            writer,
            alert_store,
            broker: broker_addr,
            link_broker,
            own_broker,
            gate,
            embedded_broker,
            connected,
            pushes,
            setup_code,
            chain,
            rules,
            shop_settings,
            offsite,
            // Held until the hub has stopped.
            _lock: _held,
        } = self;
        // The caller's stop, and the hub's own (after an update from the page).
        web.stop = stop.child_token();
        let stop = web.stop.clone();
        let tasks = TaskTracker::new();
        let beat = link::LinkBeat::default();
        let offers = web.clone();
        let for_chain = web.clone();
        let connected_rx = web.broker_connected.clone();
        let setup_codes = web.auth.setup_code();
        tasks.spawn(web::keep_watch(web.clone(), stop.clone()));
        let (http, server) = web::bind(config.http, web, stop.clone()).await?;
        offers
            .http_port
            .store(http.port(), std::sync::atomic::Ordering::Relaxed);
        tasks.spawn(server);
        tasks.spawn(jobs::update_offers(offers, stop.clone()));
        let gave_up = Arc::new(Mutex::new(None));
        if let Some(root) = options.install_root.clone() {
            tasks.spawn(jobs::prove_update(
                root,
                connected_rx,
                stop.clone(),
                Arc::clone(&gave_up),
            ));
        }
        if let Some(started) = gate {
            let listener = tokio::net::TcpListener::from_std(started.listener).map_err(|source| {
                HubError::Broker(BrokerError::Bind {
                    addr: config.mqtt,
                    source,
                })
            })?;
            tasks.spawn(broker::gate::serve(started.gate, listener, stop.clone()));
        }
        tasks.spawn(link::run(
            Arc::clone(&coordinator),
            Arc::clone(&keys),
            link_broker,
            Topics::new(&config.store_id),
            pushes,
            connected,
            beat.clone(),
            stop.clone(),
        ));
        tasks.spawn(jobs::replay_marks(Arc::clone(&keys), stop.clone()));
        tasks.spawn(jobs::reversal_sweep(
            Arc::clone(&coordinator),
            Duration::from_secs(config.reversal_retry_secs),
            stop.clone(),
        ));
        tasks.spawn(jobs::full_batches(Arc::clone(&coordinator), stop.clone()));
        tasks.spawn(crate::bills::every_morning(
            for_chain.codes.clone(),
            Arc::clone(&for_chain.store),
            stop.clone(),
        ));
        if let Some(at) = config.settle_at.clone() {
            tasks.spawn(jobs::daily_settlement(Arc::clone(&coordinator), at, stop.clone()));
        }
        if let Some(chain) = chain {
            let reader = Arc::new(Mutex::new(Store::open(&config.data_dir)?));
            tasks.spawn(crate::chain::uplink::run(
                chain,
                writer.clone(),
                reader,
                crate::chain::uplink::Appliers::new(rules, shop_settings, for_chain),
                stop.clone(),
            ));
        }
        tasks.spawn(jobs::backups(
            config.data_dir.clone(),
            writer.subscribe(),
            config.backup_at.clone(),
            config.backup_budget_mib << 20,
            config.backup_usb_dir.clone(),
            offsite,
            stop.clone(),
        ));

        let _mdns = if config.mdns {
            match discovery::announce(&config.store_id, http.port(), broker_addr.port) {
                Ok(daemon) => Some(daemon),
                Err(e) => {
                    tracing::warn!(error = %e, "mDNS announcement failed; terminals need --hub");
                    None
                }
            }
        } else {
            None
        };

        // Control APIs never end by themselves; dropping this set stops them.
        let mut controls = tokio::task::JoinSet::new();
        let mut checkouts = Vec::new();
        let hardware = if config.devices == "hw" {
            Some(DeviceConfig::load(&config.device_config)?)
        } else {
            None
        };
        for (n, tid) in own_checkout_ids(&config, options.extra_terminals)
            .into_iter()
            .enumerate()
        {
            let id = tid.to_string();
            let own = id == OWN_CHECKOUT;
            let control_addr = match options.control {
                None => None,
                Some(c) => {
                    let port = u16::try_from(n)
                        .ok()
                        .and_then(|n| c.port().checked_add(n))
                        .ok_or_else(|| ConfigError::Invalid {
                            key: "control",
                            message: format!("no room for {n} more ports after {c}; pick a lower port"),
                        })?;
                    Some(SocketAddr::new(c.ip(), port))
                }
            };
            let state_dir = config.data_dir.join("checkouts").join(&id);
            own_key(&keys, &tid, &state_dir)?;
            let mut agent_config =
                AgentConfig::new(tid.clone(), &config.store_id, own_broker.clone(), state_dir);
            let (agent, handle) = match (own, &hardware) {
                (true, Some(wiring)) => {
                    // The hub's own checkout on the Pi's parts.
                    agent_config.session.lang = wiring.lang;
                    agent_config.session.slip_columns = wiring.printer.columns;
                    if control_addr.is_some() {
                        tracing::warn!(
                            "--control drives simulated devices only; the own checkout runs on hardware"
                        );
                    }
                    let hw = Hardware::open(wiring).map_err(|message| ConfigError::Invalid {
                        key: "device_config",
                        message,
                    })?;
                    let mut inputs = hw.inputs;
                    let (agent, handle) =
                        Agent::new(agent_config, hw.display, hw.printer, inputs.health.clone());
                    inputs.start(&handle);
                    (agent, handle)
                }
                _ => {
                    agent_config.session.lang = options.lang;
                    let devices = SimDevices::default();
                    let display: Box<dyn Display> = Box::new(devices.clone());
                    let (agent, handle) = Agent::new(
                        agent_config,
                        display,
                        devices.printer_driver(),
                        devices.health.clone(),
                    );
                    if let Some(addr) = control_addr {
                        let listener = tokio::net::TcpListener::bind(addr)
                            .await
                            .map_err(|source| HubError::Control { addr, source })?;
                        controls.spawn(control::serve(listener, handle.clone(), devices));
                    }
                    (agent, handle)
                }
            };
            if own {
                tasks.spawn(notices::setup_code(
                    setup_codes.clone(),
                    handle.clone(),
                    config.public_url.clone(),
                ));
                tasks.spawn(notices::fraud_alerts(
                    Arc::clone(&alert_store),
                    writer.subscribe(),
                    handle,
                    stop.clone(),
                ));
            }
            let stopped = stop.clone();
            tasks.spawn(async move {
                if let Err(e) = agent.run(stopped).await {
                    tracing::error!(error = %e, "checkout stopped");
                }
            });
            checkouts.push((tid, control_addr));
        }
        tasks.close();

        on_start(&Started {
            http,
            broker: broker_addr,
            embedded_broker,
            checkouts,
            setup_code,
        });
        // systemd: serving now, and alive while the link's loop turns and the
        // store commits. An unreachable broker is not a reason to restart
        // (a restart cannot bring it back; `hub.broker` says it is down).
        let store = writer.clone();
        tallybox_platform::service::started(move || {
            let (beat, store) = (beat.clone(), store.clone());
            async move { beat.fresh() && store.call(|_| Ok(())).await.is_ok() }
        });
        stop.cancelled().await;
        tallybox_platform::service::notify("STOPPING=1");
        // Give the link and the checkouts a moment to say "offline".
        if tokio::time::timeout(Duration::from_secs(3), tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = tasks.len(),
                "tasks still running 3 s after the stop; leaving them"
            );
        }
        let gave_up = gave_up.lock().unwrap_or_else(|e| e.into_inner()).take();
        match gave_up {
            Some(version) => Err(HubError::UpdateUnhealthy(version)),
            None => Ok(()),
        }
    }
}

/// The hub's in-process checkouts are paired by the hub itself: the key is
/// made here and written to the checkout's state directory (mode 0600).
fn own_key(keys: &Keys, terminal: &TerminalId, state_dir: &std::path::Path) -> Result<(), HubError> {
    let path = state_dir.join(tallybox_terminal::agent::KEY_FILE);
    let io = |error| StoreError::DataDir {
        dir: state_dir.display().to_string(),
        error,
    };
    tallybox_platform::fsync::private_dir(state_dir).map_err(io)?;
    let have = sealed_files::read_key(&path).unwrap_or(None);
    let key = keys.own_key(terminal, have)?;
    if have != Some(key) {
        sealed_files::write_key(&path, &key).map_err(io)?;
    }
    Ok(())
}
