//! The hub's link to head office: its own MQTT client to the chain's
//! broker, with a persistent session and QoS 1. It sends the outbox in
//! order, up to [`wire::BATCH_MAX`] entries a message and at most
//! [`IN_FLIGHT`] messages head office has not answered yet (while they are
//! out, new entries gather into the next, larger message: a busy shop sends
//! few big messages, not one per commit); on every (re)connection,
//! and whenever head office has said nothing for [`SILENT`] while entries
//! wait, it starts again after the last acknowledged entry (head office
//! keeps each entry once, so a repeat costs bandwidth only). An ack is taken
//! only when head office's key signed it. Sales never wait for any of this.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use super::wire::{self, Ack, Batch, ChainTopics, Document, Enrol};
use super::ChainConfig;
use crate::coordinator::fraud::{FraudRules, SharedRules};
use crate::shop::{SharedShop, Shop};
use crate::store::{Store, StoreHandle};
use crate::web::WebState;

/// Messages sent and not yet answered before the uplink waits.
pub const IN_FLIGHT: usize = 4;

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
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    // Nagle would hold each small batch ~40 ms for the broker's ACK.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(5);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// Where the uplink stands.
struct State {
    /// Head office holds every entry up to this one.
    acked: u64,
    /// The next entry to send.
    next: u64,
    /// The last entry of each message sent and not yet answered.
    sent: std::collections::VecDeque<u64>,
    connected: bool,
    /// When head office last answered (or the uplink last started over).
    heard: Instant,
}

/// The fraud rules head office's documents change.
pub struct Rules {
    pub in_force: SharedRules,
    /// The settings file's rules, and which of them the owner wrote.
    pub file: FraudRules,
    pub local: std::collections::BTreeSet<String>,
}

impl Rules {
    /// The settings file's rules, in force until head office's replace them.
    pub fn new(config: &crate::config::Config) -> Rules {
        Rules {
            in_force: SharedRules::new(config.fraud.clone()),
            file: config.fraud.clone(),
            local: config.fraud_local.clone(),
        }
    }

    /// The rules with head office's `body` on top, and which stayed local.
    fn with(&self, body: &serde_json::Value) -> Result<(FraudRules, Vec<String>), String> {
        let body = body
            .as_object()
            .ok_or("head office's fraud rules are not a table of settings")?;
        self.file.with_chain(&self.local, body)
    }

    /// At start: puts in force the rules of head office's last document
    /// this store took.
    pub fn take_kept(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let Some((version, body)) = store.chain_doc(wire::FRAUD_RULES)? else {
            return Ok(());
        };
        match self.with(&body) {
            Ok((merged, _)) => {
                tracing::info!(version, "head office's fraud rules are in force");
                self.in_force.set(merged);
            }
            Err(e) => {
                tracing::warn!(error = %e, version, "head office's fraud rules cannot be used; the settings file's are in force")
            }
        }
        Ok(())
    }
}

/// The shop settings head office's documents change.
pub struct ShopSettings {
    /// The shop in force, shared with the coordinator and the page.
    pub shared: SharedShop,
    /// The settings file's shop.
    pub file: Shop,
}

impl ShopSettings {
    /// At start: puts in force head office's last shop settings this store took.
    pub fn take_kept(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let Some((version, body)) = store.chain_doc(wire::SHOP_SETTINGS)? else {
            return Ok(());
        };
        match shop_with_chain(store, &self.file, &body)? {
            Ok((merged, _)) => {
                tracing::info!(version, "head office's shop settings are in force");
                *self.shared.write().unwrap_or_else(|e| e.into_inner()) = merged;
            }
            Err(e) => {
                tracing::warn!(error = %e, version, "head office's shop settings cannot be used; the shop's own are in force")
            }
        }
        Ok(())
    }
}

