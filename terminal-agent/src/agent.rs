//! The checkout's runtime: the thin layer of I/O around the sans-IO
//! [`Checkout`] core. It connects to the broker, feeds keys, cards, hub
//! answers and the time to the core, sleeps until the core's next deadline,
//! and carries out what the core asks: screens, slips, journal and key files,
//! and requests. Requests are published with QoS 0 and re-sent with the same id
//! until answered (the hub decides exactly-once by request id, so no MQTT QoS
//! handshake is needed on the sale path; see the latency notes in core/PROTOCOL.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Datelike;
use rumqttc::{AsyncClient, Packet, QoS};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::checkout::{Checkout, Ending, Event, HubLink, Output};
use crate::devices::{Display, Printer, SharedHealth};
use crate::journal::Journal;
use crate::print::queue::PrintQueue;
use crate::print::spool::{PrintReport, Spool, Spooler};
use crate::printed::PrintedRecord;
use crate::self_update::SelfUpdate;
use crate::session::{Input, SessionConfig};
use tallybox_core::protocol::{Status, TerminalId, Topics};
use tallybox_core::seal;
use tallybox_core::slip::Slip;
use tallybox_platform::mqtt::{self, BrokerAddr};
use tallybox_platform::sealed_files;
use tallybox_platform::update::Verdict;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub terminal_id: TerminalId,
    pub store: String,
    pub broker: BrokerAddr,
    /// Where the in-flight journal lives.
    pub state_dir: PathBuf,
    pub session: SessionConfig,
    /// Re-send an unanswered request this often.
    pub retry_every: Duration,
    /// Tell the cashier the hub is silent after this long.
    pub silent_after: Duration,
    /// While a printer problem lasts, check the printer this often.
    pub print_retry_every: Duration,
    /// Send the hub the device counters this often.
    pub heartbeat_every: Duration,
    /// Where the heartbeat reads the machine's temperature and power; `None`
    /// leaves them out (the hub's own checkout: the hub reports its machine).
    pub machine: Option<tallybox_platform::machine::Machine>,
    /// Where the checkout is installed, when it is (it then takes the
    /// updates the hub offers); `None` for the hub's own and test checkouts.
    pub install: Option<crate::self_update::Install>,
}

impl AgentConfig {
    pub fn new(terminal_id: TerminalId, store: &str, broker: BrokerAddr, state_dir: PathBuf) -> Self {
        AgentConfig {
            terminal_id: terminal_id.clone(),
            store: store.to_string(),
            broker,
            state_dir,
            session: SessionConfig {
                currency: tallybox_core::money::Currency::default(),
                slip_columns: tallybox_core::slip::WIDTH,
                lang: crate::session::Lang::En,
                terminal: terminal_id.to_string(),
            },
            retry_every: Duration::from_secs(1),
            silent_after: Duration::from_secs(15),
            print_retry_every: Duration::from_secs(2),
            heartbeat_every: Duration::from_secs(30),
            machine: None,
            install: None,
        }
    }
}

/// Why [`Agent::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Told to stop.
    Stopped,
    /// The owner asked for the program to restart.
    RestartAsked,
    /// A new version is installed: the service starts it.
    Updated(String),
    /// This version, on trial after an update, did not reach the hub within
    /// a minute: the program stops with an error, so that the launcher puts
    /// the previous version back.
    UpdateUnhealthy(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot use the state directory {dir}: {source}")]
    StateDir { dir: PathBuf, source: std::io::Error },
}

/// One input, with an optional note back once the session has handled it.
pub type Command = (Input, Option<oneshot::Sender<()>>);

/// How other tasks (the control API, a real keypad) reach a running agent.
#[derive(Clone)]
pub struct AgentHandle {
    pub inputs: mpsc::Sender<Command>,
    pub state: watch::Receiver<&'static str>,
    /// The amount a card is asked for now, if one is.
    pub card_wanted: watch::Receiver<Option<tallybox_core::money::Amount>>,
}

