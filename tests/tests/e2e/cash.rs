//! Cash sales as a cashier makes them: keys on the keypad model, the
//! checkout's real ESC/POS driver over a tty into the printer model (which
//! records the drawer pulses it receives), the hub's records read back over
//! its web API, and settlement against `tallybox acquirer-sim` over a real
//! ISO 8583 socket, whose totals would disagree if cash reached it.

use std::time::Duration;

use serde_json::Value;
use tallybox_e2e::paper::{drawer_kicks, printed, wait_kicks, wait_slips};
use tallybox_e2e::procs::{AcquirerSim, Hub, Terminal};
use tallybox_e2e::{strs, wait_for};
use tallybox_terminal::devices::model::pty::PtyPrinter;

/// The line of `lines` (a report's) whose key is `key`.
fn line<'a>(lines: &'a Value, key: &str) -> &'a Value {
    lines
        .as_array()
        .and_then(|l| l.iter().find(|l| l["key"] == key))
        .unwrap_or_else(|| panic!("no {key} in {lines}"))
}

#[test]
fn a_cash_sale_opens_the_drawer_prints_the_change_and_settles_apart_from_the_cards() {
    let acquirer = AcquirerSim::start();
    let hub = Hub::start_with(None, &strs(&acquirer.hub_flags(acquirer.port)));
    let pty = PtyPrinter::start().unwrap();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--printer", &pty.connection()]);
    t1.wait_ready();

    // A card sale first, then ¥42.50 paid with a ¥50 note.
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    wait_slips(&pty, 2);
    t1.keys("C");
    assert!(
        drawer_kicks(&pty).is_empty(),
        "a card sale leaves the drawer shut"
    );
    t1.keys("A4250#");
    t1.wait_screen("B cash", Duration::from_secs(5));
    t1.keys("B4000#");
    t1.wait_screen("Less than the amount", Duration::from_secs(5));
    t1.keys("****5000#");
    let screen = t1.wait_screen("PAID IN CASH", Duration::from_secs(10));
    assert!(
        screen.contains("CNY 7.50") && screen.contains("Drawer open"),
        "{screen}"
    );
    let paper = wait_slips(&pty, 3);
    let receipt = &paper[2];
    for needle in [
        "顾客联 CUSTOMER COPY",
        "现金 CASH",
        "CNY 42.50",
        "收款 TENDERED",
        "CNY 50.00",
        "找零 CHANGE",
        "CNY 7.50",
    ] {
        assert!(receipt.contains(needle), "{needle:?} missing:\n{receipt}");
    }
    assert!(
        !receipt.contains("卡号") && !receipt.contains("SIGNATURE"),
        "{receipt}"
    );
    assert_eq!(wait_kicks(&pty, 1), vec![2], "one pulse on pin 2");
    t1.keys("C");

    // No sale: the supervisor opens the drawer for change; a wrong PIN does not.
    t1.keys("B41111#");
    let screen = t1.wait_screen("NOT DONE", Duration::from_secs(10));
    assert!(screen.contains("PIN"), "{screen}");
    assert_eq!(drawer_kicks(&pty).len(), 1);
    t1.keys("C");
    t1.keys("B48888#");
    t1.wait_screen("NO SALE", Duration::from_secs(10));
    wait_kicks(&pty, 2);
    t1.keys("C");

    // The hub's records: the cash sale with what was handed over, found by
    // the tender filter; Today splits the takings by tender.
    let cash = hub.transactions("tender=cash");
    assert_eq!(cash.len(), 1, "{cash:?}");
    assert_eq!(
        (&cash[0]["status"], &cash[0]["amount"], &cash[0]["tendered"]),
        (&Value::from("approved"), &Value::from(4250), &Value::from(5000))
    );
    assert!(cash[0].get("masked_pan").is_none(), "{}", cash[0]);
    assert_eq!(hub.transactions("tender=card").len(), 1);
    let (code, today) = hub.web().get("/api/v1/today");
    assert_eq!(code, 200, "{today}");
    assert_eq!(line(&today["by_tender"], "cash")["net_minor"], 4250, "{today}");
    assert_eq!(line(&today["by_tender"], "card")["net_minor"], 1250, "{today}");
    assert_eq!(today["totals"]["net_minor"], 5500);
    let brands = today["by_brand"].as_array().unwrap();
    assert!(
        brands.iter().all(|b| b["key"] != ""),
        "cash is no card brand: {brands:?}"
    );

    // ¥10.00 of it given back: the supervisor's refund, in cash (B where a
    // card would be presented), from the drawer.
    let trace = cash[0]["trace_no"].as_u64().unwrap();
    t1.keys(&format!("B28888#{trace}#1000#"));
    t1.wait_screen("B cash", Duration::from_secs(5));
    t1.keys("B");
    let screen = t1.wait_screen("CASH BACK", Duration::from_secs(10));
    assert!(screen.contains("CNY 10.00"), "{screen}");
    wait_kicks(&pty, 3);
    let refunds = hub.transactions("tender=cash&kind=refund");
    assert_eq!((refunds.len(), &refunds[0]["amount"]), (1, &Value::from(1000)));
    t1.keys("C");

    // Shift end: ¥32.00 in the drawer (the float aside) for ¥42.50 of cash
    // sales less ¥10.00 given back: 50 fen short, recorded and reported.
    t1.keys("B58888#3200#");
    let screen = t1.wait_screen("DRAWER COUNTED", Duration::from_secs(10));
    assert!(screen.contains("Short 0.50"), "{screen}");
    let counted = wait_for(Duration::from_secs(10), || {
        printed(&pty)
            .into_iter()
            .find(|s| s.contains("交班点钞 DRAWER COUNT"))
    })
    .expect("the count's report printed");
    for needle in [
        "现金销售 CASH SALES 1",
        "CNY 42.50",
        "退还现金 CASH BACK",
        "CNY 10.00",
        "应有 EXPECTED",
        "CNY 32.50",
        "实点 COUNTED",
        "CNY 32.00",
        "短款 SHORT 0.50",
    ] {
        assert!(counted.contains(needle), "{needle:?} missing:\n{counted}");
    }
    assert!(
        counted
            .lines()
            .any(|l| l.starts_with("开钱箱 NO SALE") && l.ends_with(" 1")),
        "{counted}"
    );
    t1.keys("C");
    let (code, report) = hub.web().get("/api/v1/reports");
    assert_eq!(code, 200, "{report}");
    let counts = report["drawer_counts"].as_array().unwrap();
    assert_eq!(counts.len(), 1, "{report}");
    assert_eq!(
        (&counts[0]["expected"], &counts[0]["counted"]),
        (&Value::from(3250), &Value::from(3200))
    );
    assert_eq!(counts[0]["no_sales"], 1);
    assert_eq!(line(&report["by_tender"], "cash")["sales"], 1, "{report}");

    // Settlement: the acquirer is sent the card sale alone and agrees; the
    // report shows the cash apart.
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("Totals agree"), "{screen}\n{}", hub.log());
    let report = wait_for(Duration::from_secs(10), || {
        printed(&pty)
            .into_iter()
            .find(|s| s.contains("结算单 SETTLEMENT"))
    })
    .expect("settlement report printed");
    assert!(
        report.contains("现金 CASH 1") && report.contains("CNY 42.50"),
        "{report}"
    );
    assert!(report.contains("消费 SALES 1"), "{report}");
    assert_eq!(pty.model.lock().unknown_commands, 0);
}

