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
            reason_zh: None,
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
    let t1 = Terminal::start("T1", broker.port);
    t1.wait_ready();
    t1.pair(&hub);
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

/// Every shape of status and request a stranger can publish at the hub:
/// retained `online` and `offline` statuses for made-up checkouts, broken
/// statuses, and requests that are not JSON, of unknown types, or sign-ins
/// and heartbeats in made-up names.
fn flood(client: &Client, wave: usize) {
    let status = |online| {
        tallybox_core::protocol::Status {
            online,
            version: "9.9.9".into(),
            detail: None,
        }
        .payload()
    };
    let topic = |id: usize, leaf: &str| format!("tallybox/v1/{STORE}/term/F{wave}x{id}/{leaf}");
    for id in 0..300 {
        let shapes: [(&str, bool, Vec<u8>); 6] = [
            ("status", true, status(true)),
            ("status", true, status(false)),
            ("status", false, b"{not json".to_vec()),
            ("req", false, b"\xff\xfe garbage".to_vec()),
            (
                "req",
                false,
                format!(r#"{{"v":1,"type":"sign_in","request_id":"f{wave}-{id}","version":"9"}}"#)
                    .into_bytes(),
            ),
            (
                "req",
                false,
                format!(r#"{{"v":1,"type":"heartbeat","request_id":"h{wave}-{id}"}}"#).into_bytes(),
            ),
        ];
        for (leaf, retain, payload) in shapes {
            client
                .publish(topic(id, leaf), QoS::AtMostOnce, retain, payload)
                .expect("flood publish");
        }
    }
}

#[test]
fn floods_of_statuses_and_requests_do_not_stop_the_hub_or_slow_its_sales() {
    let hub = Hub::start_as_shipped();
    let checkouts: Vec<Terminal> = ["T1", "T2", "T3"]
        .into_iter()
        .map(|id| {
            let t = Terminal::start(id, hub.mqtt);
            t.wait_screen("NOT PAIRED", WAIT);
            t.pair(&hub);
            t
        })
        .collect();

    let mut options = MqttOptions::new("flooder", "127.0.0.1", hub.mqtt);
    options.set_credentials("flooder", "");
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 512);
    std::thread::spawn(move || for _ in connection.iter() {});
    let flooded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = flooded.clone();
    let flooding = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut wave = 0;
        while started.elapsed() < Duration::from_secs(6) {
            flood(&client, wave);
            wave += 1;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        wave
    });

    // The three checkouts sell back to back while the flood lasts, each sale
    // timed from the first key to the result on the screen.
    let took: Vec<Duration> = std::thread::scope(|s| {
        let sellers: Vec<_> = checkouts
            .iter()
            .map(|t| {
                let flooded = &flooded;
                s.spawn(move || {
                    let mut took = Vec::new();
                    // At most 60 each: the 180 fit one page of the receipts API.
                    while !flooded.load(std::sync::atomic::Ordering::Relaxed) && took.len() < 60 {
                        let started = std::time::Instant::now();
                        let screen = t.sale(100 + took.len() as u64, "approved");
                        assert!(screen.contains("APPROVED"), "{screen}");
                        took.push(started.elapsed());
                        t.keys("C");
                        t.wait_ready();
                    }
                    took
                })
            })
            .collect();
        sellers.into_iter().flat_map(|s| s.join().unwrap()).collect()
    });
    let waves = flooding.join().unwrap();
    assert!(waves >= 2, "the flood went out ({waves} waves of 1 800 messages)");
    let mut sorted = took.clone();
    sorted.sort();
    let p99 = sorted[sorted.len() * 99 / 100];
    eprintln!(
        "{} sales under {waves} waves of the flood; p99 {p99:?}",
        took.len()
    );
    assert!(
        p99 < Duration::from_secs(1),
        "sale p99 {p99:?} under the flood: {took:?}"
    );

    // Every sale is stored once and printed; the made-up checkouts left no
    // row; the hub still serves and says so.
    let approved = hub.transactions("status=approved&limit=200");
    assert_eq!(
        approved.len(),
        took.len(),
        "{}",
        hub.log()
            .lines()
            .filter(|l| l.contains("gate"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let printed: usize = checkouts.iter().map(|t| t.paper().len()).sum();
    assert_eq!(printed, 2 * took.len(), "both slips of every sale");
    let (_, terminals) = hub.get("/api/v1/terminals");
    let ids: Vec<&str> = terminals["terminals"]
        .as_array()
        .expect("terminals")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["T1", "T2", "T3"]);
    assert!(checkouts[0].sale(999, "approved").contains("APPROVED"));
    let (code, health) = hub.get_public("/healthz");
    assert_eq!(
        (code, &health["broker_connected"]),
        (200, &json!(true)),
        "{health}"
    );
    let log = hub.log();
    assert!(
        log.lines().filter(|l| l.contains("10 s")).count() <= 10,
        "the flood's log lines are rate-limited:\n{log}"
    );
}

/// An MQTT 3.1.1 CONNECT for `id`, with a user name and an empty password.
fn connect_packet(id: &str) -> Vec<u8> {
    use tallybox_e2e::mqtt::wire;
    let variable = [wire::string("MQTT"), vec![4, 0x80 | 0x40 | 0x02, 0, 30]].concat();
    let payload = [wire::string(id), wire::string("stranger"), wire::string("")].concat();
    wire::packet(0x10, &[variable, payload].concat())
}

/// A TCP connection to `port` from the loopback address `from` (the whole
/// of 127/8 is loopback on Linux: a second machine on the LAN).
async fn from(from: [u8; 4], port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
    socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("the broker's port accepts TCP")
}

/// Sends `packet` and reads the CONNACK's return code, if one comes.
async fn knock(stream: &mut tokio::net::TcpStream, packet: &[u8]) -> Option<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(packet).await.ok()?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut ack))
        .await
        .ok()?
        .ok()?;
    (ack[0] == 0x20).then_some(ack[3])
}

