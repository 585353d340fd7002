//! The hub's side of MQTT: subscribes to every terminal's requests and status,
//! hands each request to the [`Coordinator`] on its own task (a slow acquirer
//! answer for one terminal never holds up another), and publishes the answer
//! on that terminal's `resp` topic. Undecodable payloads get a typed error
//! answer and one log line; nothing a terminal sends can stop the hub.

use std::sync::Arc;
use std::time::Duration;
use tallybox_core::protocol::requests;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use tallybox_core::protocol::{
    decode_request, decode_status, ErrorCode, Request, Response, Status, TerminalId, Topics,
};
use tallybox_core::seal;
use tallybox_platform::mqtt::{self, BrokerAddr};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::acquirer::Acquirer;
use crate::coordinator::Coordinator;
use crate::guard::{Counted, Rate};
use crate::keys::{Keys, Refusal};
use crate::store::fraud::FrozenWords;
use crate::store::Change;

async fn answer(
    client: &AsyncClient,
    topics: &Topics,
    keys: &Keys,
    terminal: &TerminalId,
    response: &Response,
) {
    let _in_order = keys.in_order().await;
    let payload = match keys.outgoing(terminal, response) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::error!(terminal = %terminal, error = %e, "answer not sent: it cannot be encoded");
            return;
        }
    };
    if let Err(e) = client
        .publish(topics.resp(terminal), QoS::AtMostOnce, false, payload)
        .await
    {
        tracing::warn!(terminal = %terminal, error = %e, "answer not sent; the terminal will ask again");
    }
}

/// Tells the terminals when a freeze changed, whoever made it (a rule, the
/// supervisor, the owner's `tallybox freeze` in another process): at each
/// freeze the store writer commits, and every two seconds for the others,
/// the freeze generation is read, and when it moved, each terminal
/// hears its state again (a freeze and unfreeze between two readings still
/// reaches a terminal that had heard only the first).
async fn announce_freezes<A: Acquirer>(
    client: AsyncClient,
    topics: Topics,
    keys: Arc<Keys>,
    mut changes: broadcast::Receiver<Change>,
    coordinator: Arc<Coordinator<A>>,
    shutdown: CancellationToken,
) {
    let mut seen: Option<i64> = None;
    let mut every = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
            change = changes.recv() => match change {
                // A freeze the hub made itself: told at once.
                Ok(Change::Freeze { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        let (generation, terminals) = match coordinator.frozen_terminals().await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read freezes");
                continue;
            }
        };
        // The first reading is the baseline: terminals learn it when they sign in.
        if seen.is_some_and(|g| g != generation) {
            for (id, reason) in terminals {
                let Ok(terminal) = TerminalId::parse(&id) else {
                    continue;
                };
                let (reason, reason_zh) = FrozenWords::split(reason);
                let notice = Response::Frozen {
                    request_id: None,
                    reason,
                    reason_zh,
                };
                answer(&client, &topics, &keys, &terminal, &notice).await;
            }
        }
        seen = Some(generation);
    }
}

/// Messages the hub sends a terminal on its own initiative (a reprint the
/// owner asked for on the web page).
pub type Pushes = mpsc::Receiver<(TerminalId, Response)>;

async fn send_pushes(client: AsyncClient, topics: Topics, keys: Arc<Keys>, mut pushes: Pushes) {
    while let Some((terminal, message)) = pushes.recv().await {
        answer(&client, &topics, &keys, &terminal, &message).await;
    }
}

/// A request's payload opened with `terminal`'s key (`sealed`: it was
/// sealed), or why it is refused. Done in the order messages arrive, before
/// they are handled side by side: each sealed message must carry a higher
/// counter than the last one accepted, so opening two of one terminal's
/// messages in parallel tasks could take the earlier for a replay.
struct Opened {
    plain: Result<Vec<u8>, Refusal>,
    sealed: bool,
    bytes: usize,
}

fn open_request(keys: &Keys, terminal: &TerminalId, payload: &[u8]) -> Opened {
    let sealed = seal::is_sealed(payload);
    let plain = if sealed {
        keys.open(terminal, payload)
    } else {
        Ok(payload.to_vec())
    };
    Opened {
        plain,
        sealed,
        bytes: payload.len(),
    }
}