impl AgentHandle {
    /// Hands `input` to the session and waits until it was handled.
    pub async fn send(&self, input: Input) -> bool {
        let (done, wait) = oneshot::channel();
        if self.inputs.send((input, Some(done))).await.is_err() {
            return false;
        }
        wait.await.is_ok()
    }
}

pub struct Agent<D> {
    config: AgentConfig,
    devices: D,
    printer: Box<dyn Printer>,
    inputs: mpsc::Receiver<Command>,
    state: watch::Sender<&'static str>,
    card_wanted: watch::Sender<Option<tallybox_core::money::Amount>>,
    health: SharedHealth,
}

impl<D: Display> Agent<D> {
    pub fn new(
        config: AgentConfig,
        devices: D,
        printer: Box<dyn Printer>,
        health: SharedHealth,
    ) -> (Self, AgentHandle) {
        let (tx, rx) = mpsc::channel(64);
        let (state_tx, state_rx) = watch::channel("idle");
        let (wanted_tx, wanted_rx) = watch::channel(None);
        let agent = Agent {
            config,
            devices,
            printer,
            inputs: rx,
            state: state_tx,
            card_wanted: wanted_tx,
            health,
        };
        (
            agent,
            AgentHandle {
                inputs: tx,
                state: state_rx,
                card_wanted: wanted_rx,
            },
        )
    }