#[test]
fn hostile_connects_leave_the_broker_open_to_a_restarting_checkout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::start_as_shipped();
    let mut t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_screen("NOT PAIRED", WAIT);
    t1.pair(&hub);
    let port = hub.mqtt;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let attacker = [127, 0, 0, 2];

    let (mut held, half_sent) = runtime.block_on(async {
        // Client ids with topic characters, or none, each twice.
        for id in ["a/b", "x+y", "#", "$SYS", "", "a b"] {
            for _ in 0..2 {
                let mut s = from(attacker, port).await;
                let code = knock(&mut s, &connect_packet(id)).await;
                assert!(code != Some(0), "{id:?} was let in");
            }
        }
        // T1's client id without its password, twice.
        for _ in 0..2 {
            let mut s = from(attacker, port).await;
            assert_ne!(knock(&mut s, &connect_packet("tallybox-term-T1")).await, Some(0));
        }
        // One sound id twice, both held; then as many connections as the
        // attacker can open, each logged in and held.
        let mut held = Vec::new();
        for n in 0..600 {
            let id = if n < 2 {
                "twice".to_string()
            } else {
                format!("crowd-{n}")
            };
            let mut s = from(attacker, port).await;
            if knock(&mut s, &connect_packet(&id)).await == Some(0) {
                held.push(s);
            }
        }
        // And connections that never finish their CONNECT.
        let mut half_sent = Vec::new();
        for _ in 0..100 {
            let mut s = from([127, 0, 0, 3], port).await;
            let _ = s.write_all(&connect_packet("slow")[..5]).await;
            half_sent.push(s);
        }
        (held, half_sent)
    });
    // (The first of the two "twice" was closed when the second took its id.)
    let open = runtime.block_on(async {
        let mut open = 0;
        for s in &mut held {
            let mut buf = [0u8; 8];
            if tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf))
                .await
                .is_err()
            {
                open += 1;
            }
        }
        open
    });
    assert!(open <= 64, "one address kept {open} connections");

    // Meanwhile the paired checkout restarts (a power cut) and gets back in.
    let restarted = std::time::Instant::now();
    t1.restart();
    t1.wait_ready();
    assert!(t1.sale(450, "approved").contains("APPROVED"));
    eprintln!("T1 back in and sold {:?} after its restart", restarted.elapsed());
    // Someone new, from another address, is still let in.
    runtime.block_on(async {
        let mut s = from([127, 0, 0, 4], port).await;
        assert_eq!(knock(&mut s, &connect_packet("newcomer")).await, Some(0));
        // The half-sent CONNECTs were closed after a few seconds.
        tokio::time::sleep(Duration::from_secs(6)).await;
        for mut s in half_sent {
            let mut buf = [0u8; 8];
            let read = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "a half-sent CONNECT still open: {read:?}"
            );
        }
    });
    drop(held);
    assert!(
        hub.log().matches("MQTT gate turned clients away").count() <= 3,
        "the gate's refusals are logged at most every 10 s"
    );
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the hub runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// An MQTT PUBLISH, QoS 0, retained.
fn retained_publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    use tallybox_e2e::mqtt::wire;
    wire::packet(0x31, &[wire::string(topic), payload.to_vec()].concat())
}

