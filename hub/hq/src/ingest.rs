//! Every store's outbox from the chain's broker into PostgreSQL.
//!
//! One MQTT client (persistent session, QoS 1) hears every store's outbox
//! and enrolment topics; a few workers, each with its own database
//! connection, take them (a store's messages always by the same worker, in
//! order). Under the store row's lock, a batch is opened with the key its
//! store enrolled with (a message in a store's name that the store did not
//! sign is refused and alerted); entries below the store's next number must
//! be the ones held (else the store's history forked: an alert, and its
//! intake stops) and are skipped (a repeat, or another instance was first); the next ones must
//! follow the chain (a break is an alert and stops that store's intake),
//! and a number beyond the next is a gap: head office asks the store to
//! send again from where it stands. Each answer is an [`Ack`] signed with
//! head office's key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tallybox::chain::wire::{self, Ack, Batch, ChainTopics, Document, Enrol};
use tallybox_platform::mqtt::BrokerAddr;
use tokio::sync::mpsc;
use tokio_postgres::{Client, Transaction};
use tokio_util::sync::CancellationToken;

use crate::db;

/// A gap asked about once within this time.
const RESEND_AGAIN: Duration = Duration::from_secs(5);

/// What the poller hands the worker.
enum Incoming {
    Connected,
    Message(rumqttc::Publish),
}

/// Head office's document, sealed, as the stores' broker retains it.
pub fn sealed_document(
    kind: &str,
    version: u64,
    body: serde_json::Value,
    key: &SigningKey,
) -> (String, Vec<u8>) {
    let document = Document {
        kind: kind.to_string(),
        version,
        body,
    };
    (ChainTopics::document(kind), wire::seal(&document, key))
}

/// What the worker answers a store.
enum Outcome {
    /// An answer, and how many entries this message added.
    Ack(Ack, u64),
    Nothing,
}

pub struct Ingest {
    pub db: Client,
    pub key: SigningKey,
    client: AsyncClient,
    /// When each store was last asked to send again from a number.
    asked: HashMap<String, (u64, Instant)>,
    /// Since the last report in the log: messages, entries kept, time in the database.
    tally: Tally,
}

/// What the log says every [`REPORT_EVERY`] while entries come in.
struct Tally {
    since: Instant,
    messages: u64,
    kept: u64,
    busy: Duration,
}

const REPORT_EVERY: Duration = Duration::from_secs(10);

impl Tally {
    fn new() -> Tally {
        Tally {
            since: Instant::now(),
            messages: 0,
            kept: 0,
            busy: Duration::ZERO,
        }
    }

    fn note(&mut self, kept: u64, busy: Duration) {
        self.messages += 1;
        self.kept += kept;
        self.busy += busy;
        if self.since.elapsed() >= REPORT_EVERY {
            if self.kept > 0 {
                tracing::info!(
                    messages = self.messages,
                    entries = self.kept,
                    seconds = self.since.elapsed().as_secs_f64(),
                    database_ms = self.busy.as_millis() as u64,
                    "entries kept"
                );
            }
            *self = Tally::new();
        }
    }
}

