//! A running hub, assembled: store → coordinator (reversing what a crash left
//! pending) → broker → MQTT link → web server → mDNS → the in-process
//! checkouts. `tallybox serve` and `tallybox demo` both start it from here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tallybox_core::money::Amount;
use tallybox_core::protocol::{TerminalId, Topics};
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

use crate::acquirer::iso8583::client::{IsoAcquirer, IsoConfig};
use crate::acquirer::iso8583::mac::MacKey;
use crate::acquirer::sim::SimAcquirer;
use crate::acquirer::AnyAcquirer;
use crate::broker::{self, BrokerError};
use crate::config::{Config, ConfigError};
use crate::coordinator::{Coordinator, Settings};
use crate::keys::Keys;
use crate::shop::{SharedShop, Shop};
use crate::store::{Store, StoreError, StoreHandle};
use crate::web::{self, BindError, WebState};
use crate::{discovery, link, notices};

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
}

/// After an update, the new version's proof: the web page serving (it is,
/// by now), the database open, and the broker link up for a while. Then the
/// new version stays; without it within a minute, the hub stops (`stop`)
/// and [`run`] returns the version as an error, so that the launcher puts
/// the previous version back.
async fn prove_update(
    root: std::path::PathBuf,
    connected: watch::Receiver<bool>,
    stop: Arc<watch::Sender<bool>>,
    gave_up: Arc<Mutex<Option<String>>>,
) {
    use tallybox_platform::update::{Trial, Verdict, HEALTHY_FOR};
    let Some(mut trial) = Trial::begin(&root) else {
        return;
    };
    tracing::warn!(
        version = trial.version(),
        "running a new version on trial: it stays once healthy for {} s",
        HEALTHY_FOR.as_secs()
    );
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let healthy = *connected.borrow();
        match trial.step(healthy, "healthy (web page, database and broker link)") {
            Some(Verdict::Confirmed(version)) => {
                tracing::info!(%version, "the update proved healthy: it stays");
                return;
            }
            Some(Verdict::GaveUp(version)) => {
                tracing::error!(%version, "the new version is not healthy within a minute (no broker link); stopping so that the previous one comes back");
                *gave_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
                stop.send_replace(true);
                return;
            }
            None => {}
        }
    }
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