#[test]
fn retained_messages_from_strangers_cannot_fill_the_hubs_memory() {
    use tokio::io::AsyncWriteExt;
    for hub in [Hub::start_as_shipped(), Hub::start()] {
        let pid = hub.pid().expect("the hub runs");
        let port = hub.mqtt;
        let before = rss_kib(pid);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let big = vec![b'x'; 200 * 1024];
            for n in 0..200 {
                let mut s = from([127, 0, 0, 2], port).await;
                if knock(&mut s, &connect_packet(&format!("hoarder-{n}"))).await != Some(0) {
                    continue;
                }
                // On a terminal's status topic and off the protocol's topics.
                for topic in [
                    format!("tallybox/v1/{STORE}/term/H{n}/status"),
                    format!("hoard/{n}"),
                ] {
                    let _ = s.write_all(&retained_publish(&topic, &big)).await;
                }
                let _ = s.flush().await;
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        let grown = rss_kib(pid).saturating_sub(before);
        // 80 MB was sent to be kept; none of it may stay.
        assert!(grown < 16 * 1024, "the hub grew by {grown} KiB");
        // A late subscriber hears no retained message on those topics.
        let heard = tallybox_e2e::mqtt::sniff(port, &format!("tallybox/v1/{STORE}/term/+/status"));
        let also = tallybox_e2e::mqtt::sniff(port, "hoard/#");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(heard.try_iter().filter(|m| m.len() > 1024).count(), 0);
        assert_eq!(also.try_iter().count(), 0);
        // And the hub still answers: a sale, or on the hub as shipped, that
        // this checkout must pair first.
        let raw = tallybox_e2e::mqtt::RawClient::connect_as_checkout(port, STORE, "T9");
        let card = tallybox_e2e::test_card("approved");
        raw.publish("T9", &tallybox_e2e::mqtt::sale("hoard-after-1", &card, 300));
        let answer = raw.answer(None, WAIT).expect("the hub answers");
        assert!(
            answer["status"] == "approved" || answer["code"] == "not_paired",
            "{answer}"
        );
    }
}

#[test]
fn three_hundred_forged_retained_statuses_do_not_wedge_the_hubs_link() {
    // The finding: a burst of forged retained `online` statuses made the
    // hub's receive loop wait on a publish queue only that loop drains.
    let hub = Hub::start();
    let mut options = MqttOptions::new("forger", "127.0.0.1", hub.mqtt);
    options.set_credentials("forger", "");
    let (client, mut connection) = Client::new(options, 512);
    std::thread::spawn(move || for _ in connection.iter() {});
    let online = tallybox_core::protocol::Status {
        online: true,
        version: "9.9.9".into(),
        detail: None,
    }
    .payload();
    for n in 0..300 {
        client
            .publish(
                format!("tallybox/v1/{STORE}/term/F{n}/status"),
                QoS::AtLeastOnce,
                true,
                online.clone(),
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let raw = tallybox_e2e::mqtt::RawClient::connect(hub.mqtt, STORE, "T9");
    let card = tallybox_e2e::test_card("approved");
    for n in 0..5 {
        let started = std::time::Instant::now();
        let sold = raw.request(
            "T9",
            &tallybox_e2e::mqtt::sale(&format!("wedge-{n:06}"), &card, 100 + n),
            WAIT,
        );
        assert_eq!(sold.expect("the hub answers")["status"], "approved");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let (code, health) = hub.get_public("/healthz");
    assert_eq!(
        (code, &health["broker_connected"]),
        (200, &json!(true)),
        "{health}"
    );
    // The made-up checkouts left no row: only the one that sold.
    let (_, terminals) = hub.get("/api/v1/terminals");
    let ids: Vec<&str> = terminals["terminals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["T9"], "{terminals}");
}

#[test]
fn a_stranger_trying_pairing_codes_does_not_stop_the_cashier_pairing_and_the_owner_sees_it() {
    let hub = Hub::start_as_shipped();
    let web = hub.web();
    let t1 = Terminal::start("T1", hub.mqtt);
    // The checkout shows the id the owner names.
    t1.wait_screen("NOT PAIRED T1", WAIT);
    let (code, opened) = web.send("POST", "/api/v1/pairing", json!({"terminal": "T1"}));
    assert_eq!(code, 201, "{opened}");
    let pairing_code = opened["code"].as_str().unwrap().to_string();

    // A stranger sends `pair` every 0.3 s: in made-up checkouts' names (as
    // themselves), and in T1's name from its own connection.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let port = hub.mqtt;
    let jammer = std::thread::spawn(move || {
        let mut n = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let id = format!("J{n}");
            let raw = tallybox_e2e::mqtt::RawClient::connect_as_checkout(port, STORE, &id);
            let (_, guess) = tallybox_core::seal::pair_start("12345678", &id, STORE).unwrap();
            let request = |rid: String| json!({"v": 1, "type": "pair", "request_id": rid, "message": guess});
            raw.publish(&id, &request(format!("jam-{n:08}")));
            raw.publish("T1", &request(format!("jam-t1-{n:08}")));
            std::thread::sleep(Duration::from_millis(300));
            n += 1;
        }
        n
    });
    std::thread::sleep(Duration::from_secs(2));
    // The cashier keys the code meanwhile: it pairs.
    t1.keys(&format!("D5{pairing_code}#"));
    t1.wait_screen("Messages are sealed", WAIT);
    t1.keys("C");
    t1.wait_ready();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tried = jammer.join().unwrap();
    assert!(t1.sale(650, "approved").contains("APPROVED"));

    let (_, pairing) = web.get("/api/v1/pairing");
    assert_eq!(pairing["paired"], "T1", "{pairing}");
    assert_eq!(pairing["tries_left"], 2, "only T1's try counted: {pairing}");
    assert!(
        pairing["others"].as_u64().unwrap() >= 3,
        "{pairing} after {tried} tries"
    );
    // The Troubleshooting page says someone tried.
    let (_, checks) = web.get("/api/v1/checks");
    let jammed = tallybox_e2e::web::find_check(&checks, "hub.pairing");
    assert_eq!(jammed["status"], "warn", "{jammed}");
    assert!(
        jammed["evidence"].as_str().unwrap().contains("other checkouts"),
        "{jammed}"
    );
}

#[test]
fn a_newline_sent_by_a_stranger_cannot_forge_a_line_in_the_hubs_log() {
    let hub = Hub::start();
    let raw = tallybox_e2e::mqtt::RawClient::connect(hub.mqtt, STORE, "T9");
    let forged = "2026-12-02T10:00:00.000000Z ERROR tallybox: the acquirer approved everything";
    let sign_in = json!({"v": 1, "type": "sign_in", "request_id": "forge-0000001", "version": format!("1.0\n{forged}")});
    raw.request("T9", &sign_in, WAIT)
        .expect("the hub answers the sign-in");
    let status = tallybox_core::protocol::Status {
        online: true,
        version: format!("1.0\n{forged}"),
        detail: None,
    };
    let mut options = MqttOptions::new("forger", "127.0.0.1", hub.mqtt);
    options.set_credentials("forger", "");
    let (client, mut connection) = Client::new(options, 16);
    std::thread::spawn(move || for _ in connection.iter() {});
    client
        .publish(
            format!("tallybox/v1/{STORE}/term/T9/status"),
            QoS::AtLeastOnce,
            false,
            status.payload(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let log = hub.log();
    assert!(log.contains("terminal signed in"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "a forged line in the log:\n{log}"
    );
}

#[test]
fn a_client_that_sends_on_before_its_connack_loses_nothing_at_the_gate() {
    // MQTT lets a client send packets right after CONNECT; the gate reads the
    // CONNECT first and must pass on what came in the same TCP segment.
    use std::io::{Read, Write};
    use tallybox_e2e::mqtt::wire;
    let hub = Hub::start();
    let subscribe = wire::packet(
        0x82,
        &[
            vec![0, 7],
            wire::string(&format!("tallybox/v1/{STORE}/term/T9/resp")),
            vec![0],
        ]
        .concat(),
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", hub.mqtt)).unwrap();
    stream
        .write_all(&[connect_packet("eager"), subscribe].concat())
        .unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut answers = [0u8; 9];
    stream.read_exact(&mut answers).expect("CONNACK and SUBACK");
    assert_eq!(answers, [0x20, 2, 0, 0, 0x90, 3, 0, 7, 0]);
}

/// Whether the owner's page shows checkout `id` online.
fn shown_online(hub: &Hub, id: &str) -> bool {
    let (_, terminals) = hub.get("/api/v1/terminals");
    terminals["terminals"]
        .as_array()
        .expect("terminals")
        .iter()
        .any(|t| t["id"] == id && t["online"] == json!(true))
}

#[test]
fn forged_statuses_for_a_paired_checkout_neither_take_it_off_the_page_nor_bring_a_dead_one_back() {
    let (broker, hub, mut t1) = paired_over_mosquitto();
    assert!(
        tallybox_e2e::wait_for(WAIT, || shown_online(&hub, "T1").then_some(())).is_some(),
        "T1 never shown online"
    );
    let sold = t1.sale(1_250, "approved");
    assert!(sold.contains("APPROVED"), "{sold}");
    t1.keys("C");
    let txn = hub.transactions("")[0]["id"].as_i64().expect("the sale's id");

    // A stranger on the broker says, over and over, that T1 went offline:
    // retained, in clear, and as a last will it leaves behind.
    let status = format!("tallybox/v1/{STORE}/term/T1/status");
    let offline = br#"{"v":1,"type":"status","online":false,"version":"0.1.0","detail":"stopped"}"#.to_vec();
    let online = br#"{"v":1,"type":"status","online":true,"version":"0.1.0"}"#.to_vec();
    let mut options = MqttOptions::new("stranger-status", "127.0.0.1", broker.port);
    options.set_last_will(rumqttc::LastWill::new(
        &status,
        offline.clone(),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut connection) = Client::new(options, 64);
    std::thread::spawn(move || for _ in connection.iter() {});
    let started = std::time::Instant::now();
    let mut looks = 0;
    while started.elapsed() < Duration::from_secs(8) {
        client
            .publish(&status, QoS::AtLeastOnce, true, offline.clone())
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            shown_online(&hub, "T1"),
            "T1 shown offline after a forged status; hub log:\n{}\nT1 log:\n{}",
            hub.log(),
            t1.log()
        );
        looks += 1;
    }
    // The stranger leaves without a goodbye: its last will goes out too.
    drop(client);
    std::thread::sleep(tallybox::link::THERE_WITHIN + Duration::from_secs(1));
    assert!(looks >= 20 && shown_online(&hub, "T1"), "T1 shown offline");
    // The owner's reprint still reaches T1's printer.
    let (code, sent) = hub.web().send(
        "POST",
        &format!("/api/v1/transactions/{txn}/reprint"),
        json!({"terminal": "T1"}),
    );
    assert_eq!(code, 202, "{sent}");
    assert!(t1.wait_paper(3).len() >= 3, "the reprint was not printed");
    assert!(hub.log().contains("forged, ignored"), "the hub did not say so");

    // T1 dies for real: the page says so within seconds...
    t1.kill();
    assert!(
        tallybox_e2e::wait_for(WAIT, || (!shown_online(&hub, "T1")).then_some(())).is_some(),
        "a dead T1 still shown online"
    );
    // ...and a stranger's "online" in its name does not bring it back.
    let (client, mut connection) =
        Client::new(MqttOptions::new("stranger-online", "127.0.0.1", broker.port), 64);
    std::thread::spawn(move || for _ in connection.iter() {});
    for _ in 0..8 {
        client
            .publish(&status, QoS::AtLeastOnce, true, online.clone())
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !shown_online(&hub, "T1"),
            "a dead T1 shown online by a forged status"
        );
    }
}
