//! The shop's money records when the storage under SQLite fails: a WAL cut
//! short after a power cut loses committed sales, which the history's
//! witness sees. Sales stop with the reason on the checkout and the page
//! until the owner accepts the loss; trace numbers are never issued twice.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tallybox_e2e::procs::{Hub, Terminal};
use tallybox_e2e::web::WebClient;
use tallybox_e2e::{bin, wait_for};

fn check(web: &WebClient, id: &str) -> Option<Value> {
    let (code, body) = web.get("/api/v1/checks");
    assert_eq!(code, 200, "{body}");
    body["checks"].as_array()?.iter().find(|c| c["id"] == id).cloned()
}

fn wait_check(web: &WebClient, id: &str, status: &str) -> Value {
    wait_for(Duration::from_secs(20), || {
        check(web, id).filter(|c| c["status"] == status)
    })
    .unwrap_or_else(|| panic!("{id} never turned {status}: {:?}", check(web, id)))
}

fn audit_verify(hub: &Hub) -> (bool, String) {
    let out = Command::new(bin("tallybox"))
        .args(["audit", "verify", "--data-dir"])
        .arg(hub.data_dir())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn traces(hub: &Hub) -> Vec<u64> {
    hub.transactions("")
        .iter()
        .map(|t| t["trace_no"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_wal_cut_short_after_a_power_cut_stops_sales_until_the_owner_accepts_the_loss() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    for i in 1..=12 {
        assert!(t1.sale(100 * i, "approved").contains("APPROVED"));
        t1.keys("C");
    }
    assert_eq!(traces(&hub).len(), 12);

    // Power is cut; the SD card kept only the first half of the WAL.
    hub.kill();
    let wal = hub.data_dir().join("tallybox.db-wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(len / 2).unwrap();
    file.sync_all().unwrap();
    drop(file);
    hub.start_again();
    let kept = traces(&hub).len();
    assert!(
        kept < 12,
        "the cut must have lost sales for this test to mean anything"
    );

    // Nothing says all is well: the check, the checkout and the command line.
    let web = hub.web();
    let history = wait_check(&web, "store.history", "fail");
    let evidence = history["evidence"].as_str().unwrap();
    assert!(
        evidence.contains(&format!("transactions {}–12 are missing", kept + 1)),
        "{history}"
    );
    assert!(
        history["fix_en"].as_str().unwrap().contains("Accept the loss"),
        "{history}"
    );
    t1.wait_ready();
    let refused = t1.sale(5000, "approved");
    assert!(
        refused.contains("NOT CHARGED") && refused.contains("Hub records missing"),
        "{refused}"
    );
    t1.keys("C");
    assert_eq!(traces(&hub).len(), kept, "the refused sale left no row");
    let (ok, out) = audit_verify(&hub);
    assert!(!ok && out.contains("history LOST"), "{out}");

    // A manager cannot accept it; the owner does, and sales resume past the
    // trace numbers that went out before the cut.
    let (code, body) = web.send(
        "PUT",
        "/api/v1/accounts/ann",
        json!({"password": "manager-pass-1"}),
    );
    assert_eq!(code, 204, "{body}");
    let ann = WebClient::login(hub.http, Some("ann"), "manager-pass-1").unwrap();
    let (code, _) = ann.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 403);
    let (code, body) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 204, "{body}");
    wait_check(&web, "store.history", "ok");
    let (code, _) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 409, "nothing left to accept");
    assert!(t1.sale(600, "approved").contains("APPROVED"));
    t1.keys("C");
    assert_eq!(
        traces(&hub)[0],
        13,
        "trace numbers 1–12 were printed on slips already"
    );
    let (ok, out) = audit_verify(&hub);
    assert!(ok, "{out}");

    // The acceptance stands after a restart, and the witness follows again.
    hub.restart();
    t1.wait_ready();
    assert!(t1.sale(700, "approved").contains("APPROVED"));
    assert_eq!(traces(&hub)[0], 14);
    assert!(hub.log().contains("the owner accepted the lost history"));
}