/// What the hub refuses, kept cheap for a flood: answers to refused
/// requests (a terminal that must pair, a request it cannot read) at most
/// [`REFUSALS_ANSWERED_PER_S`] a second, and each kind of refusal logged in
/// full once every ten seconds, with how many there were since; the others
/// at debug level. A real checkout asks again, so it still hears why.
struct Refusals {
    answers: std::sync::Mutex<Rate>,
    logged: std::sync::Mutex<Counted<String>>,
}

/// Refusals answered a second, on average; twice as many at once.
const REFUSALS_ANSWERED_PER_S: f64 = 20.0;
/// Kinds of refusal remembered for the log; more start the count afresh.
const REFUSAL_KINDS: usize = 64;

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals {
            answers: std::sync::Mutex::new(Rate::new(REFUSALS_ANSWERED_PER_S, REFUSALS_ANSWERED_PER_S * 2.0)),
            logged: std::sync::Mutex::new(Counted::new(REFUSAL_KINDS)),
        }
    }
}

impl Refusals {
    /// Notes one refusal of kind `what` (its words without the numbers in
    /// it, such as a replay's counters; `why` is its detail); whether to
    /// answer it.
    fn one(&self, terminal: &TerminalId, what: &str, why: &str) -> bool {
        let kind: String = what.chars().filter(|c| !c.is_ascii_digit()).collect();
        let logged = self.logged.lock().unwrap_or_else(|e| e.into_inner()).one(kind);
        match logged {
            Some(since_start) => {
                tracing::warn!(terminal = %terminal, why, since_start, "{what} (this kind at most once every 10 s)")
            }
            None => tracing::debug!(terminal = %terminal, why, "{what}"),
        }
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).allow()
    }
}

/// One request from `terminal`, opened (or admitted in the clear), handled,
/// answered; refused as `keys` says.
async fn serve_request<A: Acquirer>(
    client: &AsyncClient,
    topics: &Topics,
    keys: &Keys,
    coordinator: &Coordinator<A>,
    refusals: &Refusals,
    terminal: &TerminalId,
    opened: Opened,
) {
    let bytes = opened.bytes;
    let refused = |why: Refusal| async move {
        match why {
            Refusal::NotPaired(reason) => {
                if refusals.one(
                    terminal,
                    &format!("request refused: not paired: {reason}"),
                    reason,
                ) {
                    let response = Response::Error {
                        request_id: None,
                        code: ErrorCode::NotPaired,
                        message: format!(
                            "this terminal is not paired ({reason}): pair it with a code from the owner's page"
                        ),
                    };
                    answer(client, topics, keys, terminal, &response).await;
                }
            }
            Refusal::Drop(reason) => {
                refusals.one(
                    terminal,
                    &format!("message dropped: {reason}"),
                    &format!("{bytes} bytes"),
                );
            }
        }
    };
    let sealed = opened.sealed;
    let plain = match opened.plain {
        Ok(plain) => plain,
        Err(why) => return refused(why).await,
    };
    let request = match decode_request(&plain) {
        Ok(request) => request,
        Err(e) => {
            if refusals.one(terminal, "bad request refused", &format!("{e} ({bytes} bytes)")) {
                answer(client, topics, keys, terminal, &e.into_response()).await;
            }
            return;
        }
    };
    if !sealed {
        if let Err(why) = keys.admit_plain(terminal, &request) {
            return refused(why).await;
        }
        // A record of approvals brings rows into the books: only a paired
        // checkout's, which no stranger on the LAN can speak for.
        if matches!(request, Request::Printed(_)) {
            refusals.one(
                terminal,
                "a record of printed approvals in clear ignored: only a paired checkout's is taken",
                &format!("{bytes} bytes"),
            );
            return;
        }
    }
    let kind = request.kind().as_str();
    let started = std::time::Instant::now();
    let response = match request {
        Request::Pair(requests::Pair { request_id, message }) => {
            Some(keys.pair(terminal, request_id, &message))
        }
        request => coordinator.handle(terminal, request).await,
    };
    if let Some(response) = &response {
        answer(client, topics, keys, terminal, response).await;
    }
    tracing::debug!(terminal = %terminal, kind, us = started.elapsed().as_micros() as u64, answered = response.is_some(), "request handled");
}

/// Requests being worked on at once, at most; more wait in their terminals'
/// re-sends. A checkout has a request or two in flight at a time.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 512;

