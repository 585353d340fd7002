//! Payment codes (付款码) as a cashier takes them: the checkout's scanner
//! (through its control API) reads the code the customer shows, the hub
//! asks `tallybox-provider-sim` (Alipay's gateway as documented, over TLS
//! with a test CA, signing with its own key), and the slip, the screen, the
//! hub's records and the gateway's own log say what happened. Every call
//! and answer is then checked by `py/alipay_check.py`, written from
//! Alipay's documentation.

use std::time::{Duration, Instant};

use serde_json::Value;
use tallybox_e2e::procs::{Hub, ProviderSim, Terminal};
use tallybox_e2e::{alipay_check, wait_for};

/// The hub's order number at the provider for a request id.
fn order_no(request_id: &Value) -> String {
    request_id
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The calls of `method` about the order `order`.
fn calls_about(sim: &ProviderSim, method: &str, order: &str) -> usize {
    sim.calls()
        .iter()
        .filter(|(m, biz)| m == method && biz["out_trade_no"] == order)
        .count()
}

fn assert_signatures_check_out(sim: &ProviderSim) {
    let report = alipay_check(sim);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    assert!(report["checked"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn a_code_sale_is_paid_at_once_or_after_the_buyer_confirms_and_prints_the_receipt() {
    let sim = ProviderSim::start(5);
    let hub = Hub::start_configured(&sim.settings());
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();

    // Paid at once.
    t1.keys("A4250#");
    t1.wait_screen("Scan, D code", Duration::from_secs(5));
    t1.scan("281234567890120000");
    let screen = t1.wait_screen("PAID", Duration::from_secs(10));
    assert!(
        screen.contains("CNY 42.50") && screen.contains("Alipay"),
        "{screen}"
    );
    let paper = t1.wait_paper(1);
    for needle in [
        "顾客联 CUSTOMER COPY",
        "支付宝 ALIPAY",
        "159****5620",
        "交易号 TRADE NO",
        "CNY 42.50",
    ] {
        assert!(paper[0].contains(needle), "{needle:?} missing:\n{}", paper[0]);
    }
    assert!(
        !paper[0].contains("281234567890120000"),
        "the payment code is not printed"
    );
    let sold = hub.transactions("tender=code");
    assert_eq!(sold.len(), 1, "{sold:?}");
    let sale = &sold[0];
    assert_eq!(
        (&sale["status"], &sale["provider"], &sale["amount"]),
        (
            &Value::from("approved"),
            &Value::from("alipay"),
            &Value::from(4250)
        )
    );
    assert!(
        paper[0].contains(sale["reference_no"].as_str().unwrap()),
        "the trade number is on the slip"
    );
    let order = order_no(&sale["request_id"]);
    assert_eq!(calls_about(&sim, "alipay.trade.pay", &order), 1);
    let pay = sim
        .calls()
        .into_iter()
        .find(|(m, _)| m == "alipay.trade.pay")
        .unwrap()
        .1;
    assert_eq!(
        (&pay["total_amount"], &pay["scene"]),
        (&Value::from("42.50"), &Value::from("bar_code"))
    );
    assert!(
        !hub.log().contains("281234567890120000"),
        "the payment code is not logged"
    );

    // The buyer confirms in the app after 5 s: the checkout counts down, then pays.
    t1.keys("C");
    t1.keys("A1000#");
    t1.wait_screen("Scan, D code", Duration::from_secs(5));
    let asked = Instant::now();
    t1.scan("281234567890120001");
    let screen = t1.wait_screen("Customer confirming", Duration::from_secs(5));
    assert!(screen.contains(" s"), "the seconds left are shown: {screen}");
    let screen = t1.wait_screen("PAID", Duration::from_secs(20));
    assert!(screen.contains("CNY 10.00"), "{screen}");
    assert!(
        asked.elapsed() >= Duration::from_millis(4500),
        "paid when the buyer confirmed, after 5 s: {:?}",
        asked.elapsed()
    );
    t1.wait_paper(2);
    let second = hub.transactions("tender=code&status=approved");
    assert_eq!(second.len(), 2, "{second:?}");
    let order = order_no(&second[0]["request_id"]);
    assert_eq!(calls_about(&sim, "alipay.trade.pay", &order), 1, "paid once");
    assert!(
        calls_about(&sim, "alipay.trade.query", &order) >= 2,
        "asked while the buyer confirmed"
    );

    // Refunded in part by the supervisor: back to the wallet, no card, no drawer.
    let trace = sale["trace_no"].as_u64().unwrap();
    t1.keys("C");
    t1.keys(&format!("B28888#{trace}#2000#"));
    t1.wait_screen("B cash", Duration::from_secs(5));
    t1.keys("B");
    let screen = t1.wait_screen("REFUNDED", Duration::from_secs(10));
    assert!(
        screen.contains("CNY 20.00") && screen.contains("wallet"),
        "{screen}"
    );
    let refunds = hub.transactions("tender=code&kind=refund");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        (&refunds[0]["status"], &refunds[0]["amount"]),
        (&Value::from("approved"), &Value::from(2000))
    );
    let refund = sim
        .calls()
        .into_iter()
        .find(|(m, _)| m == "alipay.trade.refund")
        .unwrap()
        .1;
    assert_eq!(refund["out_trade_no"], order_no(&sale["request_id"]));
    assert_eq!(refund["refund_amount"], "20.00");
    assert_eq!(refund["out_request_no"], order_no(&refunds[0]["request_id"]));

    // Paid, but Alipay answers the payment with a system error: the hub asks, and it is paid once.
    t1.keys("C");
    t1.keys("A700#");
    t1.scan("281234567890120006");
    let screen = t1.wait_screen("PAID", Duration::from_secs(10));
    assert!(screen.contains("CNY 7.00"), "{screen}");
    let unanswered = hub.transactions("tender=code&kind=sale&status=approved");
    let order = order_no(&unanswered[0]["request_id"]);
    assert_eq!(unanswered[0]["amount"], 700);
    assert_eq!(calls_about(&sim, "alipay.trade.pay", &order), 1);
    assert!(calls_about(&sim, "alipay.trade.query", &order) >= 1);

    assert_signatures_check_out(&sim);
}

#[test]
fn a_code_never_confirmed_is_cancelled_and_the_cashier_hears_not_charged() {
    let sim = ProviderSim::start(5);
    let hub = Hub::start_configured(&format!("code_wait_secs = 5\n{}", sim.settings()));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();

    // The buyer never confirms: after 5 s the hub cancels the order.
    t1.keys("A3000#");
    t1.scan("281234567890120002");
    t1.wait_screen("Customer confirming", Duration::from_secs(5));
    let screen = t1.wait_screen("Not confirmed", Duration::from_secs(15));
    assert!(screen.contains("Not charged"), "{screen}");
    let txns = hub.transactions("tender=code");
    assert_eq!(
        (&txns[0]["status"], &txns[0]["response_code"]),
        (&Value::from("reversed"), &Value::from("QC"))
    );
    let order = order_no(&txns[0]["request_id"]);
    assert_eq!(calls_about(&sim, "alipay.trade.cancel", &order), 1);

    // The cashier stops one: C while the buyer confirms.
    t1.keys("C");
    t1.keys("A3000#");
    let asked = Instant::now();
    t1.scan("281234567890130002");
    t1.wait_screen("Customer confirming", Duration::from_secs(5));
    t1.keys("C");
    let screen = t1.wait_screen("Not confirmed", Duration::from_secs(5));
    assert!(screen.contains("Not charged"), "{screen}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped at once: {:?}",
        asked.elapsed()
    );

    // The wallet has too little money; a code from no provider is refused by the hub.
    t1.keys("C");
    t1.keys("A3000#");
    t1.scan("281234567890140003");
    t1.wait_screen("Not enough in wallet", Duration::from_secs(10));
    t1.keys("C");
    t1.keys("A3000#");
    t1.scan("991234567890140000");
    t1.wait_screen("Not a payment code", Duration::from_secs(10));
    let declined = hub.transactions("tender=code&status=declined");
    assert_eq!(
        declined.len(),
        1,
        "only the provider's refusal is a transaction: {declined:?}"
    );
    assert_eq!(declined[0]["response_code"], "QB");
    assert_eq!(
        hub.transactions("tender=code&status=approved").len(),
        0,
        "nothing charged"
    );

    // Troubleshooting counts the buyers who did not confirm.
    let (_, checks) = hub.get("/api/v1/checks");
    let codes = tallybox_e2e::web::find_check(&checks, "payments.codes");
    assert!(
        codes["evidence"]
            .as_str()
            .unwrap()
            .contains("0 paid, 2 not confirmed"),
        "{codes}"
    );

    assert_signatures_check_out(&sim);
}

#[test]
fn a_hub_killed_while_the_buyer_confirms_cancels_the_order_at_start_and_charges_nothing_twice() {
    let sim = ProviderSim::start(5);
    let hub_settings = format!("code_wait_secs = 60\n{}", sim.settings());
    let mut hub = Hub::start_configured(&hub_settings);
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("A5000#");
    t1.scan("281234567890150002");
    t1.wait_screen("Customer confirming", Duration::from_secs(5));
    let pending = hub.transactions("tender=code");
    assert_eq!(pending[0]["status"], "pending");
    let order = order_no(&pending[0]["request_id"]);
    hub.kill();
    hub.start_again();
    // At start the hub settles it with the provider: never confirmed, so cancelled.
    let settled = wait_for(Duration::from_secs(20), || {
        let t = hub.transactions("tender=code");
        (t.first()?["status"] != "pending").then(|| t[0].clone())
    })
    .expect("settled at start");
    assert_eq!(
        (&settled["status"], &settled["response_code"]),
        (&Value::from("reversed"), &Value::from("QC"))
    );
    assert_eq!(
        calls_about(&sim, "alipay.trade.pay", &order),
        1,
        "paid at most once"
    );
    assert_eq!(calls_about(&sim, "alipay.trade.cancel", &order), 1);
    // The checkout, which waited through the restart, hears "not charged".
    let screen = t1.wait_screen("Not confirmed", Duration::from_secs(30));
    assert!(screen.contains("Not charged"), "{screen}");
    assert_signatures_check_out(&sim);
}

#[test]
fn wechat_pay_codes_pay_wait_for_the_buyer_reverse_after_15_s_and_refund() {
    let sim = ProviderSim::start(3);
    let hub = Hub::start_configured(&format!("code_wait_secs = 5\n{}", sim.settings()));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let wechat = |path: &str, order: &str| {
        sim.wechat_calls()
            .iter()
            .filter(|(p, f)| p == path && f.get("out_trade_no").map(String::as_str) == Some(order))
            .count()
    };

    // Paid at once.
    t1.keys("A2500#");
    t1.scan("131234567890120000");
    let screen = t1.wait_screen("PAID", Duration::from_secs(10));
    assert!(
        screen.contains("WeChat Pay") && screen.contains("CNY 25.00"),
        "{screen}"
    );
    let paper = t1.wait_paper(1);
    assert!(paper[0].contains("微信支付 WECHAT PAY"), "{}", paper[0]);
    let sale = hub.transactions("tender=code")[0].clone();
    assert_eq!(
        (&sale["provider"], &sale["status"]),
        (&Value::from("wechat_pay"), &Value::from("approved"))
    );
    // (The hub may have asked for the day before's bill first.)
    let calls = sim.wechat_calls();
    let micropay = &calls
        .iter()
        .find(|(p, _)| p == "/pay/micropay")
        .expect("a micropay")
        .1;
    assert_eq!(
        (micropay["total_fee"].as_str(), micropay["auth_code"].as_str()),
        ("2500", "131234567890120000")
    );

    // USERPAYING: the buyer enters the password in WeChat after 3 s.
    t1.keys("C");
    t1.keys("A800#");
    t1.scan("131234567890120001");
    t1.wait_screen("Customer confirming", Duration::from_secs(5));
    t1.wait_screen("PAID", Duration::from_secs(15));
    let confirmed = hub.transactions("tender=code&status=approved")[0].clone();
    assert!(wechat("/pay/orderquery", &order_no(&confirmed["request_id"])) >= 1);

    // Never confirmed: the hub waits 5 s, then reverses, but no sooner than
    // 15 s after the order (as WeChat Pay asks): not charged.
    t1.keys("C");
    t1.keys("A900#");
    let asked = Instant::now();
    t1.scan("131234567890120002");
    let screen = t1.wait_screen("Not confirmed", Duration::from_secs(30));
    assert!(screen.contains("Not charged"), "{screen}");
    assert!(
        asked.elapsed() >= Duration::from_secs(14),
        "reversed after 15 s: {:?}",
        asked.elapsed()
    );
    let never = hub.transactions("tender=code&status=reversed")[0].clone();
    assert_eq!(wechat("/secapi/pay/reverse", &order_no(&never["request_id"])), 1);

    // A refund of part of the first sale goes back to the wallet.
    let trace = sale["trace_no"].as_u64().unwrap();
    t1.keys("C");
    t1.keys(&format!("B28888#{trace}#1000#"));
    t1.wait_screen("B cash", Duration::from_secs(5));
    t1.keys("B");
    t1.wait_screen("REFUNDED", Duration::from_secs(10));
    let refund = sim
        .wechat_calls()
        .into_iter()
        .find(|(p, _)| p == "/secapi/pay/refund")
        .expect("a refund call")
        .1;
    assert_eq!(
        (refund["total_fee"].as_str(), refund["refund_fee"].as_str()),
        ("2500", "1000")
    );

    let report = tallybox_e2e::wechat_check(&sim);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    assert!(report["checked"].as_u64().unwrap() >= 6, "{report}");
}

#[test]
fn the_owner_refunds_a_code_sale_from_the_phone_and_the_checkout_sends_it_back_at_once() {
    let sim = ProviderSim::start(5);
    let hub = Hub::start_configured(&sim.settings());
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("A4250#");
    t1.scan("281234567890120000");
    t1.wait_screen("PAID", Duration::from_secs(10));
    t1.keys("C");
    let sale = hub.transactions("tender=code")[0].clone();

    // The owner orders a refund of 12.50 at T1: no card, no key at the
    // checkout; the money goes back through Alipay.
    let (status, body) = hub.web().send(
        "POST",
        &format!("/api/v1/transactions/{}/undo", sale["id"]),
        serde_json::json!({"kind": "refund", "terminal": "T1", "amount": "12.50"}),
    );
    assert_eq!(status, 202, "{body}");
    let screen = t1.wait_screen("REFUNDED", Duration::from_secs(10));
    assert!(
        screen.contains("CNY 12.50") && screen.contains("wallet"),
        "{screen}"
    );
    let refunds = hub.transactions("tender=code&kind=refund");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        (&refunds[0]["status"], &refunds[0]["amount"]),
        (&Value::from("approved"), &Value::from(1250))
    );
    let refund = sim
        .calls()
        .into_iter()
        .find(|(m, _)| m == "alipay.trade.refund")
        .expect("a refund call to Alipay")
        .1;
    assert_eq!(refund["out_trade_no"], order_no(&sale["request_id"]));
    assert_eq!(refund["refund_amount"], "12.50");
    let (_, order) = hub
        .web()
        .get(&format!("/api/v1/orders/{}", body["order"].as_str().unwrap()));
    assert_eq!(order["state"], "taken", "{order}");
    assert_signatures_check_out(&sim);
}

#[test]
fn a_provider_refusing_the_shops_credentials_is_not_charged_at_once_and_the_owner_reads_what_to_fix() {
    let sim = ProviderSim::start(5);
    // The shop typed another app id for Alipay, and an old API key for WeChat Pay.
    let wrong_key = sim.dir.path().join("old_wechat_api_key.txt");
    std::fs::write(&wrong_key, "0123456789abcdef0123456789abcdef").unwrap();
    std::fs::set_permissions(&wrong_key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let settings = sim
        .settings()
        .replace(
            &format!("app_id = \"{}\"", sim.info("app_id")),
            "app_id = \"2021000000009999\"",
        )
        .replace(
            &sim.dir.path().join("wechat_api_key.txt").display().to_string(),
            &wrong_key.display().to_string(),
        );
    let hub = Hub::start_configured(&settings);
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    for (keys, code) in [("A4250#", "281234567890120000"), ("A800#", "131234567890120000")] {
        t1.keys(keys);
        let asked = Instant::now();
        t1.scan(code);
        let screen = t1.wait_screen("Code pay key refused", Duration::from_secs(10));
        assert!(screen.contains("Owner: see phone"), "{screen}");
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "said at once, not after the buyer's wait: {:?}",
            asked.elapsed()
        );
        t1.keys("C");
    }
    let sales = hub.transactions("tender=code");
    assert_eq!(sales.len(), 2, "{sales:?}");
    for sale in &sales {
        assert_eq!(
            (&sale["status"], &sale["response_code"]),
            (&Value::from("declined"), &Value::from("QK")),
            "{sale}"
        );
    }
    // Nothing asked again: the provider took nothing.
    let alipay = order_no(&sales.iter().find(|s| s["amount"] == 4250).unwrap()["request_id"]);
    assert_eq!(calls_about(&sim, "alipay.trade.query", &alipay), 0);
    assert_eq!(calls_about(&sim, "alipay.trade.cancel", &alipay), 0);
    // The owner's troubleshooting page says what to fix.
    let check = tallybox_e2e::web::wait_check(&hub.web(), "payments.codes", "fail");
    let evidence = check["evidence"].as_str().unwrap_or_default();
    assert!(
        evidence.contains("2 code payments or refunds") && evidence.contains("key"),
        "{check}"
    );
    assert!(
        check["fix_en"]
            .as_str()
            .unwrap_or_default()
            .contains("[alipay] app_id"),
        "{check}"
    );
}

#[test]
fn the_days_code_payments_are_checked_against_each_providers_bill_and_money_taken_elsewhere_is_shown() {
    let sim = ProviderSim::start(2);
    let hub = Hub::start_configured(&format!("code_wait_secs = 5\n{}", sim.settings()));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    // Alipay: paid at once; paid after the buyer confirms; never confirmed
    // (cancelled, nothing taken). WeChat Pay: paid at once.
    for (keys, code, end) in [
        ("A4250#", "281234567890120000", "PAID"),
        ("A800#", "281234567890120001", "PAID"),
        ("A300#", "281234567890120002", "Not charged"),
        ("A2500#", "131234567890120000", "PAID"),
    ] {
        t1.keys(keys);
        t1.scan(code);
        t1.wait_screen(end, Duration::from_secs(90));
        t1.keys("C");
    }
    // 12.50 of the first given back from the phone.
    let first = hub.transactions("tender=code&amount=42.50")[0].clone();
    let (status, body) = hub.web().send(
        "POST",
        &format!("/api/v1/transactions/{}/undo", first["id"]),
        serde_json::json!({"kind": "refund", "terminal": "T1", "amount": "12.50"}),
    );
    assert_eq!(status, 202, "{body}");
    t1.wait_screen("REFUNDED", Duration::from_secs(10));
    sim.paid_elsewhere("elsewhere0001", "281234567890129999", 600);

    let today = ProviderSim::day(0);
    let (status, body) = hub
        .web()
        .send("POST", "/api/v1/code-bills", serde_json::json!({ "day": today }));
    assert_eq!(status, 200, "{body}");
    let check = |provider: &str| -> Value {
        let found = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["provider"] == provider);
        found
            .unwrap_or_else(|| panic!("no {provider} check: {body}"))
            .clone()
    };
    let alipay = check("alipay");
    assert_eq!(alipay["error"], Value::Null, "{alipay}");
    let found = &alipay["result"];
    assert_eq!(found["matched"], 3, "paid, confirmed, cancelled: {found}");
    assert_eq!(
        (&found["hub"]["paid"], &found["hub"]["refunded"]),
        (&Value::from(5050), &Value::from(1250)),
        "{found}"
    );
    assert_eq!(
        (&found["bill"]["paid"], &found["bill"]["refunded"]),
        (&Value::from(5650), &Value::from(1250)),
        "{found}"
    );
    let differences = found["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{found}");
    assert_eq!(
        (
            &differences[0]["out_trade_no"],
            &differences[0]["what"],
            &differences[0]["bill"]["paid"]
        ),
        (
            &Value::from("elsewhere0001"),
            &Value::from("not_in_hub"),
            &Value::from(600)
        )
    );
    let wechat = check("wechat_pay");
    assert_eq!(wechat["error"], Value::Null, "{wechat}");
    assert_eq!(
        (&wechat["result"]["matched"], &wechat["result"]["bill"]["paid"]),
        (&Value::from(1), &Value::from(2500)),
        "{wechat}"
    );
    assert_eq!(wechat["result"]["differences"], Value::Array(vec![]), "{wechat}");

    // The bills, read by the checks written from the providers' documents,
    // hold what the hub read in them.
    let report = alipay_check(&sim);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    // After 10:30 Beijing time the hub has also asked for the day before's.
    let bills = report["bills"].as_array().unwrap();
    let bill = bills
        .iter()
        .find(|b| b["day"] == today.replace('-', ""))
        .unwrap_or_else(|| panic!("no bill of {today}: {report}"));
    assert_eq!(
        (&bill["paid"], &bill["refunded"]),
        (&found["bill"]["paid"], &found["bill"]["refunded"]),
        "{report}"
    );
    let report = tallybox_e2e::wechat_check(&sim);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    let bills = report["bills"].as_array().unwrap();
    let bill = bills.iter().find(|b| b["day"] == today.replace('-', ""));
    assert_eq!(bill.map(|b| &b["paid"]), Some(&Value::from(2500)), "{report}");

    // Kept: the page reads the same check later.
    let (status, kept) = hub.web().get(&format!("/api/v1/code-bills?day={today}"));
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["checks"], body["checks"], "{kept}");
    assert_eq!(kept["providers"], serde_json::json!(["alipay", "wechat_pay"]));
    // Troubleshooting says it too: money taken that the hub did not sell.
    let check = tallybox_e2e::web::wait_check(&hub.web(), "payments.bills", "fail");
    assert!(
        check["evidence"]
            .as_str()
            .unwrap()
            .contains("Alipay elsewhere0001"),
        "{check}"
    );
    // A day not begun has no bill.
    let tomorrow = ProviderSim::day(1);
    let (status, refused) = hub.web().send(
        "POST",
        "/api/v1/code-bills",
        serde_json::json!({ "day": tomorrow }),
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &Value::from("bad_date")),
        "{refused}"
    );
}

