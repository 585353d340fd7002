//! The hub's link to head office: its own MQTT client to the chain's
//! broker, with a persistent session and QoS 1. It sends the outbox in
//! order, [`wire::BATCH_MAX`] entries a message and at most [`WINDOW`]
//! entries beyond what head office acknowledged; on every (re)connection,
//! and whenever head office has said nothing for [`SILENT`] while entries
//! wait, it starts again after the last acknowledged entry (head office
//! keeps each entry once, so a repeat costs bandwidth only). An ack is taken
//! only when head office's key signed it. Sales never wait for any of this.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use super::wire::{self, Ack, Batch, ChainTopics, Enrol};
use super::ChainConfig;
use crate::store::{Store, StoreHandle};

/// Entries sent beyond the last acknowledged one before waiting.
pub const WINDOW: u64 = 4_000;

/// Head office silent this long while entries wait: send again.
pub const SILENT: Duration = Duration::from_secs(10);

fn client(chain: &ChainConfig) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(
        format!("tallybox-store-{}", chain.store),
        chain.broker.host.clone(),
        chain.broker.port,
    );
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &chain.broker.credentials {
        options.set_credentials(user, password);
    }
    let (client, eventloop) = AsyncClient::new(options, 64);
    (client, eventloop)
}

/// Where the uplink stands.
struct State {
    /// Head office holds every entry up to this one.
    acked: u64,
    /// The next entry to send.
    next: u64,
    connected: bool,
    /// When head office last answered (or the uplink last started over).
    heard: Instant,
}

/// Runs until `stop`: reads the outbox on `reader`, records acks through `store`.
pub async fn run(chain: ChainConfig, store: StoreHandle, reader: Arc<Mutex<Store>>, stop: CancellationToken) {
    let topics = ChainTopics::new(&chain.store);
    let acked = match reader.lock().expect("store lock").chain_acked() {
        Ok(acked) => acked,
        Err(e) => {
            tracing::error!(error = %e, "cannot read what head office holds; the uplink stays off");
            return;
        }
    };
    let mut state = State {
        acked,
        next: acked + 1,
        connected: false,
        heard: Instant::now(),
    };
    let (client, mut events) = client(&chain);
    let mut commits = store.subscribe();
    let mut backoff = tallybox_platform::mqtt::Backoff::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tracing::info!(broker = %chain.broker, store = %chain.store, from = state.next, "uplink to head office starting");
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    state.connected = true;
                    state.next = state.acked + 1;
                    state.heard = Instant::now();
                    tracing::info!(broker = %chain.broker, "uplink to head office connected");
                    let _ = client.try_subscribe(&topics.ack, QoS::AtLeastOnce);
                    let key = chain.public_key();
                    let enrol = Enrol {
                        proof: wire::enrol_proof(&chain.secret, &chain.store, &key),
                        store: chain.store.clone(),
                        key,
                    };
                    let _ = client.try_publish(&topics.enrol, QoS::AtLeastOnce, false, wire::seal(&enrol, &chain.key));
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topics.ack => {
                    match wire::open::<Ack>(&p.payload, &chain.hq) {
                        Ok(ack) if ack.store == chain.store => heard(&mut state, &ack, &store).await,
                        Ok(ack) => tracing::warn!(store = %ack.store, "head office's ack names another store; ignored"),
                        Err(e) => tracing::warn!(error = %e, "an ack head office did not sign was ignored"),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if state.connected {
                        tracing::warn!(error = %e, "uplink to head office lost; the outbox keeps every change until it is back");
                    }
                    state.connected = false;
                    backoff.wait().await;
                }
            },
            _ = commits.recv() => {}
            _ = tick.tick() => {
                if state.next > state.acked + 1 && state.heard.elapsed() >= SILENT {
                    tracing::info!(from = state.acked + 1, "head office has not answered; sending again");
                    state.next = state.acked + 1;
                    state.heard = Instant::now();
                }
            }
        }
        if state.connected {
            send_due(&chain, &topics, &client, &reader, &mut state);
        }
    }
    let _ = client.try_disconnect();
}

/// Takes what head office says it holds.
async fn heard(state: &mut State, ack: &Ack, store: &StoreHandle) {
    let holds = ack.next.saturating_sub(1);
    state.heard = Instant::now();
    if holds > state.acked {
        state.acked = holds;
        if let Err(e) = store.call(move |s: &mut Store| s.set_chain_acked(holds)).await {
            tracing::warn!(error = %e, "cannot record head office's ack; entries are sent again later");
        }
    }
    if ack.resend {
        tracing::info!(from = ack.next, "head office asks for entries again");
        state.next = ack.next.max(state.acked + 1);
    } else {
        state.next = state.next.max(state.acked + 1);
    }
}

/// Publishes the entries due, within the window.
fn send_due(
    chain: &ChainConfig,
    topics: &ChainTopics,
    client: &AsyncClient,
    reader: &Arc<Mutex<Store>>,
    state: &mut State,
) {
    while state.next <= state.acked + WINDOW {
        let entries = match reader
            .lock()
            .expect("store lock")
            .outbox_after(state.next - 1, wire::BATCH_MAX)
        {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                return;
            }
        };
        let Some(last) = entries.last().map(|e| e.seq) else {
            return;
        };
        let batch = Batch {
            store: chain.store.clone(),
            entries,
        };
        if client
            .try_publish(
                &topics.outbox,
                QoS::AtLeastOnce,
                false,
                wire::seal(&batch, &chain.key),
            )
            .is_err()
        {
            // The client's queue is full: the next wake sends it.
            return;
        }
        state.next = last + 1;
    }
}
