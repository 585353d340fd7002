//! The checkout's runtime: the thin layer of I/O around the sans-IO
//! [`Session`]. It connects to the broker, feeds keys, cards and hub answers to
//! the session, and carries out what the session asks: screens, slips and
//! requests. Requests are published with QoS 0 and re-sent with the same id
//! until answered (the hub decides exactly-once by request id, so no MQTT QoS
//! handshake is needed on the sale path; see the latency notes in core/PROTOCOL.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tallybox_core::protocol::requests;

use chrono::Datelike;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{mpsc, oneshot, watch};

use crate::devices::{Display, Printer, SharedHealth};
use crate::journal::{InFlight, Journal};
use crate::link::{Ending, HubLink};
use crate::print::queue::PrintQueue;
use crate::print::spool::{PrintReport, Spool, Spooler};
use crate::self_update::SelfUpdate;
use crate::session::{Action, Input, Session, SessionConfig};
use tallybox_core::protocol::{Request, Response, Status, TerminalId, Topics};
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
            terminal_id,
            store: store.to_string(),
            broker,
            state_dir,
            session: SessionConfig {
                currency: tallybox_core::money::Currency::default(),
                pin_key: tallybox_core::secret::Secret::new(tallybox_core::card::pin_block::TEST_PIN_KEY),
                slip_columns: tallybox_core::slip::WIDTH,
                lang: crate::session::Lang::En,
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

    /// Runs until `shutdown` turns true or the owner asks for a restart; then
    /// says goodbye on the status topic.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<Ended, AgentError> {
        let cfg = self.config.clone();
        let tid = &cfg.terminal_id;
        let topics = Topics::new(&cfg.store);
        let state_dir_error = |source| AgentError::StateDir {
            dir: cfg.state_dir.clone(),
            source,
        };
        let journal = Journal::open(&cfg.state_dir).map_err(state_dir_error)?;
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
        let mut run = Running {
            client,
            spooler,
            topics: topics.clone(),
            tid: tid.clone(),
            session: Session::new(cfg.session.clone()),
            journal,
            journaled: None,
            link: HubLink::new(tid.as_str(), &cfg.store, key, cfg.retry_every, cfg.silent_after),
            key_path: cfg.state_dir.join(KEY_FILE),
            login: cfg.broker.credentials.is_none().then_some(login),
            counter: sealed_files::Counter::kept_in(&cfg.state_dir.join(COUNTER_FILE))
                .map_err(state_dir_error)?,
            health: self.health.clone(),
        };
        if run.link.is_paired() {
            tracing::info!(terminal = %tid, "paired with the hub: messages are sealed");
        }
        let mut actions = run.session.start(VERSION);
        match run.journal.load() {
            Ok(Some(entry)) => {
                tracing::info!(terminal = %tid, request_id = %entry.request_id, "recalling the sale in flight at last stop");
                run.journaled = Some(entry.clone());
                actions.extend(run.session.resume(entry));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(terminal = %tid, error = %e, "in-flight journal unreadable; kept aside as in-flight.damaged")
            }
        }
        run.apply(actions, &mut self.devices);
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut heartbeat = tokio::time::interval(cfg.heartbeat_every);
        let mut ended = Ended::Stopped;
        // The event loop runs on its own task: dropping a half-finished `poll()`
        // (as a `select!` does when a timer fires) would abort a connection attempt.
        let (events_tx, mut events) = mpsc::channel(64);
        let pump = tokio::spawn(pump(eventloop, events_tx, logins));
        let mut connected = false;
        let mut clock = String::new();
        let answers = topics.resp(tid);
        let mut self_update = cfg.install.clone().map(SelfUpdate::new);
        let mut said_not_installed = false;
        let (installed_tx, mut installed) = mpsc::channel(1);
        loop {
            if let Some(why) = run.link.stop_now(run.session.state_name() == "idle") {
                ended = match why {
                    Ending::Restart => Ended::RestartAsked,
                    Ending::Updated(version) => Ended::Updated(version.clone()),
                };
                break;
            }
            publish_state(&self.state, &self.card_wanted, &run.session);
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(event) = events.recv() => match event {
                    Link::Up => {
                        connected = true;
                        tracing::info!(terminal = %tid, broker = %cfg.broker, "connected to broker");
                        run.on_connect();
                        // The devices' health at once: one sent before the
                        // link was up went nowhere.
                        heartbeat.reset_immediately();
                    }
                    Link::Message(topic, payload) if topic == answers => {
                        let Some(response) = run.open_answer(&payload) else {
                            continue;
                        };
                        if let Some(outcome) = run.finish_pairing(&response) {
                            // Paired: the session signs in again, sealed now.
                            let actions = run.session.handle(Input::Paired(outcome), today());
                            run.apply(actions, &mut self.devices);
                            continue;
                        }
                        follow_time_zone(tid, &response);
                        match response {
                            Response::TestSlip => {
                                tracing::info!(terminal = %tid, "printing a test slip the owner asked for");
                                run.spooler.submit(run.test_slip());
                                continue;
                            }
                            Response::Update { version, port, path } => {
                                let Some(su) = self_update.as_mut() else {
                                    if !said_not_installed {
                                        said_not_installed = true;
                                        tracing::info!(terminal = %tid, %version, "update offered; this checkout is not run from an install, so it stays as it is");
                                    }
                                    continue;
                                };
                                if let Err(why) = su.wants(&version) {
                                    tracing::debug!(terminal = %tid, %version, why, "update offer ignored");
                                    continue;
                                }
                                su.started(&version);
                                let host = match cfg.broker.host.contains(':') {
                                    true => format!("[{}]", cfg.broker.host),
                                    false => cfg.broker.host.clone(),
                                };
                                let url = format!("http://{host}:{port}{path}");
                                tracing::info!(terminal = %tid, %version, %url, "the hub offers a newer version: fetching it");
                                let (install, done, scratch) =
                                    (su.install().clone(), installed_tx.clone(), cfg.state_dir.join("update.download"));
                                tokio::task::spawn_blocking(move || {
                                    let result = SelfUpdate::fetch_and_install(&install, &version, &url, scratch);
                                    let _ = done.blocking_send(result);
                                });
                                continue;
                            }
                            Response::Restart => {
                                // Never in the middle of a sale: once the checkout is idle.
                                tracing::warn!(terminal = %tid, "the owner asked for a restart; it happens when the checkout is idle");
                                run.link.stop_when_idle(Ending::Restart);
                                continue;
                            }
                            _ => {}
                        }
                        let actions = run.session.handle(Input::Answer(Box::new(response)), today());
                        run.apply(actions, &mut self.devices);
                    }
                    Link::Message(..) => {}
                    Link::Down(e) => {
                        if connected {
                            tracing::warn!(terminal = %tid, error = %e, "lost the broker; reconnecting");
                        }
                        connected = false;
                    }
                },
                Some(report) = reports.recv() => {
                    let input = match report {
                        PrintReport::Failed { problem, waiting } => {
                            self.health.printer(Some(problem), waiting as u32);
                            Input::Printer(Some(problem))
                        }
                        PrintReport::Recovered { .. } => {
                            self.health.printer(None, 0);
                            Input::Printer(None)
                        }
                        PrintReport::PaperLow(low) => {
                            self.health.paper_low(low);
                            Input::PaperLow(low)
                        }
                    };
                    let actions = run.session.handle(input, today());
                    run.apply(actions, &mut self.devices);
                }
                Some((input, done)) = self.inputs.recv() => {
                    let actions = run.session.handle(input, today());
                    run.apply(actions, &mut self.devices);
                    // Whoever waits on `done` (the control API) may look at the
                    // state next, from another thread: it must be current first.
                    publish_state(&self.state, &self.card_wanted, &run.session);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                Some(result) = installed.recv() => {
                    if let Some(su) = self_update.as_mut() {
                        su.finished(&result);
                    }
                    match result {
                        Ok(version) => {
                            tracing::warn!(terminal = %tid, %version, "update installed; stopping once idle so that the service starts it");
                            run.link.stop_when_idle(Ending::Updated(version));
                        }
                        Err(e) => tracing::warn!(terminal = %tid, error = %e, "the offered update was not installed"),
                    }
                }
                _ = tick.tick() => {
                    match self_update.as_mut().and_then(|su| su.prove(connected)) {
                        Some(Verdict::Confirmed(version)) => {
                            tracing::info!(terminal = %tid, %version, "the update proved itself: it stays")
                        }
                        Some(Verdict::GaveUp(version)) => {
                            tracing::error!(terminal = %tid, %version, "the new version did not reach the hub within a minute; stopping so that the previous one comes back");
                            ended = Ended::UpdateUnhealthy(version);
                            break;
                        }
                        None => {}
                    }
                    let now = tallybox_platform::clock::now().format("%H:%M").to_string();
                    if now != clock {
                        clock = now.clone();
                        let actions = run.session.handle(Input::Clock(now), today());
                        run.apply(actions, &mut self.devices);
                    }
                    if connected && run.link.resend_due(Instant::now()) {
                        run.resend();
                    }
                    if run.link.pairing_expired(Instant::now()) {
                        let failed = Input::Paired(Err("the hub did not answer".into()));
                        let actions = run.session.handle(failed, today());
                        run.apply(actions, &mut self.devices);
                    }
                    if run.link.hub_silent(run.session.waiting_on(), Instant::now()) {
                        let actions = run.session.handle(Input::HubSilent, today());
                        run.apply(actions, &mut self.devices);
                    }
                }
                _ = heartbeat.tick() => {
                    let mut devices = self.health.snapshot();
                    devices.machine = cfg.machine.as_ref().map(tallybox_platform::machine::Machine::health);
                    run.publish_request(&Request::Heartbeat(requests::Heartbeat {
                        uptime_s: started.elapsed().as_secs(),
                        devices: Some(devices),
                    }));
                }
            }
        }
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
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                Link::Up
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Link::Message(p.topic, p.payload),
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
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

/// The store's time zone, when the hub says it: the clock follows it.
/// Tells the handles what the session is doing and whether it wants a card.
fn publish_state(
    state: &watch::Sender<&'static str>,
    card_wanted: &watch::Sender<Option<tallybox_core::money::Amount>>,
    session: &Session,
) {
    let _ = state.send(session.state_name());
    card_wanted.send_if_modified(|w| {
        let now = session.card_wanted();
        let changed = *w != now;
        *w = now;
        changed
    });
}

fn follow_time_zone(tid: &TerminalId, response: &tallybox_core::protocol::Response) {
    use tallybox_core::protocol::Response;
    let zone = match response {
        Response::SignedIn {
            time_zone: Some(zone),
            ..
        }
        | Response::TimeZone { time_zone: zone } => zone,
        _ => return,
    };
    if tallybox_platform::clock::zone_name() == *zone {
        return;
    }
    match tallybox_platform::clock::set_zone(zone) {
        Ok(()) => {
            tracing::info!(terminal = %tid, time_zone = %zone, "local time follows the store's time zone")
        }
        Err(e) => tracing::warn!(terminal = %tid, error = %e, "the store's time zone cannot be used here"),
    }
}

/// Local `(year, month)` for the card expiry check.
fn today() -> (u16, u8) {
    let now = tallybox_platform::clock::now();
    (now.year() as u16, now.month() as u8)
}

struct Running {
    client: AsyncClient,
    spooler: Spooler,
    topics: Topics,
    tid: TerminalId,
    session: Session,
    journal: Journal,
    journaled: Option<InFlight>,
    /// Sealing, pairing and the link's clocks (sans-IO).
    link: HubLink,
    key_path: PathBuf,
    /// The checkout's own broker login, for the next connection (`None` when
    /// the broker's URL gives one).
    login: Option<watch::Sender<(String, String)>>,
    counter: sealed_files::Counter,
    /// The device counts, for the menu's self-test.
    health: SharedHealth,
}

/// Where a terminal keeps the key it shares with the hub.
pub const KEY_FILE: &str = "hub.key";
/// Where a terminal keeps the floor of its message counter (see [`sealed_files::Counter`]).
pub const COUNTER_FILE: &str = "seal-counter";

impl Running {
    /// The slip that shows the printer works (the owner's or the menu's test).
    fn test_slip(&self) -> tallybox_core::slip::Slip {
        let time = tallybox_platform::clock::now()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let columns = self.session.slip_columns();
        tallybox_core::slip::test_slip(
            self.session.store_name(),
            self.tid.as_str(),
            &time,
            VERSION,
            columns,
        )
    }

    fn on_connect(&mut self) {
        let resp = self.topics.resp(&self.tid);
        if let Err(e) = self.client.try_subscribe(resp, QoS::AtMostOnce) {
            tracing::error!(terminal = %self.tid, error = %e, "cannot subscribe to answers");
        }
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
        self.resend();
    }

    fn resend(&mut self) {
        let outstanding: Vec<Request> = self.session.outstanding().into_iter().cloned().collect();
        for request in &outstanding {
            self.publish_request(request);
        }
    }

    fn publish_request(&mut self, request: &Request) {
        let topic = self.topics.req(&self.tid);
        let counter = &self.counter;
        let payload = match self.link.outgoing(request, Instant::now(), || counter.next()) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(terminal = %self.tid, error = %e, "request not sent: it cannot be encoded");
                return;
            }
        };
        if let Err(e) = self.client.try_publish(topic, QoS::AtMostOnce, false, payload) {
            tracing::warn!(terminal = %self.tid, error = %e, "request not queued; will re-send");
        }
    }

    /// Sends the first half of a pairing; the hub's answer finishes it.
    fn start_pairing(&mut self, code: &str) {
        match self.link.start_pairing(code, Instant::now()) {
            Ok(request) => {
                tracing::info!(terminal = %self.tid, "pairing with the hub");
                self.publish_request(&request);
            }
            // Reported as failed at the next tick.
            Err(e) => tracing::warn!(terminal = %self.tid, error = %e, "pairing not started"),
        }
    }

    /// The hub's answer to a pairing, if `response` is one: the outcome,
    /// once the key is kept on disk.
    fn finish_pairing(&mut self, response: &Response) -> Option<Result<(), String>> {
        let outcome = self.link.finish_pairing(response)?.and_then(|key| {
            sealed_files::write_key(&self.key_path, &key).map_err(|e| format!("key not saved: {e}"))?;
            if let Some(login) = &self.login {
                login.send_replace(broker_login(&self.tid, Some(&key)));
            }
            self.link.paired(key);
            tracing::info!(terminal = %self.tid, "paired with the hub: messages are sealed from now on");
            Ok(())
        });
        if let Err(e) = &outcome {
            tracing::warn!(terminal = %self.tid, error = %e, "pairing failed");
        }
        Some(outcome)
    }

    /// Opens an answer from the hub; what is refused is logged and dropped.
    fn open_answer(&mut self, payload: &[u8]) -> Option<Response> {
        self.link
            .incoming(payload)
            .inspect_err(
                |e| tracing::warn!(terminal = %self.tid, error = %e, "answer from the hub not taken"),
            )
            .ok()
    }

    /// Journals the sale in flight first, then shows, prints and sends. When a
    /// sale ends, its slips are in the print queue on disk before the journal
    /// forgets it: a crash in between recalls the sale at restart, and the
    /// queue knows its slips (they print once, never zero times). Both
    /// fsyncs run with `block_in_place`, so the runtime's other tasks (the
    /// broker link, the control API) move to another thread meanwhile; the
    /// checkout's runtime is multi-threaded for this.
    fn apply<D: Display>(&mut self, mut actions: Vec<Action>, devices: &mut D) {
        let in_flight = self.session.in_flight();
        let ended = match (&self.journaled, &in_flight) {
            (Some(was), now) if now.as_ref() != Some(was) => Some(was.request_id.clone()),
            _ => None,
        };
        if let Some(request_id) = ended {
            let (slips, rest): (Vec<Action>, Vec<Action>) =
                actions.into_iter().partition(|a| matches!(a, Action::Print(_)));
            let slips: Vec<Slip> = slips
                .into_iter()
                .filter_map(|a| match a {
                    Action::Print(slip) => Some(slip),
                    _ => None,
                })
                .collect();
            // fsync: off the async worker (the runtime is multi-threaded).
            let queued =
                tokio::task::block_in_place(|| self.spooler.queue_sale(request_id.as_str(), slips.clone()));
            if let Err(e) = queued {
                tracing::error!(terminal = %self.tid, error = %e, "cannot queue the sale's slips; printing them anyway");
                slips.into_iter().for_each(|slip| self.spooler.submit(slip));
            }
            actions = rest;
        }
        if in_flight != self.journaled {
            let written = tokio::task::block_in_place(|| match &in_flight {
                Some(entry) => self.journal.record(entry),
                None => self.journal.clear(),
            });
            match written {
                Ok(()) => self.journaled = in_flight,
                Err(e) => {
                    tracing::error!(terminal = %self.tid, error = %e, "cannot write the in-flight journal")
                }
            }
        }
        for action in actions {
            match action {
                Action::Show(screen) => devices.show(&screen),
                Action::Print(slip) => self.spooler.submit(slip),
                Action::Send(request) => self.publish_request(&request),
                Action::Pair(code) => self.start_pairing(&code),
                Action::SelfTest => {
                    let (online, printer, paper_low) = self.session.link_and_printer();
                    let report = crate::session::SelfTest {
                        online,
                        paired: self.link.is_paired(),
                        printer,
                        paper_low,
                        devices: self.health.snapshot(),
                    };
                    tracing::info!(terminal = %self.tid, online, paired = report.paired, ?printer, "self-test from the menu");
                    devices.show(&self.session.screens().self_test(&report));
                    self.spooler.submit(self.test_slip());
                }
            }
        }
    }
}