#[test]
fn a_cash_sale_the_hub_never_heard_is_not_charged_after_both_restart_and_the_drawer_stays_shut() {
    let mut hub = Hub::start();
    let pty = PtyPrinter::start().unwrap();
    let mut t1 = Terminal::start_with("T1", hub.mqtt, &["--printer", &pty.connection()]);
    t1.wait_ready();
    // The hub is down: the cash sale goes out and waits, journalled.
    hub.kill();
    t1.keys("A990#B#");
    t1.wait_screen("Processing", Duration::from_secs(5));
    // The checkout loses power too; both come back.
    t1.kill();
    hub.start_again();
    t1.restart();
    // Asked what became of it, the hub, which never had it, says so and
    // makes sure a late copy can never be recorded.
    let screen = t1.wait_screen("NOT CHARGED", Duration::from_secs(20));
    assert!(screen.contains("Sale not received"), "{screen}");
    assert!(hub.transactions("tender=cash").is_empty());
    assert!(drawer_kicks(&pty).is_empty(), "the drawer stays shut");
    assert!(printed(&pty).is_empty());
    t1.keys("C");
    // The cashier takes the money again: a new sale, recorded once.
    t1.keys("A990#B#");
    t1.wait_screen("PAID IN CASH", Duration::from_secs(10));
    assert_eq!(hub.transactions("tender=cash").len(), 1);
    assert_eq!(wait_kicks(&pty, 1), vec![2]);
}

