//! A chain of shops: real hubs (`tallybox serve`, joined with head office's
//! one-time code) feeding `tallybox-hq` through mosquitto into a
//! PostgreSQL server the test starts from Debian's packages. Sales are made
//! by checkouts speaking the protocol (the bench's load clients); what head
//! office holds is read from PostgreSQL and its page's API and compared
//! with each hub's own SQLite file.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use rumqttc::{Client, MqttOptions, QoS};
use serde_json::{json, Value};
use tallybox::chain::wire::{self, Batch, ChainTopics, Entry};
use tallybox_e2e::browser::Browser;
use tallybox_e2e::chain::{Hq, Postgres, HQ_ACCOUNT};
use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, Mosquitto, STORE};
use tallybox_e2e::proxy::Proxy;
use tallybox_e2e::{test_card, wait_for};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `count` approved sales on `hub` from four checkouts.
fn sell(rt: &tokio::runtime::Runtime, hub: &Hub, count: u64) {
    rt.block_on(tallybox_e2e::bench::load::sales(hub.mqtt, STORE, 4, count));
}

/// What the hub's own database holds: outbox entries and transactions.
fn at_hub(hub: &Hub) -> (i64, i64) {
    let db = rusqlite::Connection::open_with_flags(
        hub.data_dir().join("tallybox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the hub's database");
    let one = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql);
    (
        one("SELECT coalesce(max(seq), 0) FROM outbox"),
        one("SELECT count(*) FROM transactions"),
    )
}

/// Waits until head office holds every entry and transaction `hub` has, and
/// checks each entry is held once, numbered without a gap.
fn caught_up(pg: &Postgres, hub: &Hub, store: &str, within: Duration) {
    let done = wait_for(within, || {
        let (entries, txns) = at_hub(hub);
        let held = pg.number(&format!(
            "SELECT count(*) FROM entries WHERE store_id = '{store}'"
        ));
        let rows = pg.number(&format!("SELECT count(*) FROM txns WHERE store_id = '{store}'"));
        (entries > 0 && held == entries && rows == txns).then_some(())
    });
    let (entries, txns) = at_hub(hub);
    assert!(
        done.is_some(),
        "store {store}: the hub has {entries} entries and {txns} transactions, head office {}",
        pg.query(&format!(
            "SELECT count(*), max(seq), (SELECT count(*) FROM txns WHERE store_id = '{store}') FROM entries WHERE store_id = '{store}'"
        ))
    );
    assert_eq!(
        pg.number(&format!(
            "SELECT max(seq) FROM entries WHERE store_id = '{store}'"
        )),
        entries,
        "numbered 1..n, each once"
    );
    assert_eq!(
        pg.number(&format!(
            "SELECT count(*) FROM txns WHERE store_id = '{store}' AND status <> 'approved'"
        )),
        0,
        "every sale reached head office in its final state"
    );
}