/// Statuses waiting to be recorded, at most. The receive loop only queues
/// them: recording one writes the store and may answer with a publish, and
/// the loop must never wait on either (the publish queue is drained by the
/// loop itself, so awaiting it there wedged the link for good). Beyond this
/// a status is dropped and counted; a checkout's real status comes again at
/// its next connection, and its sealed traffic shows it is there meanwhile.
const STATUSES_QUEUED: usize = 1024;

/// How often the hub sends itself a ping through the broker, and how long
/// without hearing one back it takes its link for dead and reconnects. A
/// broker can keep a TCP connection and its MQTT keep-alive answering while
/// delivering nothing; only traffic that went all the way round shows the
/// link works.
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_DEAD_AFTER: Duration = Duration::from_secs(7);

/// Whether the link's loop still turns: it beats at each ping tick, whatever
/// the broker does. The systemd watchdog is fed only while it does.
#[derive(Clone, Default)]
pub struct LinkBeat(Arc<std::sync::Mutex<Option<std::time::Instant>>>);

impl LinkBeat {
    fn beat(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// The loop turned within the last three ping periods.
    pub fn fresh(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < PING_EVERY * 3)
    }
}

/// How long a paired checkout has to answer [`Response::AreYouThere`]
/// (with a sealed heartbeat) before an offline status for it is believed.
pub const THERE_WITHIN: Duration = Duration::from_secs(3);

/// Records statuses in the order they came, and tells a checkout back online
/// whether it is frozen, in case it missed a change meanwhile.
///
/// Statuses are not sealed, so a paired checkout's are claims: it is online
/// by its sealed sign-in and heartbeats (the coordinator records those), and
/// an offline claim is checked with the checkout first ([`check_offline`]).
async fn record_statuses<A: Acquirer>(
    client: AsyncClient,
    topics: Topics,
    keys: Arc<Keys>,
    coordinator: Arc<Coordinator<A>>,
    mut statuses: mpsc::Receiver<(TerminalId, Status)>,
) {
    // Logged at info, at most a few a second (a hub that lets anyone sell
    // cannot tell a flood of made-up checkouts from real ones).
    let mut logged = Rate::new(5.0, 10.0);
    let checks = Arc::new(OfflineChecks::new());
    while let Some((terminal, status)) = statuses.recv().await {
        if logged.allow() {
            tracing::info!(terminal = %terminal, online = status.online, version = ?status.version, "terminal status");
        }
        let online = status.online;
        match (keys.is_paired(&terminal), online) {
            (true, false) => {
                if checks.claim(&terminal) {
                    tokio::spawn(check_offline(
                        client.clone(),
                        topics.clone(),
                        Arc::clone(&keys),
                        Arc::clone(&coordinator),
                        terminal,
                        status,
                        Arc::clone(&checks),
                    ));
                }
                continue;
            }
            (true, true) => {}
            (false, _) => coordinator.terminal_status(&terminal, status).await,
        }
        if !online {
            continue;
        }
        match coordinator.frozen(&terminal).await {
            Ok(reason) => {
                let (reason, reason_zh) = FrozenWords::split(reason);
                let notice = Response::Frozen {
                    request_id: None,
                    reason,
                    reason_zh,
                };
                answer(&client, &topics, &keys, &terminal, &notice).await;
            }
            Err(e) => tracing::warn!(terminal = %terminal, error = %e, "cannot read the terminal's freeze"),
        }
    }
}

/// The paired checkouts whose offline claims are being checked; `true`
/// when another claim came in meanwhile (checked again after: the
/// checkout may have gone in between).
struct OfflineChecks {
    running: std::sync::Mutex<std::collections::HashMap<String, bool>>,
    forged: std::sync::Mutex<Counted<()>>,
}

impl OfflineChecks {
    fn new() -> OfflineChecks {
        OfflineChecks {
            running: Default::default(),
            forged: std::sync::Mutex::new(Counted::new(1)),
        }
    }

    /// Notes an offline claim for `terminal`: true when a check is to start
    /// (none runs for it now).
    fn claim(&self, terminal: &TerminalId) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get_mut(terminal.as_str()) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                running.insert(terminal.to_string(), false);
                true
            }
        }
    }

    /// A check of `terminal` ended: true when a claim came in meanwhile and
    /// it is to be checked again.
    fn again(&self, terminal: &TerminalId) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get_mut(terminal.as_str()) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                running.remove(terminal.as_str());
                false
            }
        }
    }
}

