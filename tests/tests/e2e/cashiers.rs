//! Cashiers end to end: the owner adds one on the web page, the cashier signs
//! on at a checkout's keypad, their sales carry their number (slip, receipt
//! search, report by cashier); with sign-on required a checkout with nobody
//! signed on refuses to sell; five wrong PINs lock the cashier until the
//! owner unlocks them; a restart of the checkout keeps them signed on.

use std::time::Duration;

use serde_json::json;
use tallybox_e2e::procs::{Hub, Terminal};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn a_cashier_signs_on_sells_is_reported_and_is_locked_by_wrong_pins_until_unlocked() {
    let hub = Hub::start();
    let web = hub.web();
    let mut t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();

    // The owner adds Ann, number 07; a PIN that is not 4-8 digits is refused by name.
    let (status, body) = web.send("PUT", "/api/v1/cashiers/07", json!({"name": "Ann", "pin": "12"}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("pin"),
        "{body}"
    );
    let (status, body) = web.send("PUT", "/api/v1/cashiers/07", json!({"name": "Ann"}));
    assert_eq!(status, 400, "a new cashier without a PIN: {body}");
    assert_eq!(
        web.send(
            "PUT",
            "/api/v1/cashiers/07",
            json!({"name": "Ann", "pin": "2468"})
        )
        .0,
        204
    );
    // From now on a sale needs a cashier signed on.
    assert_eq!(
        web.send(
            "PUT",
            "/api/v1/settings",
            json!({"store_name": "Corner Shop", "cashier_sign_on": true})
        )
        .0,
        204
    );
    let refused = t1.sale(1250, "approved");
    assert!(refused.contains("Sign on first"), "{refused}");
    t1.keys("C");

    // Ann signs on at the keypad: D, 4, her number, her PIN.
    t1.keys("D4");
    t1.wait_screen("Cashier no.", WAIT);
    t1.keys("07#2468#");
    let on = t1.wait_screen("SIGNED ON", WAIT);
    assert!(on.contains("07 Ann"), "{on}");
    t1.keys("C");
    t1.wait_screen("Cashier 07", WAIT);
    let sold = t1.sale(1250, "approved");
    assert!(sold.contains("APPROVED"), "{sold}");
    let slips = t1.wait_paper(2);
    assert!(
        slips[0].contains("操作员号 CASHIER NO") && slips[0].contains("07"),
        "{}",
        slips[0]
    );
    t1.keys("C");

    let (_, page) = web.get("/api/v1/transactions?cashier=07");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["cashier"], "07");
    assert_eq!(items[0]["amount"], 1250);
    let (_, report) = web.get("/api/v1/reports?period=day");
    let ann = report["by_cashier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "07 Ann")
        .unwrap_or_else(|| panic!("no line for Ann: {report}"));
    assert_eq!(
        (ann["sales"].as_u64(), ann["net_minor"].as_i64()),
        (Some(1), Some(1250))
    );
    let (_, terminals) = web.get("/api/v1/terminals");
    assert_eq!(terminals["terminals"][0]["cashier"], "07", "{terminals}");

    // A restart of the checkout: Ann is still signed on.
    t1.restart();
    t1.wait_screen("Cashier 07", WAIT);

    // Five wrong PINs: the fifth locks her, and then even the right PIN is refused.
    for i in 1..=5 {
        t1.keys("D41#07#1111#");
        if i < 5 {
            let shown = t1.wait_screen("SIGN-ON FAILED", WAIT);
            assert!(shown.contains("Wrong cashier or PIN"), "try {i}: {shown}");
        } else {
            let shown = t1.wait_screen("LOCKED", WAIT);
            assert!(shown.contains("Owner can unlock"), "{shown}");
        }
        t1.keys("C");
        t1.wait_screen("Ready", WAIT);
    }
    t1.keys("D41#07#2468#");
    t1.wait_screen("LOCKED", WAIT);
    t1.keys("C");
    let (_, list) = web.get("/api/v1/cashiers");
    let row = &list["cashiers"][0];
    assert!(row["locked_at"].is_string(), "{list}");
    assert_eq!(list["sign_on_required"], true);
    // Troubleshooting names her and says how to unlock.
    let locked = |web: &tallybox_e2e::web::WebClient| {
        let (_, checks) = web.get("/api/v1/checks");
        tallybox_e2e::web::find_check(&checks, "cashiers.locked")
    };
    let check = locked(&web);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["evidence"].as_str().unwrap().contains("cashier 07"),
        "{check}"
    );
    assert!(check["fix_en"].as_str().unwrap().contains("unlock"), "{check}");

    // The owner unlocks her from the phone; her PIN works again.
    assert_eq!(web.send("POST", "/api/v1/cashiers/07/unlock", json!({})).0, 204);
    assert_eq!(locked(&web)["status"], "ok");
    t1.keys("D41#07#2468#");
    t1.wait_screen("SIGNED ON", WAIT);
    t1.keys("C");

    // Signed off: no sale until someone signs on again.
    t1.keys("D42");
    t1.wait_screen("SIGNED OFF", WAIT);
    t1.keys("C");
    assert!(t1.sale(300, "approved").contains("Sign on first"));
    t1.keys("C");

    // No PIN reaches either log (as a value of its own, not digits inside a
    // timestamp or an id).
    let shows = |log: &str, pin: &str| {
        log.match_indices(pin).any(|(at, _)| {
            let before = log[..at].chars().next_back();
            let after = log[at + pin.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        })
    };
    for log in [hub.log(), t1.log()] {
        assert!(
            !shows(&log, "2468") && !shows(&log, "1111"),
            "a PIN reached a log:\n{log}"
        );
    }
}