/// The shop as its owner and settings file have it, with head office's
/// `body` on top (except what the owner set on the page), and which of
/// `body`'s settings stayed local; or why this shop cannot take it.
fn shop_with_chain(
    store: &Store,
    file: &Shop,
    body: &serde_json::Value,
) -> Result<Result<(Shop, Vec<String>), String>, crate::store::StoreError> {
    let Some(body) = body.as_object() else {
        return Ok(Err(
            "head office's shop settings are not a table of settings".into()
        ));
    };
    let base = match store.shop_edit()? {
        Some(edit) => file.with_edit(edit),
        None => file.clone(),
    };
    let merged = base.with_chain(&store.shop_local(file)?, body);
    if let Ok((shop, _)) = &merged {
        if shop.cashier_sign_on && !base.cashier_sign_on && store.cashiers()?.is_empty() {
            return Ok(Err(
                "cashier_sign_on: this shop has no cashier yet, so no checkout could sell; add one on the shop's page".into(),
            ));
        }
    }
    Ok(merged)
}

/// What a document changes once this store took it.
enum Taken {
    Fraud(FraudRules),
    Shop(Shop),
}

/// What the uplink applies head office's documents to.
pub struct Appliers {
    pub rules: Rules,
    pub shop: ShopSettings,
    /// The page's state: updates are taken as the page takes them.
    pub web: WebState,
    /// The update documents being fetched or taken now (by kind).
    busy: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Appliers {
    pub fn new(rules: Rules, shop: ShopSettings, web: WebState) -> Appliers {
        Appliers {
            rules,
            shop,
            web,
            busy: Default::default(),
        }
    }
}

/// Fetches and takes the bundle head office offers, off the uplink's loop
/// (a download may take minutes); one at a time for each kind.
fn offer_update(document: Document, to: &Appliers, store: &StoreHandle) {
    if !to.busy.lock().expect("busy lock").insert(document.kind.clone()) {
        return;
    }
    let (web, store, busy) = (to.web.clone(), store.clone(), Arc::clone(&to.busy));
    tokio::spawn(async move {
        take_update(&document, &web, &store).await;
        busy.lock().expect("busy lock").remove(&document.kind);
    });
}

async fn take_update(document: &Document, web: &WebState, store: &StoreHandle) {
    let (kind, version) = (document.kind.clone(), document.version);
    match store
        .call({
            let kind = kind.clone();
            move |s: &mut Store| s.chain_doc_seen(&kind)
        })
        .await
    {
        Ok(seen) if version <= seen => return,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot read which updates head office's documents offered");
            return;
        }
    }
    let record = |refused: Option<String>| {
        let (kind, body) = (kind.clone(), document.body.clone());
        async move {
            if let Some(why) = &refused {
                tracing::warn!(kind = %kind, version, error = %why, "head office's update was refused");
            }
            let recorded = store
                .call(move |s: &mut Store| s.apply_chain_doc(&kind, version, &body, Vec::new(), refused))
                .await;
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "cannot record head office's document; taken when it comes again");
            }
        }
    };
    let offer: super::bundle::Offer = match serde_json::from_value(document.body.clone()) {
        Ok(offer) => offer,
        Err(e) => return record(Some(format!("not an update offer: {e}"))).await,
    };
    let product = if kind == wire::HUB_UPDATE {
        "hub"
    } else {
        "terminal"
    };
    // Already taken (the hub restarted into it before it could say so).
    let have = match product {
        "hub" => web
            .install_root
            .as_deref()
            .and_then(tallybox_platform::update::installed),
        _ => web.terminal_update.lock().expect("update lock").clone(),
    };
    if have.as_deref() == Some(offer.version.as_str()) {
        return record(None).await;
    }
    let dir = web.store.lock().expect("store lock").data_dir().join("updates");
    let file = match super::bundle::fetch(&offer, &dir).await {
        Ok(file) => file,
        Err(super::bundle::Fetch::Again(e)) => {
            tracing::warn!(error = %e, version = %offer.version, "cannot fetch head office's update; tried again when the uplink connects again");
            return;
        }
        Err(super::bundle::Fetch::Never(e)) => return record(Some(e)).await,
    };
    use crate::web::update::{stop_soon, take_bundle, Refusal};
    match take_bundle(web, file, "head office", Some(product)).await {
        Ok(taken) => {
            record(None).await;
            if taken.restarting {
                stop_soon(web);
            }
        }
        Err(Refusal::Internal(e)) => {
            tracing::warn!(error = %e, "head office's update could not be taken; tried again when the uplink connects again")
        }
        Err(refusal) => record(Some(refusal.to_string())).await,
    }
}

