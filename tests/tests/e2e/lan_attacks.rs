//! Attacks from the shop's LAN, made for real on loopback: a stranger on the
//! broker (mosquitto, which lets any client publish anywhere, as many
//! brokers a shop might run do) tries to make a paired checkout tell the
//! cashier something the hub did not say.

use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tallybox_core::protocol::{encode, ErrorCode, Outcome, RequestId, Response, TxnKind, TxnStatus};
use tallybox_e2e::procs::{Hub, Mosquitto, Terminal, STORE};

const WAIT: Duration = Duration::from_secs(15);

/// What a stranger says in clear to `T1` each time `T1` sends a request:
/// the hub refusing it, a decline, a freeze, a restart, an update offer.
fn forgeries() -> Vec<Vec<u8>> {
    let made_up = RequestId::new();
    [
        Response::Error {
            request_id: None,
            code: ErrorCode::NotPaired,
            message: "this terminal is not paired".into(),
        },
        Response::Error {
            request_id: Some(made_up.to_string()),
            code: ErrorCode::Internal,
            message: "forged".into(),
        },
        Response::Outcome(Outcome {
            request_id: made_up.clone(),
            kind: TxnKind::Sale,
            status: TxnStatus::Declined,
            response_code: tallybox_core::code::ResponseCode::parse("51").unwrap(),
            receipt: None,
            balance: None,
        }),
        Response::Frozen {
            request_id: None,
            reason: Some("forged".into()),
        },
        Response::Restart,
        Response::TestSlip,
        Response::Update {
            version: "99.0.0".into(),
            port: 1,
            path: "/forged".into(),
        },
    ]
    .iter()
    .map(|r| encode(r).unwrap())
    .collect()
}

/// A client that answers every request `T1` publishes, first and in clear,
/// with each of `forgeries`; how many requests it answered.
fn stranger(port: u16) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let (req, resp) = (
        format!("tallybox/v1/{STORE}/term/T1/req"),
        format!("tallybox/v1/{STORE}/term/T1/resp"),
    );
    let mut options = MqttOptions::new(format!("stranger-{}", std::process::id()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 256);
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        let forged = forgeries();
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(req.clone(), QoS::AtMostOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == req => {
                    for payload in &forged {
                        let _ = client.try_publish(resp.clone(), QoS::AtMostOnce, false, payload.clone());
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    answered
}

/// A hub on mosquitto and its checkout T1, paired with the owner's code.
fn paired_over_mosquitto() -> (Mosquitto, Hub, Terminal) {
    let broker = Mosquitto::start();
    let hub = Hub::start_with(Some(broker.port), &[]);
    let web = hub.web();
    let t1 = Terminal::start("T1", broker.port);
    t1.wait_ready();
    let (_, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    let code = opened["code"].as_str().unwrap().to_string();
    t1.keys(&format!("D5{code}#"));
    t1.wait_screen("PAIRED", WAIT);
    t1.keys("C");
    t1.wait_ready();
    (broker, hub, t1)
}

#[test]
fn a_stranger_answering_a_paired_checkouts_sales_first_in_clear_changes_nothing() {
    let (broker, hub, mut t1) = paired_over_mosquitto();

    let answered = stranger(broker.port);
    for minor in [120u64, 340, 560, 780, 900] {
        let screen = t1.sale(minor, "approved");
        assert!(screen.contains("APPROVED"), "sale of {minor}: {screen}");
        t1.keys("C");
    }
    assert!(
        answered.load(std::sync::atomic::Ordering::Relaxed) >= 5,
        "the stranger saw the sales go out"
    );
    // Every sale the hub charged printed both its slips.
    assert_eq!(t1.wait_paper(10).len(), 10);
    let rows = hub.transactions("");
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|t| t["status"] == "approved"), "{rows:?}");
    // At rest, well past the check of a clear "not paired": the live hub
    // answered the sealed sign-in, so the checkout never says it.
    std::thread::sleep(Duration::from_secs(6));
    let (screen, _) = t1.screen();
    assert!(
        !screen.contains("NOT PAIRED") && !screen.contains("FROZEN"),
        "{screen}"
    );
    assert!(t1.exited().is_none(), "the forged restart was obeyed");
}

#[test]
fn a_restart_captured_once_and_published_again_retained_is_not_obeyed_again() {
    let (broker, hub, mut t1) = paired_over_mosquitto();
    let web = hub.web();

    // The owner restarts T1 from the page; a stranger records what the hub sent.
    let resp = format!("tallybox/v1/{STORE}/term/T1/resp");
    let heard = tallybox_e2e::mqtt::sniff(broker.port, &resp);
    let asked = |t1: &Terminal| t1.log().matches("the owner asked for a restart").count();
    let (code, body) = web.send("POST", "/api/v1/terminals/T1/restart", json!({}));
    assert_eq!(code, 202, "{body}");
    let obeyed = tallybox_e2e::wait_for(WAIT, || (asked(&t1) == 1).then_some(()));
    assert!(obeyed.is_some(), "T1 did not restart:\n{}", t1.log());
    let captured: Vec<Vec<u8>> = heard.try_iter().collect();
    assert!(!captured.is_empty(), "nothing heard on T1's answers");
    // Its control API is away while the program starts itself again.
    let back = tallybox_e2e::wait_for(WAIT, || {
        let screen = t1.try_call(&json!({"cmd": "screen"})).ok()?;
        screen.to_string().contains("Ready").then_some(())
    });
    assert!(back.is_some(), "T1 did not come back:\n{}", t1.log());

    // The stranger cannot open what it heard; the test can (T1's key), to
    // pick the restart out of it.
    let key = tallybox_platform::sealed_files::read_key(&t1.state_dir().join("hub.key"))
        .unwrap()
        .expect("T1 is paired");
    let restart = captured
        .iter()
        .find(|bytes| {
            tallybox_core::seal::open(&key, tallybox_core::seal::Direction::ToTerminal, "T1", bytes)
                .ok()
                .and_then(|(_, plain)| tallybox_core::protocol::decode_response(&plain).ok())
                == Some(Response::Restart)
        })
        .expect("the hub's restart among what was heard")
        .clone();
    // Published again retained; T1 restarted (as after a power cut) meets it
    // at its first subscription.
    let mut options = MqttOptions::new("replayer", "127.0.0.1", broker.port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 64);
    client
        .publish(resp.clone(), QoS::AtLeastOnce, true, restart)
        .unwrap();
    client.disconnect().unwrap();
    for event in connection.iter() {
        if event.is_err() {
            break;
        }
    }
    t1.restart();
    t1.wait_ready();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(asked(&t1), 1, "obeyed the replay:\n{}", t1.log());
    assert!(t1.log().contains("answer from the hub not taken"), "{}", t1.log());
    assert!(t1.sale(250, "approved").contains("APPROVED"));
}