/// The acquirer the settings name: the built-in simulator, or an ISO 8583 host.
fn acquirer(config: &Config) -> Result<AnyAcquirer, ConfigError> {
    let Some(addr) = config.iso8583_addr() else {
        return Ok(AnyAcquirer::Sim(SimAcquirer::default()));
    };
    let mac_key =
        MacKey::parse(config.acquirer_mac_key.expose()).map_err(|message| ConfigError::Invalid {
            key: "acquirer_mac_key",
            message,
        })?;
    let currency = config.currency.numeric().ok_or_else(|| ConfigError::Invalid {
        key: "currency",
        message: format!(
            "{} has no ISO 4217 numeric code here, which the ISO 8583 link needs",
            config.currency
        ),
    })?;
    Ok(AnyAcquirer::Iso(IsoAcquirer::start(IsoConfig {
        addr: addr.to_string(),
        merchant_id: config.merchant_id.clone(),
        currency,
        mac_key,
        hub_terminal: OWN_CHECKOUT.to_string(),
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

pub async fn run(
    config: Config,
    options: Options,
    shutdown: watch::Receiver<bool>,
    on_start: impl FnOnce(&Started),
) -> Result<(), HubError> {
    config.validate()?;
    // The caller's stop, and the hub's own (after an update from the page).
    let stop = Arc::new(watch::channel(false).0);
    let shutdown = {
        let (stop, mut outer) = (Arc::clone(&stop), shutdown);
        let inner = stop.subscribe();
        tokio::spawn(async move {
            let _ = outer.wait_for(|s| *s).await;
            stop.send_replace(true);
        });
        inner
    };
    let store = StoreHandle::spawn(Store::open(&config.data_dir)?).map_err(|error| StoreError::DataDir {
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
    let coordinator = Arc::new(Coordinator::new(
        store,
        acquirer,
        Settings {
            shop: Arc::clone(&shop),
            currency: config.currency,
            max_sale: Amount::from_minor(config.max_sale_minor).unwrap_or(Amount::ZERO),
            acquirer_timeout: config.acquirer_timeout(),
            fraud: config.fraud.clone(),
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

    let keys = Arc::new(Keys::load(
        Store::open(&config.data_dir)?,
        Arc::clone(&shop),
        &config.store_id,
        &config.data_dir.join("seal-counter"),
    )?);
    // The hub's link logs in to its own broker; the checkouts it runs itself
    // log in with their keys like any other.
    let (broker_addr, link_addr, logins) = match config.broker_addr() {
        Some(external) => (external.clone(), external, None),
        None => {
            let logins = Arc::new(broker::Logins::new(Arc::clone(&keys)));
            broker::start(config.mqtt, Arc::clone(&logins))?;
            let addr = reachable(config.mqtt);
            let link_addr = BrokerAddr {
                credentials: Some(logins.hub_login()),
                ..addr.clone()
            };
            (addr, link_addr, Some(logins))
        }
    };
    let embedded = logins.is_some();

    let (connected_tx, connected_rx) = watch::channel(false);
    let topics = Topics::new(&config.store_id);
    let setup_code = owner_account(&mut web_store, options.owner_password.as_deref())?;
    let auth = Arc::new(web::auth::Auth::new(setup_code.clone()));
    let changes = web::watch_changes(config.data_dir.join("tallybox.db"));
    let web_store = Arc::new(Mutex::new(web_store));
    let alert_store = Arc::clone(&web_store);
    let (push, pushes) = tokio::sync::mpsc::channel(64);
    let web_state = WebState {
        keys: Arc::clone(&keys),
        store: web_store,
        auth: Arc::clone(&auth),
        shop,
        push,
        currency: config.currency,
        broker_connected: connected_rx.clone(),
        broker_logins: logins,
        install_root: options.install_root.clone(),
        update_keys: options.update_keys.clone(),
        stop: Arc::clone(&stop),
        terminal_update: Arc::new(Mutex::new(web::update::kept_terminal_update(
            &config.data_dir,
            &options.update_keys,
        ))),
        http_port: Arc::new(std::sync::atomic::AtomicU16::new(config.http.port())),
        changes: changes.clone(),
        machine: tallybox_platform::machine::Machine::at(&options.sys_root),
        acquirer: acquirer_link,
        own_checkouts: own_checkout_ids(&config, options.extra_terminals),
        checks: Arc::new(Mutex::new(web::Watch::new(Store::open(&config.data_dir)?))),
    };
    let watch = web::keep_watch(web_state.clone(), shutdown.clone());
    let offers = web_state.clone();
    let (http, server) = web::bind(config.http, web_state, shutdown.clone()).await?;
    offers
        .http_port
        .store(http.port(), std::sync::atomic::Ordering::Relaxed);

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(server);
    {
        // A checkout that was off when its update came is offered it later.
        let mut shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = every.tick() => { web::update::offer_terminal_update(&offers).await; }
                }
            }
        });
    }
    tasks.spawn(watch);
    let gave_up = Arc::new(Mutex::new(None));
    if let Some(root) = options.install_root.clone() {
        tasks.spawn(prove_update(
            root,
            connected_rx.clone(),
            Arc::clone(&stop),
            Arc::clone(&gave_up),
        ));
    }
    tasks.spawn(link::run(
        Arc::clone(&coordinator),
        Arc::clone(&keys),
        link_addr,
        topics,
        pushes,
        connected_tx,
        shutdown.clone(),
    ));
    {
        // The replay marks, every few seconds and once more at a clean stop.
        let (keys, mut shutdown) = (Arc::clone(&keys), shutdown.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                let stopping = tokio::select! {
                    _ = shutdown.changed() => true,
                    _ = every.tick() => false,
                };
                let keys = Arc::clone(&keys);
                match tokio::task::spawn_blocking(move || keys.save_replay_marks()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot save the message counters seen"),
                    Err(e) => tracing::error!(error = %e, "the replay-mark task failed"),
                    Ok(Ok(_)) => {}
                }
                if stopping {
                    break;
                }
            }
        });
    }
    {
        let (coordinator, mut shutdown) = (Arc::clone(&coordinator), shutdown.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(config.reversal_retry_secs));
            every.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = every.tick() => {
                        if let Err(e) = coordinator.reverse_leftovers().await {
                            tracing::error!(error = %e, "reversal sweep failed");
                        }
                    }
                }
            }
        });
    }

    if let Some(at) = config.settle_at.clone() {
        let (coordinator, mut shutdown) = (Arc::clone(&coordinator), shutdown.clone());
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(20));
            let mut done_on = None;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = every.tick() => {
                        let now = tallybox_platform::clock::now();
                        if now.format("%H:%M").to_string() != at || done_on == Some(now.date_naive()) {
                            continue;
                        }
                        done_on = Some(now.date_naive());
                        match coordinator.settle().await {
                            Ok(s) => tracing::info!(batch_no = s.batch_no, balanced = s.balanced, "daily settlement done"),
                            Err(e) => tracing::error!(error = %e, "daily settlement failed; settle from a checkout (D, 3)"),
                        }
                    }
                }
            }
        });
    }

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
            AgentConfig::new(tid.clone(), &config.store_id, broker_addr.clone(), state_dir);
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
                let (agent, handle) = Agent::new(agent_config, hw.display, hw.printer, inputs.health.clone());
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
                auth.setup_code(),
                handle.clone(),
                config.public_url.clone(),
            ));
            tasks.spawn(notices::fraud_alerts(
                Arc::clone(&alert_store),
                changes.clone(),
                handle,
            ));
        }
        let stop = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = agent.run(stop).await {
                tracing::error!(error = %e, "checkout stopped");
            }
        });
        checkouts.push((tid, control_addr));
    }

    on_start(&Started {
        http,
        broker: broker_addr,
        embedded_broker: embedded,
        checkouts,
        setup_code,
    });
    // systemd: serving now, and alive while the runtime runs.
    tallybox_platform::service::started();
    let mut shutdown = shutdown;
    let _ = shutdown.wait_for(|stop| *stop).await;
    tallybox_platform::service::notify("STOPPING=1");
    // Give the link and the checkouts a moment to say "offline".
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let gave_up = gave_up.lock().unwrap_or_else(|e| e.into_inner()).take();
    match gave_up {
        Some(version) => Err(HubError::UpdateUnhealthy(version)),
        None => Ok(()),
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
    std::fs::create_dir_all(state_dir).map_err(io)?;
    let have = sealed_files::read_key(&path).unwrap_or(None);
    let key = keys.own_key(terminal, have)?;
    if have != Some(key) {
        sealed_files::write_key(&path, &key).map_err(io)?;
    }
    Ok(())
}
