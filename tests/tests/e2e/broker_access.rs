//! Who gets onto the broker. The hub's embedded broker keeps the hub's and
//! each paired checkout's client id for them (MQTT would otherwise let
//! anyone knock them off by connecting under their id). On a locked
//! mosquitto: a password per checkout and the ACL file Tallybox ships
//! (`hub/broker/mosquitto-acl.conf`); a checkout sells with its own login; no
//! login, a wrong password, or one checkout's login used to speak or listen
//! for another gets nothing through.

use std::time::Duration;

use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tallybox_e2e::mqtt::sale;
use tallybox_e2e::procs::{Hub, Mosquitto, Terminal, STORE};
use tallybox_e2e::test_card;

/// Connects as `user` and returns the client and its event stream once the
/// broker accepted it, or the broker's refusal.
fn login(port: u16, id: &str, user: Option<(&str, &str)>) -> Result<(Client, rumqttc::Connection), String> {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    if let Some((u, p)) = user {
        options.set_credentials(u, p);
    }
    let (client, mut connection) = Client::new(options, 16);
    for event in connection.iter().take(3) {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok((client, connection)),
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(format!("{code:?}")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("no answer".into())
}

#[test]
fn each_checkout_logs_in_with_its_own_password_and_reaches_only_its_own_topics() {
    let broker = Mosquitto::start_locked(&[
        ("tallybox-hub", "hub-secret"),
        ("T1", "t1-secret"),
        ("T2", "t2-secret"),
    ]);
    let url = format!("mqtt://tallybox-hub:hub-secret@127.0.0.1:{}", broker.port);
    let hub = Hub::start_with(Some(broker.port), &["--broker", &url]);
    assert!(
        !hub.log().contains("hub-secret"),
        "the broker password reached the log"
    );

    // Strangers are not let in.
    assert!(login(broker.port, "stranger", None).is_err(), "anonymous login");
    assert!(
        login(broker.port, "guess", Some(("T1", "wrong"))).is_err(),
        "wrong password"
    );

    // T2's login listens on T1's answers and speaks for T1, while T1 sells.
    let (spy, mut events) =
        login(broker.port, "tallybox-term-T2x", Some(("T2", "t2-secret"))).expect("T2 logs in");
    spy.subscribe("tallybox/v1/#", QoS::AtMostOnce).unwrap();
    let forged = sale("acl-forged-0001", &test_card("approved"), 4_400);
    spy.publish(
        format!("tallybox/v1/{STORE}/term/T1/req"),
        QoS::AtMostOnce,
        false,
        serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listening = std::sync::Arc::clone(&stop);
    let heard = std::thread::spawn(move || {
        let mut heard = Vec::new();
        while !listening.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(Ok(Event::Incoming(Packet::Publish(p)))) =
                events.recv_timeout(Duration::from_millis(100))
            {
                heard.push(p.topic);
            }
        }
        heard
    });

    let t1 = Terminal::start_as("T1", broker.port, "T1", "t1-secret");
    t1.wait_ready();
    assert!(t1.sale(1_500, "approved").contains("APPROVED"));
    assert!(
        !t1.log().contains("t1-secret"),
        "the checkout logged its password"
    );

    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let heard = heard.join().unwrap();
    // Its own topics, and the hub's status, which every checkout reads.
    assert!(
        heard
            .iter()
            .all(|t| t.starts_with(&format!("tallybox/v1/{STORE}/term/T2/"))
                || *t == format!("tallybox/v1/{STORE}/hub/status")),
        "T2's login heard others' topics: {heard:?}"
    );
    let rows = hub.transactions("");
    assert_eq!(rows.len(), 1, "only T1's own sale: {rows:?}");
    assert_eq!(rows[0]["amount"], 1_500);
    assert!(
        !hub.log().contains("acl-forged-0001"),
        "the forged request reached the hub"
    );
}

#[test]
fn the_embedded_broker_keeps_the_hubs_and_paired_checkouts_ids_for_them() {
    let wait = Duration::from_secs(15);
    let mut hub = Hub::start_as_shipped();
    // Anyone may connect with a user name (an unpaired checkout must, to
    // pair); nobody without one.
    assert!(login(hub.mqtt, "stranger", None).is_err(), "no user name");
    let stranger = login(hub.mqtt, "stranger", Some(("stranger", "")));
    assert!(stranger.is_ok(), "{:?}", stranger.err());
    // Nobody takes the hub's place.
    assert!(login(hub.mqtt, "tallybox-hub", Some(("tallybox-hub", "guess"))).is_err());
    assert!(login(hub.mqtt, "tallybox-hub", Some(("someone", ""))).is_err());

    // T1 pairs; from then on its client id is its own.
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_screen("NOT PAIRED", wait);
    let web = hub.web();
    let (_, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    let code = opened["code"].as_str().unwrap().to_string();
    t1.keys(&format!("D5{code}#"));
    t1.wait_screen("PAIRED", wait);
    t1.keys("C");
    t1.wait_ready();
    assert!(login(hub.mqtt, "tallybox-term-T1", Some(("T1", ""))).is_err());
    assert!(login(hub.mqtt, "tallybox-term-T1", Some(("T1", &"0".repeat(32)))).is_err());
    assert!(
        t1.sale(800, "approved").contains("APPROVED"),
        "T1 was knocked off"
    );
    t1.keys("C");
    assert!(
        !t1.log().contains("lost the broker"),
        "T1 was knocked off the broker: {}",
        t1.log()
    );

    // The owner sees who was refused, and what to do.
    let (_, checks) = web.get("/api/v1/checks");
    let logins = tallybox_e2e::web::find_check(&checks, "hub.broker_logins");
    assert_eq!(logins["status"], "warn", "{logins}");
    let evidence = logins["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("tallybox-term-T1 ×2") && evidence.contains("tallybox-hub ×2"),
        "{evidence}"
    );
    assert!(!hub.log().contains("guess"), "a tried password reached the log");

    // The hub restarts: T1 logs in again with the password its key gives,
    // without restarting itself; and after a restart of its own.
    hub.stop();
    hub.restart();
    t1.wait_ready();
    assert!(
        t1.sale(900, "approved").contains("APPROVED"),
        "T1 did not log in again"
    );
    t1.keys("C");
    let mut t1 = t1;
    t1.restart();
    t1.wait_ready();
    assert!(t1.sale(1_000, "approved").contains("APPROVED"));
    assert_eq!(hub.transactions("").len(), 3);
}