/// Asks a paired checkout said to be offline whether it is there: it is
/// recorded offline only when no sealed message from it comes within
/// [`THERE_WITHIN`]. Anyone on a broker without per-client rules can publish
/// its status (or set it as a last will); nobody else can seal its answer.
async fn check_offline<A: Acquirer>(
    client: AsyncClient,
    topics: Topics,
    keys: Arc<Keys>,
    coordinator: Arc<Coordinator<A>>,
    terminal: TerminalId,
    status: Status,
    checks: Arc<OfflineChecks>,
) {
    loop {
        let asked = std::time::Instant::now();
        answer(&client, &topics, &keys, &terminal, &Response::AreYouThere).await;
        tokio::time::sleep(THERE_WITHIN).await;
        if keys.heard_since(&terminal, asked) {
            let counted = checks.forged.lock().unwrap_or_else(|e| e.into_inner()).one(());
            if let Some(since_start) = counted {
                tracing::warn!(terminal = %terminal, since_start, "an offline status for a paired checkout that answered sealed: forged, ignored (this line at most every 10 s)");
            }
        } else {
            coordinator.terminal_status(&terminal, status.clone()).await;
        }
        if !checks.again(&terminal) {
            return;
        }
    }
}

/// The hub's link: publishes, subscriptions and what it needs to judge them.
struct Link {
    client: AsyncClient,
    topics: Topics,
    /// The pings sent and not heard back yet, newest last.
    pings: std::collections::VecDeque<Vec<u8>>,
    /// When the link last proved itself (connected, or a ping heard back).
    proven: std::time::Instant,
    up: bool,
}

impl Link {
    fn connected(&mut self, status: Vec<u8>) {
        self.up = true;
        self.proven = std::time::Instant::now();
        self.pings.clear();
        // Queued, never awaited: the loop that drains the queue is the caller.
        let _ = self
            .client
            .try_subscribe(self.topics.all_requests(), QoS::AtMostOnce);
        let _ = self
            .client
            .try_subscribe(self.topics.all_statuses(), QoS::AtLeastOnce);
        let _ = self.client.try_subscribe(self.topics.hub_ping(), QoS::AtMostOnce);
        let _ = self
            .client
            .try_publish(self.topics.hub_status(), QoS::AtLeastOnce, true, status);
    }

    /// Sends the next ping; false when the last one was not heard back in time.
    fn ping(&mut self) -> bool {
        if self.proven.elapsed() > PING_DEAD_AFTER {
            return false;
        }
        let token = hex::encode(rand::random::<[u8; 16]>()).into_bytes();
        if self.pings.len() == 4 {
            self.pings.pop_front();
        }
        self.pings.push_back(token.clone());
        let _ = self
            .client
            .try_publish(self.topics.hub_ping(), QoS::AtMostOnce, false, token);
        true
    }

    /// A message on the ping topic: the hub's own (proof), or anyone's.
    fn heard(&mut self, payload: &[u8]) {
        if let Some(at) = self.pings.iter().position(|p| p == payload) {
            self.pings.drain(..=at);
            self.proven = std::time::Instant::now();
        }
    }
}