/// Runs the consumer until `stop`.
pub async fn run(
    dbs: Vec<Client>,
    key: SigningKey,
    broker: BrokerAddr,
    client_id: &str,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &broker.credentials {
        options.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(options, 256);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    // One worker per database connection; a store's messages always go to
    // the same worker, so they are taken in the order they came.
    let mut lanes = Vec::new();
    let mut workers = tokio::task::JoinSet::new();
    for db in dbs {
        let (tx, mut rx) = mpsc::channel::<Incoming>(256);
        lanes.push(tx);
        let mut ingest = Ingest {
            db,
            key: key.clone(),
            client: client.clone(),
            asked: HashMap::new(),
            tally: Tally::new(),
        };
        let stop = stop.clone();
        workers.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    incoming = rx.recv() => match incoming {
                        None => break,
                        Some(Incoming::Message(message)) => ingest.take(&message).await,
                        // A broker that restarted may have lost what it retained.
                        Some(Incoming::Connected) => {
                            if let Err(e) = ingest.republish().await {
                                tracing::warn!(error = %e, "cannot publish head office's documents again");
                            }
                        }
                    },
                }
            }
        });
    }
    anyhow::ensure!(
        !lanes.is_empty(),
        "head office needs at least one database connection"
    );
    let subscriber = client.clone();
    let mut backoff = tallybox_platform::mqtt::Backoff::default();
    let mut up = false;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            event = events.poll() => event,
        };
        let (lane, incoming) = match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                up = true;
                tracing::info!(broker = %broker, "head office connected to the chain's broker");
                for topic in [ChainTopics::ALL_OUTBOXES, ChainTopics::ALL_ENROLMENTS] {
                    let _ = subscriber.subscribe(topic, QoS::AtLeastOnce).await;
                }
                (0, Incoming::Connected)
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let store = ChainTopics::store_of(&p.topic).unwrap_or_default();
                let lane = store
                    .bytes()
                    .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
                (lane % lanes.len(), Incoming::Message(p))
            }
            Ok(_) => continue,
            Err(e) => {
                if up {
                    tracing::warn!(error = %e, "the chain's broker is gone; stores keep their outboxes until it is back");
                }
                up = false;
                backoff.wait().await;
                continue;
            }
        };
        if lanes[lane].send(incoming).await.is_err() {
            break;
        }
    }
    workers.shutdown().await;
    Ok(())
}

impl Ingest {
    async fn take(&mut self, message: &rumqttc::Publish) {
        let Some(store) = ChainTopics::store_of(&message.topic).map(str::to_string) else {
            return;
        };
        let started = Instant::now();
        let outcome = if message.topic.ends_with("/enrol") {
            self.enrol(&store, &message.payload).await
        } else {
            self.batch(&store, &message.payload).await
        };
        let kept = match &outcome {
            Ok(Outcome::Ack(_, kept)) => *kept,
            _ => 0,
        };
        self.tally.note(kept, started.elapsed());
        match outcome {
            Ok(Outcome::Ack(ack, _)) => {
                let topic = ChainTopics::new(&store).ack;
                let sealed = wire::seal(&ack, &self.key);
                if let Err(e) = self.client.publish(topic, QoS::AtLeastOnce, true, sealed).await {
                    tracing::warn!(error = %e, "cannot answer store {store}");
                }
            }
            Ok(Outcome::Nothing) => {}
            Err(e) => {
                tracing::error!(error = %e, store = %store, "a message was not taken; the store sends it again")
            }
        }
    }

    /// Publishes the newest version of every document again (retained).
    async fn republish(&mut self) -> anyhow::Result<()> {
        for (kind, version, body) in db::newest_documents(&self.db).await? {
            let (topic, sealed) = sealed_document(&kind, version, body, &self.key);
            self.client.publish(topic, QoS::AtLeastOnce, true, sealed).await?;
        }
        Ok(())
    }