#[test]
fn three_shops_appear_at_head_office_and_one_cut_off_for_10_000_sales_catches_up_once() {
    let rt = runtime();
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    // Two head-office instances on one database: each entry is kept once.
    let hq = Hq::start(&pg, broker.port, &["hq-a", "hq-b"]);
    // S1 reaches the broker through a line the test can take down.
    let line = Proxy::start(broker.port);
    let hubs: Vec<(&str, Hub)> = [("S1", line.port), ("S2", broker.port), ("S3", broker.port)]
        .into_iter()
        .map(|(store, port)| {
            // S3's owner set its own same-card limit.
            let own = if store == "S3" {
                "[fraud]\nsame_card_max = 100000\n"
            } else {
                ""
            };
            (store, Hub::start_in_chain(&hq.enrol(store, port), own))
        })
        .collect();
    for (_, hub) in &hubs {
        sell(&rt, hub, 20);
    }
    for (store, hub) in &hubs {
        caught_up(&pg, hub, store, Duration::from_secs(30));
    }
    // The page shows each store's day.
    let cookie = hq.sign_in(1);
    let (status, today) = hq.get(1, "/api/stores", &cookie);
    assert_eq!(status, 200, "{today}");
    let stores = today["stores"].as_array().expect("stores");
    assert_eq!(stores.len(), 3, "{today}");
    for s in stores {
        assert_eq!(
            (s["sales"].as_i64(), s["takings"].as_i64()),
            (Some(20), Some(20 * 1250)),
            "{s}"
        );
        assert_eq!(
            (s["enrolled"].as_bool(), s["silent"].as_bool()),
            (Some(true), Some(false)),
            "{s}"
        );
        assert!(s["broken"].is_null(), "{s}");
    }
    let (status, _) = hq.get(0, "/api/stores", "tallybox_hq_session=0000");
    assert_eq!(status, 401, "the page wants a session");

    // The page as head office reads it on a phone, in English and Chinese.
    rt.block_on(async {
        let wait = Duration::from_secs(10);
        let b = Browser::start().await;
        b.goto(&format!("{}/", hq.url(1))).await;
        b.wait_text("#signin", "Sign in", wait).await;
        b.fill("#login [name=name]", HQ_ACCOUNT.0).await;
        b.fill("#login [name=password]", "not-the-password").await;
        b.click("#login button").await;
        b.wait_text("#error", "Wrong name or password", wait).await;
        b.fill("#login [name=password]", HQ_ACCOUNT.1).await;
        b.click("#login button").await;
        let stores = b.wait_text("#stores", "S3", wait).await;
        // The load's checkouts send no status: offline, as the shop's own page says.
        assert!(
            stores.contains("¥250.00")
                && stores.contains("Attention")
                && stores.contains("0 of 4 checkouts online"),
            "{stores}"
        );
        b.wait_text("#count", "60 receipts", wait).await;
        b.click("#report button").await;
        b.wait_text("#rows", "S2", wait).await;
        let violations = b.accessibility_violations().await;
        assert!(violations.is_empty(), "{violations:?}");
        b.screenshot("hq-en").await;
        b.click("#lang").await;
        b.wait_text("h1", "总部", wait).await;
        b.wait_text("#stores", "收银台在线 0/4", wait).await;
        b.wait_text("#documents", "还没有下发规则", wait).await;
        b.wait_text("#count", "60 笔", wait).await;
        b.screenshot("hq-zh").await;
        b.close().await;
    });

    // S1's line is down for 10 000 sales; the others go on.
    line.down(true);
    sell(&rt, &hubs[0].1, 10_000);
    sell(&rt, &hubs[1].1, 100);
    caught_up(&pg, &hubs[1].1, "S2", Duration::from_secs(30));
    assert_eq!(
        pg.number("SELECT count(*) FROM txns WHERE store_id = 'S1'"),
        20,
        "nothing of S1 arrives while its line is down"
    );
    let (waiting, _) = at_hub(&hubs[0].1);
    assert!(
        waiting >= 20_040,
        "two entries a sale wait in the outbox: {waiting}"
    );
    line.down(false);
    let started = std::time::Instant::now();
    caught_up(&pg, &hubs[0].1, "S1", Duration::from_secs(120));
    println!(
        "S1 caught up {} entries in {:.1} s",
        waiting - 40,
        started.elapsed().as_secs_f64()
    );
    println!("{}", hq.log(0));
    let (_, report) = hq.get(0, "/api/report?by=store", &cookie);
    let s1 = report["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["key"] == "S1"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (s1["sales"].as_i64(), s1["net"].as_i64()),
        (Some(10_020), Some(10_020 * 1250)),
        "{report}"
    );
    let csv = hq.get_text(0, "/api/receipts.csv?store=S3&limit=1000", &cookie);
    assert_eq!(csv.lines().count(), 1 + 20, "a header and S3's 20 sales");
    assert_eq!(
        pg.number("SELECT count(*) FROM alerts"),
        0,
        "{}",
        pg.query("SELECT what FROM alerts")
    );

    // Head office sets a chain-wide rule: the same card at most 3 times in
    // ten minutes, then refused. Every store takes it and says so; S3
    // keeps its owner's own limit.
    hq.publish("fraud_rules", "same_card_max = 3\nsame_card_action = \"block\"\n");
    let kept: Vec<Value> = hq
        .answers(&cookie, "fraud_rules", 3, 1)
        .iter()
        .map(|s| s["kept_local"].clone())
        .collect();
    assert_eq!(kept, [json!([]), json!([]), json!(["same_card_max"])]);
    let again = |hub: &Hub, id: &str| {
        let raw = RawClient::connect(hub.mqtt, STORE, "T8");
        let request = sale(id, &test_card("approved"), 999);
        raw.request("T8", &request, Duration::from_secs(10))
            .expect("an answer")
    };
    let refused = again(&hubs[1].1, "rule-s2-000001");
    assert_ne!(
        refused["status"], "approved",
        "S2 refuses the card's 101st sale: {refused}"
    );
    let allowed = again(&hubs[2].1, "rule-s3-000001");
    assert_eq!(
        allowed["status"], "approved",
        "S3's own limit is 100 000: {allowed}"
    );

    // Head office sets every shop's slip footer and lets managers lift a
    // freeze; S3's owner had written a footer of its own on S3's page.
    let (status, body) = hubs[2].1.web().send(
        "PUT",
        "/api/v1/settings",
        json!({"store_name": "Shop Three", "slip_footer": ["No returns at S3"]}),
    );
    assert!(status < 300, "{status} {body}");
    let footer = "Thank you for shopping with us";
    hq.publish(
        "shop_settings",
        &format!("slip_footer = [\"{footer}\"]\nmanagers_unfreeze = true\n"),
    );
    let stores = hq.answers(&cookie, "shop_settings", 3, 1);
    let kept: Vec<&Value> = stores.iter().map(|s| &s["kept_local"]).collect();
    assert_eq!(kept, [&json!([]), &json!([]), &json!(["slip_footer"])]);
    let settings = |hub: &Hub| {
        let (_, s) = hub.get("/api/v1/settings");
        (s["slip_footer"].clone(), s["managers_unfreeze"].clone())
    };
    assert_eq!(settings(&hubs[0].1), (json!([footer]), json!(true)));
    assert_eq!(
        settings(&hubs[2].1),
        (json!(["No returns at S3"]), json!(true)),
        "S3's owner keeps the footer they wrote"
    );
    // A setting that would stop a shop selling is refused by it, and said
    // why: no shop here has a cashier to sign on.
    hq.publish("shop_settings", "cashier_sign_on = true\n");
    for s in hq.answers(&cookie, "shop_settings", 3, 2) {
        let why = s["refused"].as_str().unwrap_or_default();
        assert!(why.contains("no cashier"), "{s}");
    }
    assert_eq!(settings(&hubs[0].1), (json!([footer]), json!(true)));

    // A restarted hub keeps the rule and the settings it took.
    let mut s2 = hubs.into_iter().nth(1).unwrap().1;
    s2.restart();
    let refused = again(&s2, "rule-s2-000002");
    assert_ne!(refused["status"], "approved", "after a restart: {refused}");
    assert_eq!(settings(&s2), (json!([footer]), json!(true)));
    let (_, shop) = s2.get("/api/v1/settings");
    assert_eq!(shop["cashier_sign_on"], false, "{shop}");
}