/// Serves terminals until `shutdown`; `connected` is true while the link
/// works (its own pings come back), `beat` shows the loop turns.
#[allow(clippy::too_many_arguments)]
pub async fn run<A: Acquirer>(
    coordinator: Arc<Coordinator<A>>,
    keys: Arc<Keys>,
    broker: BrokerAddr,
    topics: Topics,
    pushes: Pushes,
    connected: watch::Sender<bool>,
    beat: LinkBeat,
    shutdown: CancellationToken,
) {
    let (client, mut eventloop) = mqtt::connect("tallybox-hub", &broker, &topics.hub_status());
    tokio::spawn(send_pushes(
        client.clone(),
        topics.clone(),
        Arc::clone(&keys),
        pushes,
    ));
    tokio::spawn(announce_freezes(
        client.clone(),
        topics.clone(),
        Arc::clone(&keys),
        coordinator.changes(),
        Arc::clone(&coordinator),
        shutdown.clone(),
    ));
    let (statuses, queued) = mpsc::channel(STATUSES_QUEUED);
    tokio::spawn(record_statuses(
        client.clone(),
        topics.clone(),
        Arc::clone(&keys),
        Arc::clone(&coordinator),
        queued,
    ));
    let online = |up: bool| Status {
        online: up,
        version: env!("CARGO_PKG_VERSION").into(),
        detail: None,
    };
    let mut link = Link {
        client: client.clone(),
        topics: topics.clone(),
        pings: Default::default(),
        proven: std::time::Instant::now(),
        up: false,
    };
    let mut dropped = Counted::new(4);
    let mut drop_one = move |what: &'static str| {
        if let Some(since_start) = dropped.one(what) {
            tracing::warn!(
                what,
                since_start,
                "messages dropped or refused (this line at most every 10 s)"
            );
        }
    };
    let mut backoff = mqtt::Backoff::default();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
    // Compared with every message's topic: made once, not per message.
    let ping_topic = topics.hub_ping();
    let refusals = Arc::new(Refusals::default());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ping.tick() => {
                beat.beat();
                if link.up && !link.ping() {
                    tracing::warn!(broker = %broker, "the hub's own ping did not come back through the broker for {PING_DEAD_AFTER:?}; reconnecting");
                    link.up = false;
                    let _ = connected.send(false);
                    eventloop.clean();
                }
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    tracing::info!(broker = %broker, "hub connected to broker");
                    link.connected(online(true).payload());
                    let _ = connected.send(true);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic == ping_topic {
                        link.heard(&p.payload);
                        continue;
                    }
                    let Some((terminal, leaf)) = topics.parse_term_topic(&p.topic) else {
                        drop_one("messages on a topic with no valid terminal id");
                        continue;
                    };
                    match leaf {
                        "req" => {
                            // A permit before the task: a flood from the LAN cannot
                            // pile up tasks. A request dropped here is re-sent by its
                            // terminal with the same id, so nothing is lost.
                            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                                drop_one("requests: too many in flight");
                                continue;
                            };
                            let opened = open_request(&keys, &terminal, &p.payload);
                            let (client, topics, coordinator, keys, refusals) = (
                                client.clone(),
                                topics.clone(),
                                Arc::clone(&coordinator),
                                Arc::clone(&keys),
                                Arc::clone(&refusals),
                            );
                            tokio::spawn(async move {
                                serve_request(&client, &topics, &keys, &coordinator, &refusals, &terminal, opened).await;
                                drop(permit);
                            });
                        }
                        "status" if !keys.may_report(&terminal) => {}
                        "status" => match decode_status(&p.payload) {
                            Ok(status) => {
                                if statuses.try_send((terminal, status)).is_err() {
                                    drop_one("statuses: too many queued");
                                }
                            }
                            Err(e) => tracing::debug!(terminal = %terminal, error = %e, "bad status message ignored"),
                        },
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if link.up {
                        tracing::warn!(broker = %broker, error = %e, "hub lost the broker; reconnecting");
                    }
                    link.up = false;
                    let _ = connected.send(false);
                    backoff.wait().await;
                }
            }
        }
    }
    let _ = client
        .publish(
            topics.hub_status(),
            QoS::AtLeastOnce,
            true,
            online(false).payload(),
        )
        .await;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers to one checkout sealed on many tasks at once reach the
    /// broker's queue in the order of their counters, so the checkout takes
    /// every one (before, a lower counter queued after a higher one was
    /// dropped there as a replay).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn answers_sealed_at_once_leave_in_the_order_of_their_counters() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(crate::keys::tests::keys(dir.path()));
        let terminal = TerminalId::parse("T1").unwrap();
        let key = keys.own_key(&terminal, None).unwrap();
        let topics = Topics::new("shop");
        // The broker's queue, one place long, as a busy event loop's is.
        let (queue, queued) = flume::bounded(1);
        let client = AsyncClient::from_senders(queue);
        const ANSWERS: usize = 300;
        for _ in 0..ANSWERS {
            let (client, topics, keys, terminal) = (
                client.clone(),
                topics.clone(),
                Arc::clone(&keys),
                terminal.clone(),
            );
            tokio::spawn(async move {
                answer(&client, &topics, &keys, &terminal, &Response::AreYouThere).await;
            });
        }
        let mut checkout = seal::ReplayGuard::default();
        let mut dropped = 0;
        for _ in 0..ANSWERS {
            let rumqttc::Request::Publish(publish) = queued.recv_async().await.unwrap() else {
                panic!("only answers are published");
            };
            assert_eq!(publish.topic, topics.resp(&terminal));
            let (n, _) = seal::open(&key, seal::Direction::ToTerminal, "T1", &publish.payload).unwrap();
            if checkout.accept(n).is_err() {
                dropped += 1;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(dropped, 0, "answers the checkout would drop as replays");
    }
}