    async fn batch(&mut self, store: &str, payload: &[u8]) -> anyhow::Result<Outcome> {
        let tx = self.db.transaction().await?;
        let row = db::lock_store(&tx, store).await?;
        let Some(key) = row.as_ref().and_then(|r| r.public_key.clone()) else {
            let why = format!(
                "a message in the name of store {store}, which is not enrolled (or was revoked), was refused"
            );
            return refuse(tx, store, &why, false).await;
        };
        let row = row.expect("a store with a key");
        let batch = match wire::verifying_key(&key).and_then(|k| wire::open::<Batch>(payload, &k)) {
            Ok(batch) if batch.store == store => batch,
            Ok(batch) => {
                let why = format!("store {store} sent entries of store {}; refused", batch.store);
                return refuse(tx, store, &why, false).await;
            }
            Err(e) => {
                let why = format!("a message in the name of store {store} was refused: {e}");
                return refuse(tx, store, &why, false).await;
            }
        };
        if row.broken.is_some() {
            return Ok(Outcome::Nothing);
        }
        // Entries head office holds already must be the same entries: a hub
        // put back from an old backup, or a new hub under the store's name,
        // writes other entries under the same numbers.
        let repeats: Vec<&wire::Entry> = batch.entries.iter().filter(|e| e.seq < row.next_seq).collect();
        if let Some(seq) = db::first_differing(&tx, store, &repeats).await? {
            let why = format!(
                "store {store} sent an entry {seq} other than the one head office holds: its history forked (a hub restored from an old backup, or another hub under its name); intake from this store stopped until its hub and head office's copy are compared"
            );
            return refuse(tx, store, &why, true).await;
        }
        let (mut next, mut prev) = (row.next_seq, row.last_hash);
        let mut take = Vec::new();
        let mut gap = false;
        for entry in batch.entries {
            if entry.seq < next {
                continue;
            }
            if entry.seq > next {
                gap = true;
                break;
            }
            if !entry.follows(&prev) {
                let why = format!(
                    "entry {} of store {store} does not follow the one before (hash chain broken): intake from this store stopped; its hub's outbox and head office's copy must be compared",
                    entry.seq
                );
                db::keep(&tx, store, &take).await?;
                return refuse(tx, store, &why, true).await;
            }
            prev = entry.hash_bytes().unwrap_or_default();
            next += 1;
            take.push(entry);
        }
        let take_count = take.len() as u64;
        if take.is_empty() {
            tx.execute(
                "UPDATE stores SET last_heard = now() WHERE store_id = $1",
                &[&store],
            )
            .await?;
        } else {
            db::keep(&tx, store, &take).await?;
        }
        tx.commit().await?;
        let resend = gap && self.ask_again(store, next);
        let ack = Ack {
            store: store.to_string(),
            next,
            resend,
        };
        Ok(Outcome::Ack(ack, take_count))
    }

    /// Whether to ask `store` for entries from `next` again (not if just asked).
    fn ask_again(&mut self, store: &str, next: u64) -> bool {
        let now = Instant::now();
        match self.asked.get(store) {
            Some((asked, at)) if *asked == next && now.duration_since(*at) < RESEND_AGAIN => false,
            _ => {
                self.asked.insert(store.to_string(), (next, now));
                true
            }
        }
    }

    async fn enrol(&mut self, store: &str, payload: &[u8]) -> anyhow::Result<Outcome> {
        let tx = self.db.transaction().await?;
        let enrol: Enrol = match wire::peek(payload) {
            Ok(enrol) => enrol,
            Err(e) => {
                let why = format!("an enrolment for store {store} was refused: {e}");
                return refuse(tx, store, &why, false).await;
            }
        };
        let opened = wire::verifying_key(&enrol.key).and_then(|k| wire::open::<Enrol>(payload, &k));
        if enrol.store != store || opened.is_err() {
            let why = format!("an enrolment for store {store} was refused: not signed by the key it names");
            return refuse(tx, store, &why, false).await;
        }
        let Some(row) = db::lock_store(&tx, store).await? else {
            let why = format!("store {store} asked to join, but head office made no code for it");
            return refuse(tx, store, &why, false).await;
        };
        match row.public_key {
            Some(key) if key == enrol.key => {}
            Some(_) => {
                let why = format!(
                    "a hub asked to join as store {store}, which is enrolled with another key; refused"
                );
                return refuse(tx, store, &why, false).await;
            }
            None => {
                let holds = db::enrolment_secret(&tx, store)
                    .await?
                    .is_some_and(|secret| wire::enrol_proof_holds(&secret, store, &enrol.key, &enrol.proof));
                if !holds {
                    let why = format!(
                        "a hub asked to join as store {store} with a wrong, used or expired code; refused"
                    );
                    return refuse(tx, store, &why, false).await;
                }
                db::bind_key(&tx, store, &enrol.key).await?;
                tracing::info!(store = %store, "store joined the chain");
            }
        }
        tx.commit().await?;
        let ack = Ack {
            store: store.to_string(),
            next: row.next_seq,
            resend: true,
        };
        Ok(Outcome::Ack(ack, 0))
    }
}

/// Refuses a message in `store`'s name: raises the alert and, when `stop`,
/// stops the store's intake, both in `tx`; nothing is answered.
async fn refuse(tx: Transaction<'_>, store: &str, why: &str, stop: bool) -> anyhow::Result<Outcome> {
    if stop {
        db::break_chain(&tx, store, why).await?;
    }
    db::alert(&tx, Some(store), why).await?;
    tx.commit().await?;
    Ok(Outcome::Nothing)
}
