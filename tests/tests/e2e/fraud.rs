//! Fraud controls on a running hub: a card-testing burst at one terminal is
//! refused and freezes that terminal (the others sell on); the owner
//! unfreezes it; the whole store can be frozen; and the evidence pack holds
//! the masked transactions, the rule hits, a verified audit log and the CCTV
//! windows.

use std::process::Command;
use std::time::Duration;

use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, Terminal, STORE};
use tallybox_e2e::{free_port, tallybox, test_card, try_drive, wait_for};

#[test]
fn card_testing_freezes_the_terminal_and_the_evidence_pack_holds_it_all() {
    let hub = Hub::start();
    let data = hub.data_dir().display().to_string();
    let t1 = Terminal::start("T1", hub.mqtt);
    let t2 = Terminal::start("T2", hub.mqtt);
    t1.wait_ready();
    t2.wait_ready();

    for _ in 0..10 {
        assert!(t1.sale(100, "invalid").contains("DECLINED"));
        t1.keys("C");
    }
    let screen = t1.sale(100, "invalid");
    assert!(screen.contains("Suspected fraud"), "{screen}");
    t1.keys("C");
    // The hub's own freeze reaches the checkout at once (the store writer
    // tells the link): back at rest it says so and starts no sale.
    let idle = t1.wait_screen("TERMINAL FROZEN", Duration::from_secs(1));
    assert!(idle.contains("declines"), "{idle}");
    assert!(
        t2.sale(200, "approved").contains("APPROVED"),
        "the other checkout sells on"
    );
    t2.keys("C");

    // The owner's API shows the hit and the freeze.
    let (status, fraud) = hub.get("/api/v1/fraud");
    assert_eq!(status, 200);
    assert_eq!(fraud["frozen"][0]["scope"], "T1", "{fraud}");
    // Troubleshooting says so too, with what to do.
    let (_, checks) = hub.get("/api/v1/checks");
    let check = |id: &str| tallybox_e2e::web::find_check(&checks, id);
    assert!(check("payments.fraud")["evidence"]
        .as_str()
        .unwrap()
        .contains("card_testing"));
    assert!(check("payments.fraud")["fix_en"]
        .as_str()
        .unwrap()
        .contains("evidence pack"));
    assert_eq!(check("terminal.T1.frozen")["status"], "warn");
    assert!(fraud["hits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["rule"] == "card_testing" && h["action"] == "blocked"));

    // The frozen checkout says so even at rest, and starts no sale.
    let idle = t1.wait_screen("declines", Duration::from_secs(5));
    assert!(idle.contains("TERMINAL FROZEN"), "{idle}");
    t1.keys("A");
    assert!(t1.screen().0.contains("TERMINAL FROZEN"));

    let (ok, out) = tallybox(&["unfreeze", "--terminal", "T1", "--data-dir", &data]);
    assert!(ok && out.contains("T1 unfrozen"), "{out}");
    // The owner's unfreeze (another process) reaches the checkout by itself.
    t1.wait_screen("Ready", Duration::from_secs(5));
    assert!(t1.sale(300, "approved").contains("APPROVED"));
    t1.keys("C");

    let (ok, out) = tallybox(&[
        "freeze",
        "--store",
        "--reason",
        "stolen card reported",
        "--data-dir",
        &data,
    ]);
    assert!(ok, "{out}");
    assert!(t2.sale(400, "approved").contains("Terminal frozen"));
    t2.keys("C");
    assert!(tallybox(&["unfreeze", "--store", "--data-dir", &data]).0);
    t2.wait_screen("Ready", Duration::from_secs(5));

    // The supervisor freezes T2 at its keypad; only the owner unfreezes it.
    t2.keys("B3");
    t2.keys("8888#");
    let screen = t2.wait_screen("TERMINAL FROZEN", Duration::from_secs(5));
    assert!(screen.contains("supervisor"), "{screen}");
    assert!(tallybox(&["unfreeze", "--terminal", "T2", "--data-dir", &data]).0);
    t2.wait_screen("Ready", Duration::from_secs(5));

    let out_file = hub.dir.path().join("evidence.tar");
    // The shop's day, as the hub writes it.
    let today = hub.transactions("limit=1")[0]["local_time"].as_str().unwrap()[..10].to_string();
    let config = hub.dir.path().join("tallybox.toml").display().to_string();
    let (ok, out) = tallybox(&[
        "evidence",
        "--from",
        &today,
        "--to",
        &today,
        "--out",
        &out_file.display().to_string(),
        "--data-dir",
        &data,
        "--config",
        &config,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
    let unpack = hub.dir.path().join("unpacked");
    std::fs::create_dir_all(&unpack).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&out_file)
        .arg("-C")
        .arg(&unpack)
        .status()
        .unwrap();
    assert!(status.success());
    let read = |name: &str| std::fs::read_to_string(unpack.join("evidence").join(name)).unwrap();
    let txns = read("transactions.csv");
    // Refused tries (rule, freeze) never became transactions: 10 declines and 2 sales.
    assert_eq!(
        txns.lines().count(),
        1 + 12,
        "header and twelve transactions:\n{txns}"
    );
    assert!(txns.contains("622202******0005") && !txns.contains("6222021000000005"));
    assert!(read("fraud_hits.csv").contains("card_testing,blocked"));
    assert!(read("audit_verify.txt").contains("intact"));
    assert!(read("cctv_windows.txt").contains("T1"));
    assert!(read("slips.txt").contains("CNY 2.00"));
    assert!(read("README.txt").contains("freeze"));
    let terminals = read("terminals.csv");
    assert!(terminals.lines().any(|l| l.starts_with("T1,T1,")), "{terminals}");
    assert!(read("audit_log.jsonl")
        .lines()
        .any(|l| l.contains("\"event\":\"frozen\"")));
}

#[test]
fn a_rule_hit_alerts_the_owner_on_the_web_page_and_the_hubs_own_screen() {
    let control = free_port();
    let hub = Hub::start_with(
        None,
        &["--devices", "sim", "--control", &format!("127.0.0.1:{control}")],
    );
    let screen = || try_drive(control, &["screen"]).unwrap_or_default();
    wait_for(Duration::from_secs(10), || {
        screen().contains("Ready").then_some(())
    })
    .expect("the hub's own checkout got ready");
    // The same card a sixth time in ten minutes: let through, but a hit.
    let raw = RawClient::connect(hub.mqtt, STORE, "T5");
    for i in 0..6 {
        let request = sale(&format!("same-{i:09}"), &test_card("approved"), 300 + i);
        let answer = raw
            .request("T5", &request, Duration::from_secs(10))
            .expect("answer");
        assert_eq!(answer["status"], "approved", "{answer}");
    }
    let (_, today) = hub.get("/api/v1/today");
    let alerts = today["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["rule"] == "same_card" && a["terminal_id"] == "T5" && a["action"] == "allowed"),
        "{today}"
    );
    let oled = wait_for(Duration::from_secs(15), || {
        let s = screen();
        s.contains("FRAUD ALERT").then_some(s)
    })
    .unwrap_or_else(|| panic!("no alert on the hub's screen: {}", screen()));
    assert!(oled.contains("T5 same card"), "{oled}");
}
