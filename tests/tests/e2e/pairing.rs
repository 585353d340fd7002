//! Pairing and sealed messages on a running hub: the owner opens a pairing
//! on the web page, a wrong code is refused, the right one pairs; from then
//! on the terminal's traffic is sealed (no card number on the wire), an
//! unsealed message in its name, a replayed one and a forged one are
//! dropped; with pairing required an unpaired terminal cannot sell; the
//! pairing survives a hub restart; a revoked terminal cannot sell.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;
use tallybox_e2e::mqtt::{sale, sniff, wire, RawClient};
use tallybox_e2e::procs::{Hub, Mosquitto, Terminal, STORE};
use tallybox_e2e::{test_card, wait_for};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn a_hub_as_shipped_lets_only_paired_terminals_sell() {
    let hub = Hub::start_as_shipped();
    let web = hub.web();
    let (_, settings) = web.get("/api/v1/settings");
    assert_eq!(settings["pairing_required"], true, "{settings}");
    // An eavesdropper on T4's requests from its first moment.
    let heard = sniff(hub.mqtt, &format!("tallybox/v1/{STORE}/term/T4/req"));
    let t4 = Terminal::start("T4", hub.mqtt);
    // Keyed at once, before the hub has answered, and again once refused.
    for _ in 0..2 {
        t4.keys("A500#");
        t4.card("approved");
        std::thread::sleep(Duration::from_millis(500));
    }
    t4.wait_screen("NOT PAIRED", WAIT);
    t4.keys("A500#");
    t4.card("approved");
    t4.keys("C");
    std::thread::sleep(Duration::from_secs(1));
    let pan = test_card("approved")["pan"].as_str().unwrap().to_string();
    let sent: Vec<String> = heard
        .try_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect();
    assert!(sent.iter().any(|m| m.contains("sign_in")), "{sent:?}");
    assert!(
        !sent.iter().any(|m| m.contains(&pan) || m.contains("\"sale\"")),
        "an unpaired checkout sent card data in clear: {sent:?}"
    );
    // Nor can a client in the clear sell as a checkout.
    let raw = RawClient::connect_as_checkout(hub.mqtt, STORE, "T8");
    raw.publish("T8", &sale("shipped-00000001", &test_card("approved"), 100));
    let answer = raw.answer(None, WAIT).expect("an answer");
    assert_eq!(answer["code"], "not_paired", "{answer}");
    assert!(hub.transactions("").is_empty(), "an unpaired terminal sold");
    // Paired with the owner's code, it sells.
    let (_, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    let code = opened["code"].as_str().unwrap().to_string();
    t4.keys(&format!("D5{code}#"));
    t4.wait_screen("PAIRED", WAIT);
    t4.keys("C");
    assert!(t4.sale(600, "approved").contains("APPROVED"));
    assert_eq!(hub.transactions("").len(), 1);
}

#[test]
fn a_terminal_pairs_with_the_owners_code_and_then_nobody_else_speaks_for_it() {
    // On mosquitto, which lets anyone publish anywhere: the hub's own checks
    // are the defence. (The embedded broker's gate drops what another
    // connection publishes in a paired checkout's name before the hub sees
    // it: `lan_attacks.rs`.)
    let broker = Mosquitto::start();
    let mut hub = Hub::start_with(Some(broker.port), &[]);
    let web = hub.web();
    let t3 = Terminal::start("T3", hub.mqtt);
    t3.wait_ready();
    let state = |web: &tallybox_e2e::web::WebClient| {
        let (_, list) = web.get("/api/v1/terminals");
        list["terminals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "T3")
            .map(|t| t["pairing"].as_str().unwrap().to_string())
    };
    assert_eq!(state(&web).as_deref(), Some("unpaired"));

    // The owner requires pairing: T3 is told, and sells nothing.
    let required = json!({"store_name": "Corner Shop", "pairing_required": true});
    assert_eq!(web.send("PUT", "/api/v1/settings", required).0, 204);
    t3.keys("A500#");
    t3.card("approved");
    t3.wait_screen("NOT PAIRED", WAIT);
    t3.keys("C");
    assert!(hub.transactions("").is_empty(), "an unpaired terminal sold");

    // The owner opens a pairing: an 8-digit code and its QR code.
    let (status, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    assert_eq!(status, 201, "{opened}");
    let code = opened["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert_eq!(opened["tries_left"], 3);
    let (status, kind, svg) = web.get_text("/api/v1/pairing/qr.svg");
    assert_eq!((status, kind.as_str()), (200, "image/svg+xml"));
    assert!(svg.starts_with("<svg"));

    // A wrong code costs a try and pairs nothing.
    let wrong = format!("{:08}", (code.parse::<u32>().unwrap() + 1) % 100_000_000);
    t3.keys(&format!("D5{wrong}#"));
    let failed = t3.wait_screen("PAIRING FAILED", WAIT);
    assert!(failed.contains("wrong"), "{failed}");
    t3.keys("C");
    assert_eq!(web.get("/api/v1/pairing").1["tries_left"], 2);

    // The right code pairs; the code is spent.
    t3.keys(&format!("D5{code}#"));
    t3.wait_screen("PAIRED", WAIT);
    t3.keys("C");
    t3.wait_ready();
    assert_eq!(state(&web).as_deref(), Some("paired"));
    assert_eq!(web.get("/api/v1/pairing").1["paired"], "T3");
    let key_file = t3.state_dir().join("hub.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is the terminal's alone");

    // A sale, sealed: an eavesdropper sees no card number and no amount.
    let wire = sniff(hub.mqtt, &format!("tallybox/v1/{STORE}/term/T3/req"));
    let sold = t3.sale(1250, "approved");
    assert!(sold.contains("APPROVED"), "{sold}");
    t3.keys("C");
    let seen: Vec<Vec<u8>> = wire.try_iter().collect();
    assert!(!seen.is_empty(), "nothing seen on the wire");
    let sealed_sale = seen.iter().max_by_key(|m| m.len()).unwrap().clone();
    for message in &seen {
        let text = String::from_utf8_lossy(message);
        assert!(text.contains("\"type\":\"sealed\""), "{text}");
        assert!(
            !text.contains("6222021000000005") && !text.contains("12.50"),
            "{text}"
        );
    }
    assert_eq!(hub.transactions("").len(), 1);

    // Someone else speaking for T3: in the clear, replayed, or forged — all dropped.
    let raw = RawClient::connect(hub.mqtt, STORE, "T3");
    let forged = sale("forged-000000001", &test_card("approved"), 99_00);
    raw.publish("T3", &forged);
    raw.publish_raw("T3", sealed_sale.clone());
    let mut tampered: serde_json::Value = serde_json::from_slice(&sealed_sale).unwrap();
    tampered["n"] = json!(tampered["n"].as_u64().unwrap() + 1_000_000);
    raw.publish_raw("T3", serde_json::to_vec(&tampered).unwrap());
    assert!(
        raw.answer(None, Duration::from_secs(3)).is_none(),
        "the hub answered a message T3 never sent"
    );
    assert_eq!(hub.transactions("").len(), 1, "a dropped message was charged");
    let log = hub.log();
    assert!(
        log.contains("unsealed message in the name of a paired terminal"),
        "{log}"
    );
    assert!(log.contains("a replay"), "{log}");
    assert!(log.contains("forged, altered"), "{log}");

    // The pairing survives a restart of the hub, and so does its memory of
    // T3's counters: the captured sale replayed after the restart is dropped.
    let online = |hub: &Hub| {
        hub.log()
            .matches("terminal status terminal=T3 online=true")
            .count()
    };
    let before = online(&hub);
    hub.stop();
    hub.restart();
    // T3 back first, and the hub's "are you frozen" notice to it gone by:
    // what T3's topic carries then is not the replay's.
    let back = wait_for(WAIT, || (online(&hub) > before).then_some(()));
    assert!(back.is_some(), "T3 did not come back:\n{}", hub.log());
    std::thread::sleep(Duration::from_secs(1));
    let replays = hub.log().matches("a replay").count();
    let raw = RawClient::connect(hub.mqtt, STORE, "T3");
    raw.publish_raw("T3", sealed_sale.clone());
    let answered = raw.answer(None, Duration::from_secs(3));
    assert!(
        answered.is_none(),
        "a replay after the restart was answered: {answered:?}"
    );
    assert_eq!(
        hub.log().matches("a replay").count(),
        replays + 1,
        "{}",
        hub.log()
    );
    let web = hub.web();
    t3.wait_ready();
    let sold = t3.sale(300, "approved");
    assert!(sold.contains("APPROVED"), "{sold}");
    t3.keys("C");
    assert_eq!(state(&web).as_deref(), Some("paired"));

    // Revoked: refused until paired again.
    assert_eq!(web.send("DELETE", "/api/v1/terminals/T3/key", json!({})).0, 204);
    assert_eq!(state(&web).as_deref(), Some("revoked"));
    t3.keys("A700#");
    t3.card("approved");
    t3.wait_screen("NOT PAIRED", WAIT);
    t3.keys("C");
    assert_eq!(hub.transactions("").len(), 2);
    assert!(!log.contains(&code), "the pairing code reached the log");

    // Paired again with a new code: a new key, and T3 sells again.
    let (_, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    let code = opened["code"].as_str().unwrap().to_string();
    t3.keys(&format!("D5{code}#"));
    t3.wait_screen("PAIRED", WAIT);
    t3.keys("C");
    t3.wait_ready();
    assert_eq!(state(&web).as_deref(), Some("paired"));
    assert!(t3.sale(900, "approved").contains("APPROVED"));
    assert_eq!(hub.transactions("").len(), 3);
}

#[test]
fn a_burst_of_sealed_requests_is_served_whole_in_the_order_sent() {
    // The hub handles requests side by side; their counters must still be
    // checked in the order they came, or the earlier of two close ones is
    // taken for a replay and dropped.
    let hub = Hub::start_as_shipped();
    let web = hub.web();
    let mut t5 = Terminal::start("T5", hub.mqtt);
    let (_, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    let code = opened["code"].as_str().unwrap().to_string();
    t5.keys(&format!("D5{code}#"));
    t5.wait_screen("PAIRED", WAIT);
    let key = tallybox_platform::sealed_files::read_key(&t5.state_dir().join("hub.key"))
        .unwrap()
        .expect("T5 keeps its key");
    t5.kill();

    // The whole burst in one TCP write, so the hub reads it at once.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
        + 1_000_000;
    const BURST: u64 = 40;
    let topic = format!("tallybox/v1/{STORE}/term/T5/req");
    let mut burst = Vec::new();
    for n in 0..BURST {
        let request = sale(&format!("burst-{n:011}"), &test_card("approved"), 100 + n);
        let sealed = tallybox_core::seal::seal(
            &key,
            tallybox_core::seal::Direction::ToHub,
            "T5",
            start + n,
            &serde_json::to_vec(&request).unwrap(),
        );
        burst.extend(wire::packet(0x30, &[wire::string(&topic), sealed].concat()));
    }
    let mut wire = std::net::TcpStream::connect(("127.0.0.1", hub.mqtt)).unwrap();
    // CONNECT as T5 (MQTT 3.1.1, clean session, the login T5's key gives,
    // keep-alive 60 s), then CONNACK.
    let connect = [
        wire::string("MQTT"),
        vec![4, 0xc2, 0, 60],
        wire::string("tallybox-term-T5"),
        wire::string("T5"),
        wire::string(&tallybox_core::seal::broker_password(&key, "T5")),
    ]
    .concat();
    wire.write_all(&wire::packet(0x10, &connect)).unwrap();
    let mut connack = [0u8; 4];
    wire.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "the broker refused the connection");
    wire.write_all(&burst).unwrap();
    let stored = wait_for(WAIT, || {
        let n = hub.transactions("terminal=T5").len() as u64;
        (n == BURST).then_some(n)
    });
    assert_eq!(
        stored,
        Some(BURST),
        "{} of {BURST} sales kept; the hub's log:\n{}",
        hub.transactions("terminal=T5").len(),
        hub.log()
    );
    assert!(!hub.log().contains("message dropped"), "{}", hub.log());
}