#[test]
fn head_office_its_broker_and_a_hub_killed_mid_stream_lose_nothing_and_repeat_nothing() {
    let rt = runtime();
    let pg = Postgres::start();
    let mut broker = Mosquitto::start();
    let mut hq = Hq::start(&pg, broker.port, &["hq-a"]);
    let mut hub = Hub::start_in_chain(&hq.enrol("S1", broker.port), "");
    sell(&rt, &hub, 10);
    caught_up(&pg, &hub, "S1", Duration::from_secs(30));

    // Head office killed while the shop sells.
    let selling = rt.spawn(tallybox_e2e::bench::load::sales(hub.mqtt, STORE, 4, 2_000));
    std::thread::sleep(Duration::from_millis(400));
    hq.kill(0);
    std::thread::sleep(Duration::from_secs(1));
    hq.restart(0);
    rt.block_on(selling).expect("sales");
    caught_up(&pg, &hub, "S1", Duration::from_secs(60));

    // The broker killed while the shop sells.
    let selling = rt.spawn(tallybox_e2e::bench::load::sales(hub.mqtt, STORE, 4, 2_000));
    std::thread::sleep(Duration::from_millis(400));
    broker.kill();
    std::thread::sleep(Duration::from_secs(1));
    broker.restart();
    rt.block_on(selling).expect("sales");
    caught_up(&pg, &hub, "S1", Duration::from_secs(60));

    // The hub killed while it sends what it kept during an outage.
    broker.kill();
    sell(&rt, &hub, 2_000);
    broker.restart();
    std::thread::sleep(Duration::from_millis(300));
    hub.kill();
    hub.start_again();
    caught_up(&pg, &hub, "S1", Duration::from_secs(60));
    assert_eq!(
        pg.number("SELECT count(*) FROM txns WHERE store_id = 'S1'"),
        6_010
    );
    assert_eq!(
        pg.number("SELECT count(*) FROM alerts"),
        0,
        "{}",
        pg.query("SELECT what FROM alerts")
    );
}