    /// Runs until `shutdown` is cancelled or the owner asks for a restart; then
    /// says goodbye on the status topic.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<Ended, AgentError> {
        let cfg = self.config.clone();
        let tid = &cfg.terminal_id;
        let topics = Topics::new(&cfg.store);
        let state_dir_error = |source| AgentError::StateDir {
            dir: cfg.state_dir.clone(),
            source,
        };
        let journal = Journal::open(&cfg.state_dir).map_err(state_dir_error)?;
        let printed = PrintedRecord::open(&cfg.state_dir).map_err(state_dir_error)?;
        let queue = PrintQueue::open(&cfg.state_dir).map_err(state_dir_error)?;
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let spool = Spool::new(queue).counting(self.health.clone());
        let waiting_slips = spool.waiting();
        let spooler = Spooler::start(self.printer, spool, reports_tx, cfg.print_retry_every);
        if waiting_slips > 0 {
            tracing::info!(terminal = %tid, slips = waiting_slips, "slips left unprinted at last stop will print once the printer is ready");
        }
        let key = sealed_files::read_key(&cfg.state_dir.join(KEY_FILE)).map_err(state_dir_error)?;
        // Without a login in the broker's URL, the checkout logs in as itself:
        // its terminal id, and once paired the password its key gives (the
        // hub's embedded broker insists on it for a paired id).
        let (login, logins) = watch::channel(match &cfg.broker.credentials {
            Some(given) => given.clone(),
            None => broker_login(tid, key.as_ref()),
        });
        let broker = BrokerAddr {
            credentials: Some(login.borrow().clone()),
            ..cfg.broker.clone()
        };
        let (client, eventloop) =
            mqtt::connect(&format!("tallybox-term-{tid}"), &broker, &topics.term_status(tid));
        let counter =
            sealed_files::Counter::kept_in(&cfg.state_dir.join(COUNTER_FILE)).map_err(state_dir_error)?;
        let seen = sealed_files::read_seen(&cfg.state_dir.join(SEEN_FILE)).map_err(state_dir_error)?;
        let link =
            HubLink::new(tid.as_str(), &cfg.store, key, cfg.retry_every, cfg.silent_after).remembering(seen);
        if link.is_paired() {
            tracing::info!(terminal = %tid, "paired with the hub: messages are sealed");
        }
        let in_flight = match journal.load() {
            Ok(Some(entry)) => {
                tracing::info!(terminal = %tid, request_id = %entry.request_id, "recalling the sale in flight at last stop");
                Some(entry)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(terminal = %tid, error = %e, "in-flight journal unreadable; kept aside as in-flight.damaged");
                None
            }
        };
        let mut checkout = Checkout::new(
            cfg.session.clone(),
            link,
            Box::new(move || counter.next()),
            VERSION,
            in_flight,
            printed.last_trace(),
            Instant::now(),
        );
        checkout.handle(local_clock(), Instant::now());
        let mut run = Running {
            client,
            spooler,
            topics: topics.clone(),
            tid: tid.clone(),
            journal,
            printed,
            key_path: cfg.state_dir.join(KEY_FILE),
            seen_path: cfg.state_dir.join(SEEN_FILE),
            login: cfg.broker.credentials.is_none().then_some(login),
            health: self.health.clone(),
            self_update: cfg.install.clone().map(SelfUpdate::new),
            said_not_installed: false,
            broker_host: cfg.broker.host.clone(),
            scratch: cfg.state_dir.join("update.download"),
            beat_now: false,
        };
        let started = Instant::now();
        let mut clock = tokio::time::interval(Duration::from_secs(1));
        let mut heartbeat = tokio::time::interval(cfg.heartbeat_every);
        // The event loop runs on its own task: dropping a half-finished `poll()`
        // (as a `select!` does when a timer fires) would abort a connection attempt.
        let (events_tx, mut events) = mpsc::channel(64);
        let pump = tokio::spawn(pump(eventloop, events_tx, logins));
        let (answers, hub_status) = (topics.resp(tid), topics.hub_status());
        let (installed_tx, mut installed) = mpsc::channel(1);
        let ended = loop {
            if let Some(ended) = run.carry_out(&mut checkout, &mut self.devices, &installed_tx) {
                break ended;
            }
            publish_state(&self.state, &self.card_wanted, &checkout);
            if std::mem::take(&mut run.beat_now) {
                heartbeat.reset_immediately();
            }
            let deadline = checkout.poll_timeout();
            let mut done = None;
            let event = tokio::select! {
                _ = shutdown.cancelled() => break Ended::Stopped,
                Some(link) = events.recv() => match link {
                    Link::Up => {
                        tracing::info!(terminal = %tid, broker = %cfg.broker, "connected to broker");
                        // The devices' health at once: one sent before the
                        // link was up went nowhere.
                        heartbeat.reset_immediately();
                        Event::Connected
                    }
                    Link::Message(topic, payload) if topic == answers => Event::Message(payload.to_vec()),
                    Link::Message(topic, payload) if topic == hub_status => {
                        match tallybox_core::protocol::decode_status(&payload) {
                            Ok(status) => Event::HubStatus { online: status.online },
                            Err(_) => continue,
                        }
                    }
                    Link::Message(..) => continue,
                    Link::Down(e) => {
                        if checkout.is_connected() {
                            tracing::warn!(terminal = %tid, error = %e, "lost the broker; reconnecting");
                        }
                        Event::Disconnected
                    }
                },
                Some(report) = reports.recv() => Event::Input(match report {
                    // A printer that stops or starts again is on the owner's
                    // page at once, not with the next heartbeat.
                    PrintReport::Failed { problem, waiting } => {
                        self.health.printer(Some(problem), waiting as u32);
                        heartbeat.reset_immediately();
                        Input::Printer(Some(problem))
                    }
                    PrintReport::Recovered { .. } => {
                        self.health.printer(None, 0);
                        heartbeat.reset_immediately();
                        Input::Printer(None)
                    }
                    PrintReport::PaperLow(low) => {
                        self.health.paper_low(low);
                        Input::PaperLow(low)
                    }
                    PrintReport::DrawerShut(problem) => Input::DrawerShut(problem),
                }),
                Some((input, note)) = self.inputs.recv() => {
                    done = note;
                    Event::Input(input)
                }
                Some(result) = installed.recv() => {
                    if let Some(su) = run.self_update.as_mut() {
                        su.finished(&result);
                    }
                    match result {
                        Ok(version) => {
                            tracing::warn!(terminal = %tid, %version, "update installed; stopping once idle so that the service starts it");
                            Event::Installed(version)
                        }
                        Err(e) => {
                            tracing::warn!(terminal = %tid, error = %e, "the offered update was not installed");
                            continue;
                        }
                    }
                }
                _ = clock.tick() => {
                    match run.self_update.as_mut().and_then(|su| su.prove(checkout.is_connected())) {
                        Some(Verdict::Confirmed(version)) => {
                            tracing::info!(terminal = %tid, %version, "the update proved itself: it stays")
                        }
                        Some(Verdict::GaveUp(version)) => {
                            tracing::error!(terminal = %tid, %version, "the new version did not reach the hub within a minute; stopping so that the previous one comes back");
                            break Ended::UpdateUnhealthy(version);
                        }
                        None => {}
                    }
                    local_clock()
                }
                _ = heartbeat.tick() => {
                    let mut devices = self.health.snapshot();
                    devices.machine = cfg.machine.as_ref().map(tallybox_platform::machine::Machine::health);
                    Event::Heartbeat { uptime_s: started.elapsed().as_secs(), devices }
                }
                _ = sleep_until(deadline) => Event::Timeout,
            };
            checkout.handle(event, Instant::now());
            if let Some(done) = done {
                // Whoever waits on `done` (the control API) may look at the
                // state next, from another thread: it must be current first.
                if let Some(ended) = run.carry_out(&mut checkout, &mut self.devices, &installed_tx) {
                    let _ = done.send(());
                    break ended;
                }
                publish_state(&self.state, &self.card_wanted, &checkout);
                let _ = done.send(());
            }
        };
        let offline = Status {
            online: false,
            version: VERSION.into(),
            detail: Some(match &ended {
                Ended::Stopped => "stopped".into(),
                Ended::RestartAsked => "restarting".into(),
                Ended::Updated(version) => format!("restarting into {version}"),
                Ended::UpdateUnhealthy(version) => format!("stopped: {version} is not healthy"),
            }),
        };
        let _ = run
            .client
            .try_publish(topics.term_status(tid), QoS::AtLeastOnce, true, offline.payload());
        let _ = run.client.try_disconnect();
        // Let the goodbye reach the broker before the connection drops.
        let _ = tokio::time::timeout(Duration::from_millis(500), pump).await;
        Ok(ended)
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The local time, as the checkout core takes it.
fn local_clock() -> Event {
    let now = tallybox_platform::clock::now();
    Event::Clock {
        hhmm: now.format("%H:%M").to_string(),
        today: (now.year() as u16, now.month() as u8),
    }
}

/// What the event loop task reports.
enum Link {
    Up,
    Message(String, bytes::Bytes),
    Down(rumqttc::ConnectionError),
}

/// A checkout's own broker login: its terminal id, and the password its key
/// gives (none before it is paired).
fn broker_login(tid: &TerminalId, key: Option<&seal::Key>) -> (String, String) {
    let password = key.map(|k| seal::broker_password(k, tid.as_str()));
    (tid.to_string(), password.unwrap_or_default())
}

/// Polls the MQTT event loop until the client disconnects or the agent is
/// gone; each new connection logs in with the latest of `logins`.
async fn pump(
    mut eventloop: rumqttc::EventLoop,
    events: mpsc::Sender<Link>,
    mut logins: watch::Receiver<(String, String)>,
) {
    let mut backoff = mqtt::Backoff::default();
    loop {
        if logins.has_changed().unwrap_or(false) {
            let (user, password) = logins.borrow_and_update().clone();
            eventloop.mqtt_options.set_credentials(user, password);
        }
        let link = match eventloop.poll().await {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                Link::Up
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => Link::Message(p.topic, p.payload),
            Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => continue,
            Err(e) => {
                let _ = events.send(Link::Down(e)).await;
                backoff.wait().await;
                continue;
            }
        };
        if events.send(link).await.is_err() {
            return;
        }
    }
}

/// Tells the handles what the session is doing and whether it wants a card.
fn publish_state(
    state: &watch::Sender<&'static str>,
    card_wanted: &watch::Sender<Option<tallybox_core::money::Amount>>,
    checkout: &Checkout,
) {
    let _ = state.send(checkout.state_name());
    card_wanted.send_if_modified(|w| {
        let now = checkout.card_wanted();
        let changed = *w != now;
        *w = now;
        changed
    });
}

/// Where a terminal keeps the key it shares with the hub.
pub const KEY_FILE: &str = "hub.key";
/// Where a terminal keeps the floor of its message counter (see [`sealed_files::Counter`]).
pub const COUNTER_FILE: &str = "seal-counter";
/// Where a terminal keeps the highest counter it took from the hub.
pub const SEEN_FILE: &str = "hub-seen";

/// The runtime's side: the broker client, the files and the devices that
/// the checkout core's outputs are carried out on.
struct Running {
    client: AsyncClient,
    spooler: Spooler,
    topics: Topics,
    tid: TerminalId,
    journal: Journal,
    printed: PrintedRecord,
    key_path: PathBuf,
    seen_path: PathBuf,
    /// The checkout's own broker login, for the next connection (`None` when
    /// the broker's URL gives one).
    login: Option<watch::Sender<(String, String)>>,
    /// The device counts, for the menu's self-test.
    health: SharedHealth,
    self_update: Option<SelfUpdate>,
    said_not_installed: bool,
    broker_host: String,
    /// Where an offered update is downloaded to.
    scratch: PathBuf,
    /// The hub asked for a heartbeat: send it before the next wait.
    beat_now: bool,
}

impl Running {
    /// Carries out what the core asks, in order, until it has nothing more;
    /// why to stop, when it says so. The journal's and the print queue's
    /// fsyncs run with `block_in_place`, so the runtime's other tasks (the
    /// broker link, the control API) move to another thread meanwhile; the
    /// checkout's runtime is multi-threaded for this.
    fn carry_out<D: Display>(
        &mut self,
        checkout: &mut Checkout,
        devices: &mut D,
        installed: &mpsc::Sender<Result<String, String>>,
    ) -> Option<Ended> {
        while let Some(output) = checkout.poll_action() {
            match output {
                Output::Publish(payload) => {
                    let topic = self.topics.req(&self.tid);
                    if let Err(e) = self.client.try_publish(topic, QoS::AtMostOnce, false, payload) {
                        tracing::warn!(terminal = %self.tid, error = %e, "request not queued; will re-send");
                    }
                }
                Output::Online => self.on_connect(),
                Output::Show(screen) => devices.show(&screen),
                Output::Print(slip) => self.spooler.submit(slip),
                Output::OpenDrawer => self.spooler.open_drawer(),
                Output::QueueSale { request_id, slips } => {
                    let queued = tokio::task::block_in_place(|| {
                        self.spooler.queue_sale(request_id.as_str(), slips.clone())
                    });
                    if let Err(e) = queued {
                        tracing::error!(terminal = %self.tid, error = %e, "cannot queue the sale's slips; printing them anyway");
                        slips.into_iter().for_each(|slip| self.spooler.submit(slip));
                    }
                }
                Output::Journal(entry) => {
                    let written = tokio::task::block_in_place(|| match &entry {
                        Some(entry) => self.journal.record(entry),
                        None => self.journal.clear(),
                    });
                    if let Err(e) = written {
                        tracing::error!(terminal = %self.tid, error = %e, "cannot write the in-flight journal");
                        checkout.handle(Event::JournalFailed, Instant::now());
                    }
                }
                Output::KeepPrinted(entry) => {
                    if let Err(e) = tokio::task::block_in_place(|| self.printed.append(&entry)) {
                        tracing::error!(terminal = %self.tid, error = %e, "cannot add the approval to the record of printed approvals");
                    }
                }
                Output::SendPrinted { from_batch } => match self.printed.since_batch(from_batch) {
                    Ok(entries) if entries.is_empty() => {}
                    Ok(entries) => {
                        tracing::debug!(terminal = %self.tid, approvals = entries.len(), from_batch, "the record of printed approvals goes to the hub");
                        checkout.send_printed(entries, Instant::now());
                    }
                    Err(e) => {
                        tracing::error!(terminal = %self.tid, error = %e, "cannot read the record of printed approvals")
                    }
                },
                Output::KeepKey(key) => {
                    let kept = sealed_files::write_key(&self.key_path, &key).map_err(|e| e.to_string());
                    if let (Ok(()), Some(login)) = (&kept, &self.login) {
                        login.send_replace(broker_login(&self.tid, Some(&key)));
                    }
                    checkout.handle(Event::KeyKept(kept), Instant::now());
                }
                Output::KeepSeen(seen) => {
                    if let Err(e) =
                        tokio::task::block_in_place(|| sealed_files::write_seen(&self.seen_path, seen))
                    {
                        tracing::error!(terminal = %self.tid, error = %e, "cannot keep the hub's message counter; a message captured now could be replayed after a restart");
                    }
                }
                Output::PrintTestSlip => self.spooler.submit(self.test_slip(checkout)),
                Output::Heartbeat => self.beat_now = true,
                Output::SelfTest => {
                    devices.show(&checkout.self_test(self.health.snapshot()));
                    self.spooler.submit(self.test_slip(checkout));
                }
                Output::UpdateOffered { version, port, path } => {
                    self.fetch_update(version, port, &path, installed)
                }
                Output::TimeZone(zone) => follow_time_zone(&self.tid, &zone),
                Output::Stop(Ending::Restart) => return Some(Ended::RestartAsked),
                Output::Stop(Ending::Updated(version)) => return Some(Ended::Updated(version)),
            }
        }
        None
    }

