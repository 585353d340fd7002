//! Load from MQTT clients that speak the real protocol: the bare echo
//! baseline, one terminal's sale latency, and many terminals at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tallybox_core::protocol::requests;

use bytes::Bytes;
use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS};
use tallybox_core::card::{test_cards, EntryMode};
use tallybox_core::money::Amount;
use tallybox_core::protocol::{
    decode_response, encode, Outcome, Request, RequestId, Response, TerminalId, Topics, TxnStatus,
};
use tallybox_core::seal::{self, Direction, Key, ReplayGuard};
use tallybox_platform::sealed_files::Counter;
use tokio::sync::mpsc;

use super::{histogram, record};

/// An MQTT client with Nagle off, its incoming publishes on a channel.
pub struct Client {
    client: AsyncClient,
    incoming: mpsc::Receiver<(String, Bytes)>,
}

impl Client {
    pub async fn connect(port: u16, id: &str, subscribe: &[String]) -> Client {
        // The hub's broker wants a user name from anyone (any will do for ids
        // that are neither the hub's nor a paired checkout's).
        Client::connect_as(port, id, (id, ""), subscribe).await
    }

    /// [`Client::connect`] with a login (user name, password).
    pub async fn connect_as(port: u16, id: &str, login: (&str, &str), subscribe: &[String]) -> Client {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_credentials(login.0, login.1);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (tx, incoming) = mpsc::channel(1024);
        let (ready_tx, mut ready) = mpsc::channel(1);
        let topics = subscribe.to_vec();
        let sub = client.clone();
        tokio::spawn(async move {
            let mut acks = 0;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for t in &topics {
                            let _ = sub.subscribe(t.clone(), QoS::AtMostOnce).await;
                        }
                        if topics.is_empty() {
                            let _ = ready_tx.send(()).await;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks += 1;
                        if acks == topics.len() {
                            let _ = ready_tx.send(()).await;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic, p.payload)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), ready.recv()).await;
        Client { client, incoming }
    }

    pub async fn publish(&self, topic: &str, payload: Vec<u8>) {
        let _ = self.client.publish(topic, QoS::AtMostOnce, false, payload).await;
    }

    pub async fn next(&mut self, wait: Duration) -> Option<(String, Bytes)> {
        tokio::time::timeout(wait, self.incoming.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Baseline: publish → an echo client republishes → back, through the broker.
pub async fn echo_rtt(port: u16, rounds: usize) -> Histogram<u64> {
    // On topics a checkout may use (the hub's broker drops others): two
    // made-up checkouts' status topics, which the hub reads and ignores.
    let topics = Topics::new(crate::procs::STORE);
    let status = |id: &str| topics.term_status(&TerminalId::parse(id).expect("terminal id"));
    let (ping, pong) = (status("BENCH-ping"), status("BENCH-pong"));
    let mut echo = Client::connect(port, "bench-echo", std::slice::from_ref(&ping)).await;
    let answer = pong.clone();
    tokio::spawn(async move {
        while let Some((_, payload)) = echo.next(Duration::from_secs(600)).await {
            echo.publish(&answer, payload.to_vec()).await;
        }
    });
    let mut me = Client::connect(port, "bench-pinger", &[pong]).await;
    // A payload the size of a sale request.
    let payload = sale_request(&RequestId::new());
    let mut h = histogram();
    for i in 0..rounds + 50 {
        let started = Instant::now();
        me.publish(&ping, payload.clone()).await;
        if me.next(Duration::from_secs(5)).await.is_some() && i >= 50 {
            record(&mut h, started.elapsed());
        }
    }
    h
}

fn sale_request(request_id: &RequestId) -> Vec<u8> {
    let card = test_cards::by_name("approved")
        .expect("test card")
        .read(EntryMode::Swipe);
    encode(&Request::Sale(requests::Sale {
        request_id: request_id.clone(),
        amount: Amount::from_minor(1250).expect("amount"),
        currency: "CNY".into(),
        card,
        pin_block: None,
        supervisor_pin: None,
        split: None,
    }))
    .expect("a sale encodes")
}

/// A paired checkout's side of its sealed link: the key its pairing gave,
/// the counter of what it sends, and its guard against replayed answers.
struct Link {
    key: Key,
    tid: String,
    /// The protocol's counter, as a checkout keeps it (no floor on file).
    counter: Counter,
    replay: ReplayGuard,
}

impl Link {
    fn new(key: Key, tid: &str) -> Link {
        Link {
            key,
            tid: tid.to_string(),
            counter: Counter::default(),
            replay: ReplayGuard::default(),
        }
    }

    fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        seal::seal(&self.key, Direction::ToHub, &self.tid, self.counter.next(), plain)
    }

    /// The message inside a sealed answer; `None` for anything forged,
    /// replayed or unsealed (a paired checkout reads nothing else).
    fn open(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let (n, plain) = seal::open(&self.key, Direction::ToTerminal, &self.tid, payload).ok()?;
        self.replay.accept(n).ok()?;
        Some(plain)
    }
}

/// One terminal: keeps one sale at a time in flight, re-sending after `retry`.
struct Terminal {
    client: Client,
    req: String,
    /// A paired checkout's sealed link; `None` speaks in the clear.
    link: Option<Link>,
}

impl Terminal {
    async fn connect(port: u16, store: &str, tid: &str) -> Terminal {
        let topics = Topics::new(store);
        let tid = TerminalId::parse(tid).expect("terminal id");
        let client = Client::connect(port, &format!("bench-{tid}"), &[topics.resp(&tid)]).await;
        Terminal {
            client,
            req: topics.req(&tid),
            link: None,
        }
    }

    /// A paired checkout, logged in to the broker as the protocol says.
    async fn connect_paired(port: u16, store: &str, tid: &str, key: Key) -> Terminal {
        let topics = Topics::new(store);
        let id = TerminalId::parse(tid).expect("terminal id");
        let password = seal::broker_password(&key, tid);
        let client = Client::connect_as(
            port,
            &format!("tallybox-term-{tid}"),
            (tid, &password),
            &[topics.resp(&id)],
        )
        .await;
        Terminal {
            client,
            req: topics.req(&id),
            link: Some(Link::new(key, tid)),
        }
    }

    /// One sale to its answer; the status and the time it took.
    async fn sale(&mut self) -> (Outcome, Duration) {
        let request_id = RequestId::new();
        let payload = sale_request(&request_id);
        self.round_trip(&request_id, payload).await
    }

    /// A sale paid by the payment code `code`.
    async fn code_sale(&mut self, code: &str) -> (Outcome, Duration) {
        let request_id = RequestId::new();
        let payload = encode(&Request::CodeSale(requests::CodeSale {
            request_id: request_id.clone(),
            amount: Amount::from_minor(1250).expect("amount"),
            currency: "CNY".into(),
            code: code.into(),
            supervisor_pin: None,
            split: None,
        }))
        .expect("a code sale encodes");
        self.round_trip(&request_id, payload).await
    }

    /// Publishes `payload` until the outcome of `request_id` comes back.
    async fn round_trip(&mut self, request_id: &RequestId, payload: Vec<u8>) -> (Outcome, Duration) {
        let started = Instant::now();
        loop {
            // A paired checkout seals each send anew: a copy would be a replay.
            let sent = match &mut self.link {
                Some(link) => link.seal(&payload),
                None => payload.clone(),
            };
            self.client.publish(&self.req, sent).await;
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Some((_, bytes)) = self
                .client
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                let bytes = match &mut self.link {
                    Some(link) => match link.open(&bytes) {
                        Some(plain) => Bytes::from(plain),
                        None => continue,
                    },
                    None => bytes,
                };
                if let Ok(Response::Outcome(o)) = decode_response(&bytes) {
                    if o.request_id == *request_id {
                        return (o, started.elapsed());
                    }
                }
            }
        }
    }
}

/// A sale the bench needs approved: else it stops, saying the hub's answer.
fn approved(outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        TxnStatus::Approved,
        "the hub answered {} ({})",
        outcome.response_code,
        tallybox_core::reason::explain(outcome.response_code).reason_en
    );
}

/// Sale round trips from one terminal.
pub async fn sale_latency(port: u16, store: &str, rounds: usize) -> Histogram<u64> {
    let mut t = Terminal::connect(port, store, "B0").await;
    let mut h = histogram();
    for i in 0..rounds + 50 {
        let (outcome, took) = t.sale().await;
        approved(&outcome);
        if i >= 50 {
            record(&mut h, took);
        }
    }
    h
}

/// Code-sale round trips from one terminal, each with a new code that
/// `code(i)` makes (a code pays once).
pub async fn code_sale_latency(
    port: u16,
    store: &str,
    rounds: usize,
    code: impl Fn(usize) -> String,
) -> Histogram<u64> {
    let mut t = Terminal::connect(port, store, "B0").await;
    let mut h = histogram();
    for i in 0..rounds + 20 {
        let (outcome, took) = t.code_sale(&code(i)).await;
        approved(&outcome);
        if i >= 20 {
            record(&mut h, took);
        }
    }
    h
}

/// `count` approved sales from `terminals` terminals selling back to back.
pub async fn sales(port: u16, store: &str, terminals: usize, count: u64) {
    let left = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(count as i64));
    let mut tasks = Vec::new();
    for i in 1..=terminals {
        let mut t = Terminal::connect(port, store, &format!("L{i}")).await;
        let left = std::sync::Arc::clone(&left);
        tasks.push(tokio::spawn(async move {
            while left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                approved(&t.sale().await.0);
            }
        }));
    }
    for task in tasks {
        task.await.expect("terminal task");
    }
}

