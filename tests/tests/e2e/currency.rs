//! A hub set to another currency than the shipped CNY: its checkouts learn
//! it at sign-in and sell in it, and the screen, the slip, the page's API and
//! the settlement report all show its own number of decimals.

use std::time::Duration;

use serde_json::Value;
use tallybox_e2e::procs::{AcquirerSim, Hub, Terminal};
use tallybox_e2e::wait_for;

/// A sale of 1250 minor units on a hub set to `code`: what the cashier saw,
/// the cardholder's slip and the stored transaction as the API gives it.
fn sell_in(code: &str) -> (Hub, String, String, serde_json::Value) {
    let hub = Hub::start_configured(&format!("currency = \"{code}\"\n"));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let screen = t1.sale(1250, "approved");
    let paper = t1.wait_paper(2);
    let txn = wait_for(Duration::from_secs(2), || {
        hub.transactions("status=approved").into_iter().next()
    })
    .unwrap_or_else(|| panic!("a {code} sale is approved and stored: the screen said {screen}"));
    (hub, screen, paper[1].clone(), txn)
}

#[test]
fn a_hong_kong_hub_sells_in_hkd_with_two_decimals() {
    let (hub, screen, slip, txn) = sell_in("HKD");
    assert!(
        screen.contains("APPROVED") && screen.contains("HKD 12.50"),
        "{screen}"
    );
    assert!(slip.contains("HKD 12.50"), "{slip}");
    assert_eq!(
        (txn["currency"].as_str(), txn["amount"].as_u64()),
        (Some("HKD"), Some(1250))
    );
    assert_eq!(txn["amount_text"], "12.50");
    let (status, today) = hub.get("/api/v1/today");
    assert_eq!(status, 200);
    assert_eq!(
        (today["currency"].as_str(), today["minor_digits"].as_u64()),
        (Some("HKD"), Some(2))
    );
    // Found by the amount as the slip writes it.
    assert_eq!(hub.transactions("amount=12.50").len(), 1);
}

#[test]
fn a_japanese_hub_sells_in_whole_yen() {
    let (hub, screen, slip, txn) = sell_in("JPY");
    assert!(
        screen.contains("APPROVED") && screen.contains("JPY 1250"),
        "{screen}"
    );
    assert!(!screen.contains("12.50"), "{screen}");
    assert!(slip.contains("JPY 1250") && !slip.contains("12.50"), "{slip}");
    assert_eq!(txn["amount_text"], "1250");
    let (_, today) = hub.get("/api/v1/today");
    assert_eq!(
        (today["currency"].as_str(), today["minor_digits"].as_u64()),
        (Some("JPY"), Some(0))
    );
    assert_eq!(hub.transactions("amount=1250").len(), 1);
    let (status, refused) = hub.get("/api/v1/transactions?amount=12.50");
    assert_eq!(status, 400, "yen have no decimals: {refused}");
}

#[test]
fn a_currency_tallybox_does_not_know_is_refused_at_start_with_the_ones_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tallybox.toml");
    std::fs::write(&config, "currency = \"XYZ\"\n").unwrap();
    let out = std::process::Command::new(tallybox_e2e::bin("tallybox"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run tallybox");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("XYZ") && err.contains("HKD") && err.contains("JPY"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}

#[test]
fn over_iso8583_a_hong_kong_sale_names_hkd_to_the_bank() {
    // Field 4 is in the minor units of field 49's currency: a HKD sale sent
    // as 156 (CNY) would charge the card in yuan.
    let acquirer = AcquirerSim::start();
    let hub = Hub::start_configured(&format!("currency = \"HKD\"\n{}", acquirer.settings()));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let screen = t1.sale(1250, "approved");
    assert!(screen.contains("HKD 12.50"), "{screen}");
    let report = tallybox_e2e::iso8583_check(&acquirer.messages_path());
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    assert_eq!(
        report["currencies"]["0200"],
        serde_json::json!(["344"]),
        "{report}"
    );
    assert_eq!(
        report["currencies"]["0210"],
        serde_json::json!(["344"]),
        "{report}"
    );
}

/// The owner's page in a real Chromium on a yen hub: Today and the receipts
/// show whole yen, not the two decimals the page once assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_of_a_japanese_hub_shows_whole_yen() {
    use tallybox_e2e::browser::Browser;
    use tallybox_e2e::web::OWNER_PASSWORD;
    const WAIT: Duration = Duration::from_secs(10);
    let (hub, _, _, _) = tokio::task::block_in_place(|| sell_in("JPY"));
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/", hub.http)).await;
    b.wait_text("#login-view", "Sign in", WAIT).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-totals", "¥1,250", WAIT).await;
    let today = b.text("#today-totals").await;
    assert!(!today.contains("12.50"), "{today}");
    b.click("#nav a[href='#/']").await;
    b.wait_text("#receipts", "¥1,250", WAIT).await;
    let receipts = b.text("#receipts").await;
    assert!(!receipts.contains("12.50"), "{receipts}");
    b.screenshot("today-jpy").await;
}