    /// The slip that shows the printer works (the owner's or the menu's test).
    fn test_slip(&self, checkout: &Checkout) -> Slip {
        let time = tallybox_platform::clock::now()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        checkout.test_slip(&time, VERSION)
    }

    fn on_connect(&mut self) {
        let resp = self.topics.resp(&self.tid);
        if let Err(e) = self.client.try_subscribe(resp, QoS::AtMostOnce) {
            tracing::error!(terminal = %self.tid, error = %e, "cannot subscribe to answers");
        }
        // The hub's own status: a hub back on the same broker after a restart
        // gets a sign-in (and this checkout's record of printed approvals).
        let _ = self
            .client
            .try_subscribe(self.topics.hub_status(), QoS::AtMostOnce);
        let online = Status {
            online: true,
            version: VERSION.into(),
            detail: None,
        };
        let _ = self.client.try_publish(
            self.topics.term_status(&self.tid),
            QoS::AtLeastOnce,
            true,
            online.payload(),
        );
    }

    /// Takes the hub's offer of `version` when this checkout runs from an
    /// install and wants it: downloads and installs it off the event loop.
    fn fetch_update(
        &mut self,
        version: String,
        port: u16,
        path: &str,
        installed: &mpsc::Sender<Result<String, String>>,
    ) {
        let tid = &self.tid;
        let Some(su) = self.self_update.as_mut() else {
            if !self.said_not_installed {
                self.said_not_installed = true;
                tracing::info!(terminal = %tid, %version, "update offered; this checkout is not run from an install, so it stays as it is");
            }
            return;
        };
        if let Err(why) = su.wants(&version) {
            tracing::debug!(terminal = %tid, %version, why, "update offer ignored");
            return;
        }
        su.started(&version);
        let host = match self.broker_host.contains(':') {
            true => format!("[{}]", self.broker_host),
            false => self.broker_host.clone(),
        };
        let url = format!("http://{host}:{port}{path}");
        tracing::info!(terminal = %tid, %version, %url, "the hub offers a newer version: fetching it");
        let (install, done, scratch) = (su.install().clone(), installed.clone(), self.scratch.clone());
        tokio::task::spawn_blocking(move || {
            let result = SelfUpdate::fetch_and_install(&install, &version, &url, scratch);
            let _ = done.blocking_send(result);
        });
    }
}

/// The store's time zone, when the hub says it: the clock follows it.
fn follow_time_zone(tid: &TerminalId, zone: &str) {
    if tallybox_platform::clock::zone_name() == zone {
        return;
    }
    match tallybox_platform::clock::set_zone(zone) {
        Ok(()) => {
            tracing::info!(terminal = %tid, time_zone = %zone, "local time follows the store's time zone")
        }
        Err(e) => tracing::warn!(terminal = %tid, error = %e, "the store's time zone cannot be used here"),
    }
}