/// Takes a document from head office: applied, recorded and told back
/// (through the outbox), or refused with the reason told back.
async fn take_document(document: Document, to: &Appliers, store: &StoreHandle) {
    if document.kind == wire::HUB_UPDATE || document.kind == wire::TERMINAL_UPDATE {
        return offer_update(document, to, store);
    }
    let (rules, shop) = (&to.rules, &to.shop);
    let Document { kind, version, body } = document;
    let file = shop.file.clone();
    let fraud = (kind == wire::FRAUD_RULES).then(|| rules.with(&body));
    if fraud.is_none() && kind != wire::SHOP_SETTINGS {
        tracing::info!(kind = %kind, "head office sent a document this version does not take");
        return;
    }
    let what = kind.clone();
    let recorded = store
        .call(move |s: &mut Store| {
            let outcome = match fraud {
                Some(fraud) => fraud.map(|(merged, kept)| (Taken::Fraud(merged), kept)),
                None => shop_with_chain(s, &file, &body)?.map(|(merged, kept)| (Taken::Shop(merged), kept)),
            };
            let (kept_local, refused) = match &outcome {
                Ok((_, kept)) => (kept.clone(), None),
                Err(e) => (Vec::new(), Some(e.clone())),
            };
            let taken = s.apply_chain_doc(&kind, version, &body, kept_local, refused)?;
            Ok::<_, crate::store::StoreError>((taken, outcome))
        })
        .await;
    match recorded {
        Ok((true, Ok((taken, kept)))) => {
            tracing::info!(kind = %what, version, kept_local = ?kept, "head office's document is in force");
            match taken {
                Taken::Fraud(merged) => rules.in_force.set(merged),
                Taken::Shop(merged) => *shop.shared.write().unwrap_or_else(|e| e.into_inner()) = merged,
            }
        }
        Ok((true, Err(e))) => {
            tracing::warn!(error = %e, kind = %what, version, "head office's document was refused")
        }
        Ok((false, _)) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot record head office's document; taken when it comes again")
        }
    }
}

impl State {
    /// Sends again after the last acknowledged entry.
    fn start_over(&mut self) {
        self.next = self.acked + 1;
        self.sent.clear();
        self.heard = Instant::now();
    }
}

/// Runs until `stop`: reads the outbox on `reader`, records acks through
/// `store`, applies head office's documents with `appliers`.
pub async fn run(
    chain: ChainConfig,
    store: StoreHandle,
    reader: Arc<Mutex<Store>>,
    appliers: Appliers,
    stop: CancellationToken,
) {
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
        sent: Default::default(),
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
                    state.start_over();
                    tracing::info!(broker = %chain.broker, "uplink to head office connected");
                    let _ = client.try_subscribe(&topics.ack, QoS::AtLeastOnce);
                    let _ = client.try_subscribe(ChainTopics::DOCUMENTS, QoS::AtLeastOnce);
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
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.starts_with("tallybox-chain-docs/") => {
                    match wire::open::<Document>(&p.payload, &chain.hq) {
                        Ok(document) => take_document(document, &appliers, &store).await,
                        Err(e) => tracing::warn!(error = %e, topic = %p.topic, "a document head office did not sign was ignored"),
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
                    state.start_over();
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
    while state.sent.front().is_some_and(|last| *last < ack.next) {
        state.sent.pop_front();
    }
    if ack.resend {
        tracing::info!(from = ack.next, "head office asks for entries again");
        state.start_over();
        state.next = ack.next.max(state.acked + 1);
    } else {
        state.next = state.next.max(state.acked + 1);
    }
}

/// Publishes the entries due, while fewer than [`IN_FLIGHT`] messages are unanswered.
fn send_due(
    chain: &ChainConfig,
    topics: &ChainTopics,
    client: &AsyncClient,
    reader: &Arc<Mutex<Store>>,
    state: &mut State,
) {
    while state.sent.len() < IN_FLIGHT {
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
        state.sent.push_back(last);
    }
}