pub struct Throughput {
    pub approved: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

/// Pairs checkout `tid` with the owner's `code` as the protocol says (a
/// `pair` in the clear, SPAKE2): the key, once the hub proved it holds it.
pub async fn pair(port: u16, store: &str, tid: &str, code: &str) -> anyhow::Result<Key> {
    let topics = Topics::new(store);
    let id = TerminalId::parse(tid).map_err(anyhow::Error::msg)?;
    let mut client = Client::connect_as(
        port,
        &format!("tallybox-term-{tid}"),
        (tid, ""),
        &[topics.resp(&id)],
    )
    .await;
    let (exchange, message) = seal::pair_start(code, tid, store)?;
    let request_id = RequestId::new();
    let request = encode(&Request::Pair(requests::Pair {
        request_id: request_id.clone(),
        message,
    }))?;
    client.publish(&topics.req(&id), request).await;
    while let Some((_, bytes)) = client.next(Duration::from_secs(10)).await {
        let Ok(answer) = decode_response(&bytes) else {
            continue;
        };
        if answer.request_id() != Some(request_id.as_str()) {
            continue;
        }
        match answer {
            Response::Paired { message, confirm, .. } => return Ok(exchange.finish(&message, &confirm)?),
            other => anyhow::bail!("{tid} not paired: {other:?}"),
        }
    }
    anyhow::bail!("{tid}: no answer to its pairing")
}

/// When a load stops.
#[derive(Clone, Copy)]
pub enum Until {
    /// After this long.
    Time(Duration),
    /// Once this many sales were sent.
    Sales(u64),
}

/// `terminals` terminals selling back to back for `run`.
pub async fn throughput(port: u16, store: &str, terminals: usize, run: Duration) -> Throughput {
    let mut connected = Vec::new();
    for i in 1..=terminals {
        connected.push(Terminal::connect(port, store, &format!("B{i}")).await);
    }
    sell(connected, Until::Time(run), Arc::default()).await
}

/// Paired checkouts (id, key) selling back to back, every request and
/// answer sealed, until `until`; `sold` counts the answered sales as they come.
pub async fn sealed_throughput(
    port: u16,
    store: &str,
    paired: &[(String, Key)],
    until: Until,
    sold: &Arc<AtomicU64>,
) -> Throughput {
    let mut connected = Vec::new();
    for (tid, key) in paired {
        connected.push(Terminal::connect_paired(port, store, tid, *key).await);
    }
    sell(connected, until, Arc::clone(sold)).await
}

async fn sell(connected: Vec<Terminal>, until: Until, sold: Arc<AtomicU64>) -> Throughput {
    let mut tasks = Vec::new();
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::default());
    for mut t in connected {
        let (sent, sold) = (Arc::clone(&sent), Arc::clone(&sold));
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut approved = 0u64;
            loop {
                let more = match until {
                    Until::Time(run) => started.elapsed() < run,
                    Until::Sales(n) => sent.fetch_add(1, Ordering::Relaxed) < n,
                };
                if !more {
                    break;
                }
                let (outcome, took) = t.sale().await;
                if outcome.status == TxnStatus::Approved {
                    approved += 1;
                }
                sold.fetch_add(1, Ordering::Relaxed);
                record(&mut h, took);
            }
            (approved, h)
        }));
    }
    let mut total = 0;
    let mut latency = histogram();
    for task in tasks {
        let (approved, h) = task.await.expect("terminal task");
        total += approved;
        let _ = latency.add(h);
    }
    Throughput {
        approved: total,
        elapsed: started.elapsed(),
        latency,
    }
}
