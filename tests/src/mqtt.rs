//! A raw MQTT client for tests that speak the protocol directly: duplicate
//! request ids, malformed payloads, messages a well-behaved terminal never sends.

use std::sync::mpsc;
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

pub struct RawClient {
    client: Client,
    answers: mpsc::Receiver<Vec<u8>>,
    store: String,
}

impl RawClient {
    /// Connects and subscribes to `tid`'s answers.
    pub fn connect(port: u16, store: &str, tid: &str) -> RawClient {
        RawClient::connect_named(port, store, tid, &format!("raw-{tid}-{}", std::process::id()))
    }

    /// Like [`RawClient::connect`], with the client id the protocol gives
    /// checkout `tid` (`tallybox-term-<tid>`): on a hub that requires
    /// pairing, the broker lets only that id speak for an unpaired `tid`.
    pub fn connect_as_checkout(port: u16, store: &str, tid: &str) -> RawClient {
        RawClient::connect_named(port, store, tid, &format!("tallybox-term-{tid}"))
    }

    fn connect_named(port: u16, store: &str, tid: &str, client_id: &str) -> RawClient {
        let resp = format!("tallybox/v1/{store}/term/{tid}/resp");
        let (client, answers) = subscriber(port, client_id, &resp);
        RawClient {
            client,
            answers,
            store: store.to_string(),
        }
    }

    pub fn publish_raw(&self, tid: &str, payload: Vec<u8>) {
        let topic = format!("tallybox/v1/{}/term/{tid}/req", self.store);
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .expect("publish");
    }

    pub fn publish(&self, tid: &str, message: &Value) {
        self.publish_raw(tid, serde_json::to_vec(message).expect("JSON"));
    }

    /// The next answer whose request id is `request_id` (or any answer if `None`).
    pub fn answer(&self, request_id: Option<&str>, wait: Duration) -> Option<Value> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let bytes = self.answers.recv_timeout(left).ok()?;
            let value: Value = serde_json::from_slice(&bytes).expect("the hub answers JSON");
            if request_id.is_none() || value["request_id"].as_str() == request_id {
                return Some(value);
            }
        }
    }

    /// Sends `message` every `every` until an answer to it arrives (as a terminal does).
    pub fn request(&self, tid: &str, message: &Value, wait: Duration) -> Option<Value> {
        let rid = message["request_id"].as_str().map(str::to_string);
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            self.publish(tid, message);
            if let Some(a) = self.answer(rid.as_deref(), Duration::from_millis(1000)) {
                return Some(a);
            }
        }
        None
    }
}

/// Every message published on `topic` from now on, as an eavesdropper on
/// the store's network would see it.
pub fn sniff(port: u16, topic: &str) -> mpsc::Receiver<Vec<u8>> {
    subscriber(port, &format!("sniff-{}", std::process::id()), topic).1
}

/// A client subscribed to `topic` (once the subscription holds), and what
/// arrives on it.
fn subscriber(port: u16, id: &str, topic: &str) -> (Client, mpsc::Receiver<Vec<u8>>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    // The hub's broker wants a user name from anyone (any will do for ids
    // that are neither the hub's nor a paired checkout's).
    options.set_credentials(id, "");
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 64);
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sub, topic) = (client.clone(), topic.to_string());
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub.subscribe(topic.clone(), QoS::AtMostOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p.payload.to_vec()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("MQTT client subscribed");
    (client, rx)
}

/// A sale request as a terminal would send it, for a test card.
pub fn sale(request_id: &str, card: &Value, minor: u64) -> Value {
    serde_json::json!({
        "v": 1, "type": "sale", "request_id": request_id, "amount": minor, "currency": "CNY",
        "card": {
            "pan": card["pan"], "expiry": card["expiry"], "service_code": "201", "entry_mode": "swipe"
        }
    })
}

/// Raw MQTT 3.1.1 bytes, for tests that write packets themselves.
pub mod wire {
    /// A length-prefixed string.
    pub fn string(text: &str) -> Vec<u8> {
        [
            (text.len() as u16).to_be_bytes().to_vec(),
            text.as_bytes().to_vec(),
        ]
        .concat()
    }

    /// A control packet: its first byte, the remaining length, the rest.
    pub fn packet(first: u8, rest: &[u8]) -> Vec<u8> {
        let mut packet = vec![first];
        let mut length = rest.len();
        loop {
            let mut byte = (length % 128) as u8;
            length /= 128;
            if length > 0 {
                byte |= 0x80;
            }
            packet.push(byte);
            if length == 0 {
                break;
            }
        }
        packet.extend_from_slice(rest);
        packet
    }
}
