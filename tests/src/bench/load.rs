//! Load from MQTT clients that speak the real protocol: the bare echo
//! baseline, one terminal's sale latency, and many terminals at once.

use std::time::{Duration, Instant};
use tallybox_core::protocol::requests;

use bytes::Bytes;
use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS};
use tallybox_core::card::{test_cards, EntryMode};
use tallybox_core::money::Amount;
use tallybox_core::protocol::{
    decode_response, encode, Request, RequestId, Response, TerminalId, Topics, TxnStatus,
};
use tokio::sync::mpsc;

use super::{histogram, record};

/// An MQTT client with Nagle off, its incoming publishes on a channel.
pub struct Client {
    client: AsyncClient,
    incoming: mpsc::Receiver<(String, Bytes)>,
}

impl Client {
    pub async fn connect(port: u16, id: &str, subscribe: &[String]) -> Client {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        // The hub's broker wants a user name from anyone (any will do for ids
        // that are neither the hub's nor a paired checkout's).
        options.set_credentials(id, "");
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

/// One terminal: keeps one sale at a time in flight, re-sending after `retry`.
struct Terminal {
    client: Client,
    req: String,
}

impl Terminal {
    async fn connect(port: u16, store: &str, tid: &str) -> Terminal {
        let topics = Topics::new(store);
        let tid = TerminalId::parse(tid).expect("terminal id");
        let client = Client::connect(port, &format!("bench-{tid}"), &[topics.resp(&tid)]).await;
        Terminal {
            client,
            req: topics.req(&tid),
        }
    }

    /// One sale to its answer; the status and the time it took.
    async fn sale(&mut self) -> (TxnStatus, Duration) {
        let request_id = RequestId::new();
        let payload = sale_request(&request_id);
        self.round_trip(&request_id, payload).await
    }

    /// A sale paid by the payment code `code`.
    async fn code_sale(&mut self, code: &str) -> (TxnStatus, Duration) {
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
    async fn round_trip(&mut self, request_id: &RequestId, payload: Vec<u8>) -> (TxnStatus, Duration) {
        let started = Instant::now();
        loop {
            self.client.publish(&self.req, payload.clone()).await;
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Some((_, bytes)) = self
                .client
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                if let Ok(Response::Outcome(o)) = decode_response(&bytes) {
                    if o.request_id == *request_id {
                        return (o.status, started.elapsed());
                    }
                }
            }
        }
    }
}

/// Sale round trips from one terminal.
pub async fn sale_latency(port: u16, store: &str, rounds: usize) -> Histogram<u64> {
    let mut t = Terminal::connect(port, store, "B0").await;
    let mut h = histogram();
    for i in 0..rounds + 50 {
        let (status, took) = t.sale().await;
        assert_eq!(status, TxnStatus::Approved);
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
        let (status, took) = t.code_sale(&code(i)).await;
        assert_eq!(status, TxnStatus::Approved);
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
                let (status, _) = t.sale().await;
                assert_eq!(status, TxnStatus::Approved);
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

/// `terminals` terminals selling back to back for `run`.
pub async fn throughput(port: u16, store: &str, terminals: usize, run: Duration) -> Throughput {
    let mut tasks = Vec::new();
    let mut connected = Vec::new();
    for i in 1..=terminals {
        connected.push(Terminal::connect(port, store, &format!("B{i}")).await);
    }
    let started = Instant::now();
    for mut t in connected {
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut approved = 0u64;
            while started.elapsed() < run {
                let (status, took) = t.sale().await;
                if status == TxnStatus::Approved {
                    approved += 1;
                }
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