#[test]
fn a_sale_paid_in_cash_and_by_card_prints_one_receipt_and_a_declined_card_lets_the_cashier_give_the_cash_back(
) {
    let hub = Hub::start();
    let pty = PtyPrinter::start().unwrap();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--printer", &pty.connection()]);
    t1.wait_ready();

    // ¥42.50: ¥30.00 in cash, the rest by card.
    t1.keys("A4250#B3000A");
    let screen = t1.wait_screen("Still owed", Duration::from_secs(10));
    assert!(screen.contains("CNY 12.50"), "{screen}");
    assert_eq!(wait_kicks(&pty, 1), vec![2], "the drawer takes the cash part");
    t1.card("approved");
    t1.wait_screen("PAID IN FULL", Duration::from_secs(10));
    let paper = wait_slips(&pty, 2);
    assert!(
        paper[0].contains("MERCHANT COPY") && paper[0].contains("CNY 12.50"),
        "{}",
        paper[0]
    );
    let receipt = &paper[1];
    for needle in [
        "分次付款 PAID IN PARTS",
        "现金 CASH",
        "CNY 30.00",
        "卡 622202******0005",
        "合计 TOTAL",
        "CNY 42.50",
    ] {
        assert!(receipt.contains(needle), "{needle:?} missing:\n{receipt}");
    }
    let rows = hub.transactions("");
    assert_eq!(rows.len(), 2, "two parts recorded");
    t1.keys("C");

    // ¥42.50 again: ¥30.00 in cash, then a card without the money. The
    // cashier chooses to give the cash back: no supervisor needed.
    t1.keys("A4250#B3000A");
    t1.wait_screen("Still owed", Duration::from_secs(10));
    t1.card("lost");
    let screen = t1.wait_screen("NOT PAID", Duration::from_secs(10));
    assert!(screen.contains("Owed 12.50"), "{screen}");
    t1.keys("2");
    let screen = t1.wait_screen("CASH BACK", Duration::from_secs(10));
    assert!(screen.contains("CNY 30.00"), "{screen}");
    assert_eq!(
        wait_kicks(&pty, 3).len(),
        3,
        "in for the part, out to give it back"
    );
    let voids = hub.transactions("tender=cash&kind=void");
    assert_eq!(voids.len(), 1, "{voids:?}");
    assert_eq!(voids[0]["amount"], 3000);
    // Nothing of the second sale stands: only the first sale's ¥42.50.
    let (_, today) = hub.web().get("/api/v1/today");
    assert_eq!(today["totals"]["net_minor"], 4250, "{today}");
    assert_eq!(printed(&pty).len(), 2, "no receipt for a sale not made");
}

#[test]
fn the_owner_orders_a_cash_refund_from_the_phone_and_the_cashier_gives_it_back_from_the_drawer() {
    let hub = Hub::start();
    let pty = PtyPrinter::start().unwrap();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--printer", &pty.connection()]);
    t1.wait_ready();
    t1.keys("A4250#B5000#");
    t1.wait_screen("PAID IN CASH", Duration::from_secs(10));
    t1.keys("C");
    let sale = hub.transactions("tender=cash")[0]["id"].as_i64().unwrap();
    let web = hub.web();
    let (status, order) = web.send(
        "POST",
        &format!("/api/v1/transactions/{sale}/undo"),
        serde_json::json!({"kind": "refund", "terminal": "T1", "amount": "20.00"}),
    );
    assert_eq!(status, 202, "{order}");
    let screen = t1.wait_screen("B cash", Duration::from_secs(10));
    assert!(screen.contains("REFUND CNY 20.00"), "{screen}");
    t1.keys("B");
    let screen = t1.wait_screen("CASH BACK", Duration::from_secs(10));
    assert!(screen.contains("CNY 20.00"), "{screen}");
    assert_eq!(
        wait_kicks(&pty, 2),
        vec![2, 2],
        "in for the sale, out for the refund"
    );
    let refunds = hub.transactions("tender=cash&kind=refund");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        (&refunds[0]["amount"], &refunds[0]["original_id"]),
        (&Value::from(2000), &Value::from(sale))
    );
    let (_, sale) = web.get(&format!("/api/v1/transactions/{sale}"));
    assert_eq!(sale["refunded"], "20.00", "{sale}");
}