/// What the owner pastes for Alipay: the sim's app id and keys (as
/// Alipay's key tool would show them), with the sim as the gateway.
fn alipay_entry(sim: &ProviderSim, private_key_of: &ProviderSim) -> Value {
    let read = |s: &ProviderSim, name: &str| std::fs::read_to_string(s.dir.path().join(name)).unwrap();
    serde_json::json!({
        "app_id": sim.info("app_id"),
        "private_key": read(private_key_of, "app_private_key.txt"),
        "alipay_public_key": read(sim, "alipay_public_key.txt"),
        "gateway": sim.info("gateway"),
        "ca": read(sim, "ca.pem"),
    })
}

#[test]
fn the_owner_enters_the_shops_credentials_on_the_page_and_the_next_code_sale_takes_them() {
    use std::os::unix::fs::PermissionsExt;
    let sim = ProviderSim::start(2);
    let other = ProviderSim::start(2);
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let web = hub.web();
    let (_, before) = web.get("/api/v1/code-providers");
    assert_eq!(before["providers"][0]["source"], "none", "{before}");
    t1.keys("A4250#");
    t1.scan("281234567890120000");
    t1.wait_screen("Code pay not set up", Duration::from_secs(10));
    t1.keys("C");

    // Keys that are not keys, and another merchant's private key: refused, nothing kept.
    let mut garbled = alipay_entry(&sim, &sim);
    garbled["private_key"] = "not a key".into();
    let (status, body) = web.send("PUT", "/api/v1/code-providers/alipay", garbled);
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("bad_code_credentials")),
        "{body}"
    );
    assert!(
        body["error"]["params"]["detail"]
            .as_str()
            .unwrap()
            .contains("private key"),
        "{body}"
    );
    let (status, body) = web.send("PUT", "/api/v1/code-providers/alipay", alipay_entry(&sim, &other));
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &Value::from("code_credentials_refused")),
        "{body}"
    );
    assert!(
        body["error"]["params"]["detail"]
            .as_str()
            .unwrap()
            .contains("invalid-signature"),
        "{body}"
    );
    let kept = hub.data_dir().join("codes/alipay");
    assert!(!kept.exists(), "refused credentials are not kept");

    // The right ones: checked with Alipay, kept readable by the hub alone.
    let (status, body) = web.send("PUT", "/api/v1/code-providers/alipay", alipay_entry(&sim, &sim));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["source"], &body["check"], &body["id"]),
        (
            &Value::from("page"),
            &Value::from("taken"),
            &Value::from(sim.info("app_id"))
        )
    );
    let private = std::fs::read_to_string(sim.dir.path().join("app_private_key.txt")).unwrap();
    let secret_line = private.lines().nth(1).unwrap().to_string();
    for name in ["app_private_key.txt", "access.json", "ca.pem"] {
        let mode = std::fs::metadata(kept.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let (_, listed) = web.get("/api/v1/code-providers");
    assert!(
        !listed.to_string().contains(&secret_line),
        "no key goes back to the page"
    );

    // The next sale takes them.
    t1.keys("A4250#");
    t1.scan("281234567890120000");
    t1.wait_screen("PAID", Duration::from_secs(10));
    t1.keys("C");
    assert!(
        calls_about(
            &sim,
            "alipay.trade.pay",
            &order_no(&hub.transactions("tender=code&status=approved")[0]["request_id"])
        ) == 1
    );
    let (_, _, bundle) = web.get_text("/api/v1/support-bundle");
    assert!(
        !bundle.contains(&secret_line),
        "the key is not in the support bundle"
    );

    // Kept across a restart.
    hub.restart();
    let web = hub.web();
    let (_, listed) = web.get("/api/v1/code-providers");
    assert_eq!(listed["providers"][0]["source"], "page", "{listed}");
    t1.wait_ready();
    t1.keys("A100#");
    t1.scan("281234567890120010");
    t1.wait_screen("PAID", Duration::from_secs(20));
    t1.keys("C");

    // WeChat Pay the same way: a wrong API key is refused by WeChat Pay.
    let read = |name: &str| std::fs::read_to_string(sim.dir.path().join(name)).unwrap();
    let mut wechat = serde_json::json!({
        "appid": sim.info("wechat_appid"),
        "mch_id": sim.info("wechat_mch_id"),
        "api_key": "0123456789abcdef0123456789abcdef",
        "client_cert": read("apiclient_cert.pem"),
        "client_key": read("apiclient_key.pem"),
        "gateway": sim.info("wechat"),
        "ca": read("ca.pem"),
    });
    let (status, body) = web.send("PUT", "/api/v1/code-providers/wechat_pay", wechat.clone());
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &Value::from("code_credentials_refused")),
        "{body}"
    );
    wechat["api_key"] = read("wechat_api_key.txt").into();
    let (status, body) = web.send("PUT", "/api/v1/code-providers/wechat_pay", wechat);
    assert_eq!(
        (status, &body["check"], &body["id"]),
        (
            200,
            &Value::from("taken"),
            &Value::from(sim.info("wechat_mch_id"))
        ),
        "{body}"
    );
    t1.keys("A2500#");
    t1.scan("131234567890120000");
    t1.wait_screen("PAID", Duration::from_secs(10));
    t1.keys("C");

    // Forgotten: the shop takes no Alipay codes again.
    let (status, _) = web.send("DELETE", "/api/v1/code-providers/alipay", Value::Null);
    assert_eq!(status, 204);
    assert!(!kept.exists());
    t1.keys("A4250#");
    t1.scan("281234567890120020");
    t1.wait_screen("Code pay not set up", Duration::from_secs(10));
    // Who set where the shop's code payments go, and who took it back, is
    // in the audit log; no key is in it, nor in the hub's log.
    let db = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    let events: Vec<String> = db
        .prepare(
            "SELECT event || ' ' || detail FROM audit_log WHERE event LIKE 'code_credentials_%' ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[0].starts_with("code_credentials_entered") && events[0].contains(&sim.info("app_id")));
    assert!(events[2].starts_with("code_credentials_forgotten") && events[2].contains("alipay"));
    let all_audit: String = db
        .prepare("SELECT group_concat(detail) FROM audit_log")
        .unwrap()
        .query_row([], |r| r.get(0))
        .unwrap();
    assert!(!all_audit.contains(&secret_line) && !hub.log().contains(&secret_line));
    // Read from Alipay's documents: only the check made with the other
    // merchant's key fails its signature; every other call verifies.
    let report = alipay_check(&sim);
    assert_eq!(
        report["errors"],
        serde_json::json!(["call 1 (alipay.trade.query): the request's signature does not verify"]),
        "{report}"
    );
    assert_eq!(report["methods"]["alipay.trade.query"], 2, "{report}");
}