/// Publishes `payload` on `topic` of the broker on `port`, as anyone on it may.
fn publish(port: u16, topic: &str, payload: Vec<u8>) {
    let (client, mut connection) = Client::new(MqttOptions::new("intruder", "127.0.0.1", port), 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .expect("publish");
    for event in connection.iter().take(20) {
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = event {
            break;
        }
    }
}

#[test]
fn a_message_forged_in_a_stores_name_and_a_stolen_or_wrong_code_are_refused() {
    let rt = runtime();
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    let hq = Hq::start(&pg, broker.port, &["hq-a"]);
    let code = hq.enrol("S1", broker.port);
    let hub = Hub::start_in_chain(&code, "");
    sell(&rt, &hub, 5);
    caught_up(&pg, &hub, "S1", Duration::from_secs(30));
    let held = pg.number("SELECT count(*) FROM entries");

    // The next entry, well chained, but signed by another key than S1's.
    let last: Vec<u8> = hex::decode(
        pg.query("SELECT encode(hash, 'hex') FROM entries WHERE store_id = 'S1' ORDER BY seq DESC LIMIT 1"),
    )
    .unwrap();
    let prev: [u8; 32] = last.try_into().unwrap();
    let seq = held as u64 + 1;
    let body = r#"{"id":999,"terminal_id":"T1","kind":"refund","status":"approved","amount":500000,"currency":"CNY","local_time":"2026-12-05 10:00:00","created_at":"2026-12-05T02:00:00Z"}"#;
    let at = "2026-12-05T02:00:00Z";
    let forged = Batch {
        store: "S1".into(),
        entries: vec![Entry {
            seq,
            kind: "txn".into(),
            at: at.into(),
            body: body.into(),
            hash: hex::encode(wire::entry_hash(&prev, seq, "txn", at, body)),
        }],
    };
    let thief = SigningKey::from_bytes(&[42; 32]);
    publish(
        broker.port,
        &ChainTopics::new("S1").outbox,
        wire::seal(&forged, &thief),
    );
    // The code again, with another key (someone who read it over a shoulder).
    let enrol = wire::Enrol {
        store: "S1".into(),
        key: hex::encode(thief.verifying_key().to_bytes()),
        proof: "00".repeat(32),
    };
    publish(
        broker.port,
        &ChainTopics::new("S1").enrol,
        wire::seal(&enrol, &thief),
    );
    let alerts = wait_for(Duration::from_secs(10), || {
        (pg.number("SELECT count(*) FROM alerts WHERE store_id = 'S1'") >= 2).then_some(())
    });
    assert!(
        alerts.is_some(),
        "alerts: {}",
        pg.query("SELECT what FROM alerts")
    );
    let said = pg.query("SELECT what FROM alerts ORDER BY id");
    assert!(said.contains("signature does not verify"), "{said}");
    assert!(said.contains("enrolled with another key"), "{said}");
    assert_eq!(
        pg.number("SELECT count(*) FROM txns WHERE id = 999"),
        0,
        "the forged refund is not kept"
    );

    // The real store goes on, its chain whole.
    sell(&rt, &hub, 5);
    caught_up(&pg, &hub, "S1", Duration::from_secs(30));
    assert_eq!(pg.query("SELECT coalesce(broken, '') FROM stores"), "");

    // A hub put back from an old backup writes other entries under numbers
    // head office holds: its history forked, which stops its intake.
    let chain: Value =
        serde_json::from_slice(&std::fs::read(hub.data_dir().join("chain.json")).unwrap()).unwrap();
    let key = wire::signing_key(chain["key"].as_str().unwrap()).unwrap();
    let other = r#"{"id":1,"terminal_id":"T1","kind":"sale","status":"pending","amount":1,"currency":"CNY","local_time":"2026-12-05 10:00:00","created_at":"2026-12-05T02:00:00Z"}"#;
    let forked = Batch {
        store: "S1".into(),
        entries: vec![Entry {
            seq: 1,
            kind: "txn".into(),
            at: at.into(),
            body: other.into(),
            hash: hex::encode(wire::entry_hash(&wire::GENESIS, 1, "txn", at, other)),
        }],
    };
    publish(
        broker.port,
        &ChainTopics::new("S1").outbox,
        wire::seal(&forked, &key),
    );
    let stopped = wait_for(Duration::from_secs(10), || {
        let broken = pg.query("SELECT coalesce(broken, '') FROM stores WHERE store_id = 'S1'");
        broken.contains("forked").then_some(broken)
    });
    assert!(stopped.is_some(), "{}", pg.query("SELECT what FROM alerts"));
    let held = pg.number("SELECT count(*) FROM entries");
    sell(&rt, &hub, 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pg.number("SELECT count(*) FROM entries"),
        held,
        "a forked store's intake stays stopped"
    );

    // Guessing head office's password locks the account.
    for _ in 0..5 {
        assert_eq!(hq.sign_in_status(0, HQ_ACCOUNT.0, "not-the-password"), 401);
    }
    assert_eq!(
        hq.sign_in_status(0, HQ_ACCOUNT.0, HQ_ACCOUNT.1),
        429,
        "locked for 30 s"
    );

    // A store revoked (a stolen hub) is refused from then on.
    hq.revoke("S1");
    let before = pg.number("SELECT count(*) FROM entries");
    sell(&rt, &hub, 5);
    let refused = wait_for(Duration::from_secs(15), || {
        pg.query("SELECT what FROM alerts")
            .contains("not enrolled (or was revoked)")
            .then_some(())
    });
    assert!(refused.is_some(), "{}", pg.query("SELECT what FROM alerts"));
    assert_eq!(pg.number("SELECT count(*) FROM entries"), before);
}

/// Entries chained as a hub's outbox chains them, numbered from 1.
fn chained(entries: &[(&str, Value)]) -> Vec<Entry> {
    let at = "2026-12-03T01:00:00Z";
    let mut prev = wire::GENESIS;
    entries
        .iter()
        .zip(1u64..)
        .map(|((kind, body), seq)| {
            let body = body.to_string();
            let hash = wire::entry_hash(&prev, seq, kind, at, &body);
            prev = hash;
            Entry {
                seq,
                kind: kind.to_string(),
                at: at.into(),
                body,
                hash: hex::encode(hash),
            }
        })
        .collect()
}

fn txn(id: i64, kind: &str, amount: i64, local_time: &str) -> (&'static str, Value) {
    (
        "txn",
        json!({"id": id, "terminal_id": "T1", "kind": kind, "status": "approved", "amount": amount,
               "currency": "CNY", "local_time": local_time, "created_at": "2026-12-01T01:00:00Z"}),
    )
}

fn day(day: &str, sales: i64, sales_minor: i64, refunds_minor: i64) -> (&'static str, Value) {
    (
        "day",
        json!({"day": day, "totals": {"sales": sales, "sales_minor": sales_minor, "voids": 0, "voids_minor": 0,
               "refunds": 1, "refunds_minor": refunds_minor, "net_minor": sales_minor - refunds_minor, "declined": 0},
               "by_tender": []}),
    )
}

#[test]
fn what_is_wrong_at_each_shop_and_a_day_that_does_not_add_up_show_at_head_office() {
    let rt = runtime();
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    let hq = Hq::start(&pg, broker.port, &["hq-a"]);
    let hub = Hub::start_in_chain(&hq.enrol("S1", broker.port), "");
    sell(&rt, &hub, 4);

    // At the shop: the owner freezes a checkout on the shop's page and
    // opens the troubleshooting page (which runs the checks).
    let web = hub.web();
    let (status, body) = web.send(
        "POST",
        "/api/v1/freezes",
        json!({"scope": "T1", "reason": "a skimmer was found"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, checks) = web.get("/api/v1/checks");
    assert_eq!(status, 200, "{checks}");
    let not_ok: std::collections::BTreeSet<String> = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "ok")
        .map(|c| format!("{}={}", c["id"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    let ran = checks["checks"].as_array().unwrap().len();
    let (_, terminals) = web.get("/api/v1/terminals");
    let at_shop: std::collections::BTreeSet<String> = terminals["terminals"]
        .as_array()
        .unwrap_or_else(|| panic!("{terminals}"))
        .iter()
        .map(|t| format!("{}={}", t["id"].as_str().unwrap(), t["online"]))
        .collect();
    assert!(!at_shop.is_empty(), "{terminals}");
    let held = |sql: &str| -> std::collections::BTreeSet<String> {
        pg.query(sql)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let same = wait_for(Duration::from_secs(20), || {
        let checks = held(
            "SELECT check_id || '=' || status FROM store_checks WHERE store_id = 'S1' AND status <> 'ok'",
        );
        let checkouts =
            held("SELECT terminal_id || '=' || online FROM store_terminals WHERE store_id = 'S1'");
        let frozen = held("SELECT scope || '=' || reason FROM store_freezes WHERE store_id = 'S1'");
        let all = pg.number("SELECT count(*) FROM store_checks WHERE store_id = 'S1'");
        (checks == not_ok
            && checkouts == at_shop
            && frozen.contains("T1=a skimmer was found")
            // Every check the page ran was new, so each was told.
            && all as usize == ran)
            .then_some(())
    });
    assert!(
        same.is_some(),
        "the shop: {not_ok:?} {at_shop:?}; head office: {} / {} / {}",
        pg.query("SELECT check_id, status FROM store_checks"),
        pg.query("SELECT terminal_id, online FROM store_terminals"),
        pg.query("SELECT scope, reason FROM store_freezes")
    );
    // Lifted at the shop, gone at head office.
    let (status, body) = web.send("DELETE", "/api/v1/freezes/T1", Value::Null);
    assert_eq!(status, 200, "{body}");
    let lifted = wait_for(Duration::from_secs(20), || {
        (pg.number("SELECT count(*) FROM store_freezes") == 0).then_some(())
    });
    assert!(lifted.is_some(), "{}", pg.query("SELECT * FROM store_freezes"));

    // A store whose hub counts a day other than head office holds: an
    // alert, and the day named on the page. (Entries made as a hub makes
    // them, sent by a simulated store: a day cannot be made to end here.)
    let entries = chained(&[
        txn(1, "sale", 1_000, "2026-11-30 10:00:00"),
        txn(2, "sale", 2_000, "2026-12-01 09:00:00"),
        txn(3, "sale", 3_000, "2026-12-01 18:00:00"),
        day("2026-12-01", 2, 5_000, 0),
        txn(4, "refund", 500, "2026-12-02 10:00:00"),
        // The hub counts a sale head office never got.
        day("2026-12-02", 1, 700, 500),
        (
            "check",
            json!({"check": "terminal.T2.printer", "status": "fail", "evidence": "T2: out of paper", "evidence_zh": "T2：打印纸用完"}),
        ),
        (
            "check",
            json!({"check": "terminal.T1.printer", "status": "fail", "evidence": "T1: out of paper", "evidence_zh": "T1：打印纸用完"}),
        ),
        (
            "check",
            json!({"check": "terminal.T1.printer", "status": "ok", "evidence": "T1: printing", "evidence_zh": "T1：正常"}),
        ),
        (
            "terminal",
            json!({"terminal": "T1", "name": "Front", "online": true, "version": "1.0", "last_seen": "2026-12-03T01:00:00Z"}),
        ),
        (
            "terminal",
            json!({"terminal": "T2", "name": "Back", "online": false, "version": "1.0", "last_seen": "2026-12-03T01:00:00Z"}),
        ),
        (
            "freeze",
            json!({"scope": "store", "frozen": true, "reason": "card testing"}),
        ),
    ]);
    let code = hq.enrol("S9", broker.port);
    rt.block_on(tallybox_e2e::chain::replay_store(broker.port, &code, &entries))
        .expect("the simulated store's entries are taken");
    assert_eq!(
        pg.query("SELECT day || '=' || coalesce(agrees::text, '-') FROM store_days WHERE store_id = 'S9' ORDER BY day"),
        "2026-12-01=true\n2026-12-02=false"
    );
    let alerts = pg.query("SELECT what FROM alerts WHERE store_id = 'S9'");
    assert!(
        alerts.contains("2026-12-02") && alerts.contains("the hub counts 1 sales of 700"),
        "{alerts}"
    );
    let cookie = hq.sign_in(0);
    let (_, stores) = hq.get(0, "/api/stores?day=2026-12-02", &cookie);
    let s9 = stores["stores"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["store"] == "S9"))
        .cloned()
        .unwrap_or_else(|| panic!("{stores}"));
    assert_eq!(s9["days_disagree"], json!(["2026-12-02"]), "{s9}");
    assert_eq!(
        s9["checks"],
        json!([{"check": "terminal.T2.printer", "status": "fail", "evidence": "T2: out of paper", "evidence_zh": "T2：打印纸用完"}]),
        "the newest word on each check: {s9}"
    );
    assert_eq!(
        s9["checkouts"],
        json!({"online": 1, "total": 2, "offline": ["Back"]})
    );
    assert_eq!(
        s9["frozen"],
        json!([{"scope": "store", "reason": "card testing"}])
    );

    rt.block_on(async {
        let wait = Duration::from_secs(10);
        let b = Browser::start().await;
        b.goto(&format!("{}/", hq.url(0))).await;
        b.fill("#login [name=name]", HQ_ACCOUNT.0).await;
        b.fill("#login [name=password]", HQ_ACCOUNT.1).await;
        b.click("#login button").await;
        let stores = b.wait_text("#stores", "S9", wait).await;
        for said in [
            "Problems",
            "T2: out of paper",
            "Frozen: the whole store: card testing",
            "2026-12-02: the store's totals differ from head office's",
            "1 of 2 checkouts online (offline: Back)",
        ] {
            assert!(stores.contains(said), "{said:?} in {stores}");
        }
        assert!(!stores.contains("T1: out of paper"), "{stores}");
        let violations = b.accessibility_violations().await;
        assert!(violations.is_empty(), "{violations:?}");
        b.click("#lang").await;
        let stores = b.wait_text("#stores", "有故障", wait).await;
        for said in ["T2：打印纸用完", "已冻结 全店：card testing", "收银台在线 1/2"] {
            assert!(stores.contains(said), "{said:?} in {stores}");
        }
        b.screenshot("hq-problems-zh").await;
        b.close().await;
    });
}
