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
use crate::keys::{Keys, Refusal};
use crate::store::Change;

async fn answer(
    client: &AsyncClient,
    topics: &Topics,
    keys: &Keys,
    terminal: &TerminalId,
    response: &Response,
) {
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
                let notice = Response::Frozen {
                    request_id: None,
                    reason,
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

/// One request from `terminal`, opened (or admitted in the clear), handled,
/// answered; refused as `keys` says.
async fn serve_request<A: Acquirer>(
    client: &AsyncClient,
    topics: &Topics,
    keys: &Keys,
    coordinator: &Coordinator<A>,
    terminal: &TerminalId,
    opened: Opened,
) {
    let bytes = opened.bytes;
    let refused = |why: Refusal| async move {
        match why {
            Refusal::NotPaired(reason) => {
                tracing::debug!(terminal = %terminal, reason, "request refused: not paired");
                let response = Response::Error {
                    request_id: None,
                    code: ErrorCode::NotPaired,
                    message: format!(
                        "this terminal is not paired ({reason}): pair it with a code from the owner's page"
                    ),
                };
                answer(client, topics, keys, terminal, &response).await;
            }
            Refusal::Drop(reason) => {
                tracing::warn!(terminal = %terminal, bytes, %reason, "message dropped");
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
            tracing::warn!(terminal = %terminal, code = ?e.code, bytes, error = %e, "bad request refused");
            answer(client, topics, keys, terminal, &e.into_response()).await;
            return;
        }
    };
    if !sealed {
        if let Err(why) = keys.admit_plain(terminal, &request) {
            return refused(why).await;
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

/// Serves terminals until `shutdown`; `connected` turns true at each connection.
pub async fn run<A: Acquirer>(
    coordinator: Arc<Coordinator<A>>,
    keys: Arc<Keys>,
    broker: BrokerAddr,
    topics: Topics,
    pushes: Pushes,
    connected: watch::Sender<bool>,
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
    let online = |up: bool| Status {
        online: up,
        version: env!("CARGO_PKG_VERSION").into(),
        detail: None,
    };
    let mut backoff = mqtt::Backoff::default();
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    tracing::info!(broker = %broker, "hub connected to broker");
                    let _ = client.try_subscribe(topics.all_requests(), QoS::AtMostOnce);
                    let _ = client.try_subscribe(topics.all_statuses(), QoS::AtLeastOnce);
                    let _ = client.try_publish(topics.hub_status(), QoS::AtLeastOnce, true, online(true).payload());
                    let _ = connected.send(true);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some((terminal, leaf)) = topics.parse_term_topic(&p.topic) else {
                        tracing::warn!(topic = %p.topic, "message on a topic with no valid terminal id ignored");
                        continue;
                    };
                    match leaf {
                        "req" => {
                            // A permit before the task: a flood from the LAN cannot
                            // pile up tasks. A request dropped here is re-sent by its
                            // terminal with the same id, so nothing is lost.
                            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                                tracing::warn!(terminal = %terminal, "{MAX_REQUESTS_IN_FLIGHT} requests in flight: this one dropped, its terminal sends it again");
                                continue;
                            };
                            let opened = open_request(&keys, &terminal, &p.payload);
                            let (client, topics, coordinator, keys) =
                                (client.clone(), topics.clone(), Arc::clone(&coordinator), Arc::clone(&keys));
                            tokio::spawn(async move {
                                serve_request(&client, &topics, &keys, &coordinator, &terminal, opened).await;
                                drop(permit);
                            });
                        }
                        "status" => match decode_status(&p.payload) {
                            Ok(status) => {
                                tracing::info!(terminal = %terminal, online = status.online, version = %status.version, "terminal status");
                                // Awaited here, not spawned: an offline and the next online
                                // of one terminal must be recorded in the order they came.
                                let online = status.online;
                                coordinator.terminal_status(&terminal, status).await;
                                // Back online (a restart, or the network came back): tell it
                                // whether it is frozen, in case it missed a change meanwhile.
                                if online {
                                    match coordinator.frozen(&terminal).await {
                                        Ok(reason) => {
                                            let notice = Response::Frozen { request_id: None, reason };
                                            answer(&client, &topics, &keys, &terminal, &notice).await;
                                        }
                                        Err(e) => tracing::warn!(terminal = %terminal, error = %e, "cannot read the terminal's freeze"),
                                    }
                                }
                            }
                            Err(e) => tracing::warn!(terminal = %terminal, error = %e, "bad status message ignored"),
                        },
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if *connected.borrow() {
                        tracing::warn!(broker = %broker, error = %e, "hub lost the broker; reconnecting");
                    }
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
