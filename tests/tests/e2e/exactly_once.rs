//! A request id charges once, whatever gets repeated or restarted: the same
//! message twice, a retry after a hub restart, a retry after a broker restart,
//! and a hub killed between "pending written" and "acquirer answered".

use std::time::Duration;

use serde_json::Value;
use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, Mosquitto, STORE};
use tallybox_e2e::{test_card, wait_for};

fn rows_for(hub: &Hub, request_id: &str) -> Vec<Value> {
    hub.transactions("limit=200")
        .into_iter()
        .filter(|t| t["request_id"] == request_id)
        .collect()
}

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn the_same_request_twice_charges_once_and_gets_the_same_answer() {
    let hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T7");
    let request = sale("dup-0000000001", &test_card("approved"), 990);
    let first = raw.request("T7", &request, WAIT).expect("an answer");
    assert_eq!(first["status"], "approved", "{first}");
    raw.publish("T7", &request);
    let second = raw.answer(Some("dup-0000000001"), WAIT).expect("a second answer");
    assert_eq!(first, second);
    assert_eq!(rows_for(&hub, "dup-0000000001").len(), 1);

    // Two copies at once (a slow card keeps the first in flight): the copy that
    // arrives while the first is being authorized is not answered separately.
    let slow = sale("dup-0000000002", &test_card("slow"), 100);
    raw.publish("T7", &slow);
    raw.publish("T7", &slow);
    let answer = raw.answer(Some("dup-0000000002"), WAIT).expect("answer");
    assert_eq!(answer["status"], "approved");
    assert!(raw
        .answer(Some("dup-0000000002"), Duration::from_secs(1))
        .is_none());
    assert_eq!(rows_for(&hub, "dup-0000000002").len(), 1);

    // The same id for a different amount is refused, not charged.
    let other = sale("dup-0000000001", &test_card("approved"), 5);
    let refused = raw.request("T7", &other, WAIT).expect("answer");
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "duplicate_request_id");
    assert_eq!(rows_for(&hub, "dup-0000000001")[0]["amount"], 990);
}

#[test]
fn a_retry_after_a_hub_restart_gets_the_original_answer() {
    let mut hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T7");
    let request = sale("restart-000001", &test_card("visa"), 1234);
    let first = raw.request("T7", &request, WAIT).expect("answer");
    assert_eq!(first["status"], "approved");
    hub.restart();
    let raw = RawClient::connect(hub.mqtt, STORE, "T7");
    let again = raw.request("T7", &request, WAIT).expect("answer after restart");
    assert_eq!(again, first);
    assert_eq!(rows_for(&hub, "restart-000001").len(), 1);
}

#[test]
fn a_retry_after_a_broker_restart_gets_the_original_answer() {
    let mut broker = Mosquitto::start();
    let hub = Hub::start_with(Some(broker.port), &[]);
    let raw = RawClient::connect(broker.port, STORE, "T7");
    let request = sale("broker-0000001", &test_card("mastercard"), 4321);
    let first = raw.request("T7", &request, WAIT).expect("answer");
    assert_eq!(first["status"], "approved");
    broker.restart();
    // The hub reconnects by itself; the terminal side re-sends until answered.
    let raw = RawClient::connect(broker.port, STORE, "T7");
    let again = raw
        .request("T7", &request, Duration::from_secs(30))
        .expect("answer after broker restart");
    assert_eq!(again, first);
    assert_eq!(rows_for(&hub, "broker-0000001").len(), 1);
}

#[test]
fn a_hub_killed_mid_authorization_ends_reversed_never_lost_or_charged_twice() {
    let mut hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T7");
    // The slow card keeps the acquirer busy for 3 s after "pending" is written.
    let request = sale("crash-00000001", &test_card("slow"), 5000);
    raw.publish("T7", &request);
    let pending = wait_for(Duration::from_secs(5), || {
        rows_for(&hub, "crash-00000001")
            .into_iter()
            .find(|t| t["status"] == "pending")
    });
    assert!(
        pending.is_some(),
        "the sale was written pending before the acquirer answered"
    );
    hub.kill();
    hub.restart();
    let rows = rows_for(&hub, "crash-00000001");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "reversed", "{}", rows[0]);
    assert!(hub.log().contains("reversed sales left pending"));
    // The terminal's retry learns the truth: not charged.
    let raw = RawClient::connect(hub.mqtt, STORE, "T7");
    let answer = raw.request("T7", &request, WAIT).expect("answer");
    assert_eq!(
        (answer["status"].as_str(), answer["response_code"].as_str()),
        (Some("reversed"), Some("NC"))
    );
    assert!(answer.get("receipt").is_none());
    assert_eq!(rows_for(&hub, "crash-00000001").len(), 1);
    // The database is sound and its audit chain whole: the owner's password
    // set at first start, then pending, then reversed.
    let conn = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(tallybox::store::audit::verify(&conn), Ok(3));
}