#[test]
fn a_checkout_killed_while_the_buyer_confirms_prints_the_payment_when_it_starts_again_and_charges_once() {
    let sim = ProviderSim::start(4);
    let hub = Hub::start_configured(&format!("code_wait_secs = 60\n{}", sim.settings()));
    let mut t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("A3300#");
    t1.scan("281234567890160001");
    t1.wait_screen("Customer confirming", Duration::from_secs(5));
    let order = order_no(&hub.transactions("tender=code")[0]["request_id"]);
    t1.kill();
    // The hub goes on asking while the checkout is off; the buyer confirms.
    let paid = wait_for(Duration::from_secs(20), || {
        hub.transactions("tender=code&status=approved").first().cloned()
    })
    .expect("paid while the checkout was off");
    assert_eq!(paid["amount"], 3300);
    t1.restart();
    // Back, the checkout asks what became of its sale and prints it.
    let paper = t1.wait_paper(1);
    assert!(
        paper[0].contains("CNY 33.00") && paper[0].contains("支付宝 ALIPAY"),
        "{}",
        paper[0]
    );
    assert_eq!(calls_about(&sim, "alipay.trade.pay", &order), 1, "paid once");
    assert_eq!(calls_about(&sim, "alipay.trade.cancel", &order), 0);
    assert_eq!(hub.transactions("tender=code").len(), 1);
    assert_signatures_check_out(&sim);
}
