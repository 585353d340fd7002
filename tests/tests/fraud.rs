//! Fraud controls on a running hub: a card-testing burst at one terminal is
//! refused and freezes that terminal (the others sell on); the owner
//! unfreezes it; the whole store can be frozen; and the evidence pack holds
//! the masked transactions, the rule hits, a verified audit log and the CCTV
//! windows.

use std::process::Command;
use std::time::Duration;

use tallybox_e2e::bin;
use tallybox_e2e::procs::{Hub, Terminal};

fn tallybox(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("tallybox")).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

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
    let screen = t1.sale(100, "approved");
    assert!(
        screen.contains("Terminal frozen") && screen.contains("unfreeze"),
        "{screen}"
    );
    t1.keys("C");
    assert!(
        t2.sale(200, "approved").contains("APPROVED"),
        "the other checkout sells on"
    );
    t2.keys("C");

    // The owner's API shows the hit and the freeze.
    let (status, fraud) = hub.get("/api/v1/fraud");
    assert_eq!(status, 200);
    assert_eq!(fraud["frozen"][0]["scope"], "T1", "{fraud}");
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
    assert!(read("audit_log.jsonl")
        .lines()
        .any(|l| l.contains("\"event\":\"frozen\"")));
}
