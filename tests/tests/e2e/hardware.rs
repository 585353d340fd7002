//! The checkout's real driver code end to end, against byte-level chip models:
//! keys through the keypad matrix model and the keypad scan, cards as F2F
//! swipes through the swipe decoder and as EMV taps through the PN532 driver,
//! and slips through the ESC/POS driver over a real tty (a pty) into the
//! printer model, read back as GB18030-decoded Chinese.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tallybox_e2e::paper::{printed, wait_kicks, wait_slips};
use tallybox_e2e::procs::{Hub, Terminal};
use tallybox_e2e::{bin, wait_for};
use tallybox_terminal::devices::model::pty::PtyPrinter;

fn auth_code(screen: &str) -> String {
    screen
        .lines()
        .find_map(|l| l.strip_prefix("Auth "))
        .unwrap_or_else(|| panic!("no auth code on {screen}"))
        .trim()
        .to_string()
}

#[test]
fn sales_through_the_real_drivers_print_chinese_slips_on_a_serial_printer() {
    let pty = PtyPrinter::start().unwrap();
    let hub = Hub::start();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--printer", &pty.connection()]);
    t1.wait_ready();

    // Swiped: keys on the keypad model, F2F through the swipe decoder.
    t1.keys("A1250#");
    let read = t1.call(json!({"cmd": "card", "name": "approved", "reversed": true}));
    assert_eq!(read["read"], "card", "{read}");
    let screen = t1.wait_screen("APPROVED", Duration::from_secs(10));
    let auth = auth_code(&screen);
    let slips = wait_slips(&pty, 2);
    let customer = &slips[1];
    for needle in [
        "持卡人存根 CARDHOLDER COPY",
        "消费 SALE",
        "622202******0005",
        "金额 AMOUNT",
        "CNY 12.50",
        &auth,
        "UnionPay S",
    ] {
        assert!(
            customer.contains(needle),
            "{needle:?} missing from the printed slip:\n{customer}"
        );
    }
    assert!(slips[0].contains("商户存根 MERCHANT COPY") && slips[0].contains("持卡人签名"));
    // The customer's copy ends with the e-receipt as a QR code; the shop's has none.
    assert!(customer.contains("[QR http://tallybox.local/r/"), "{customer}");
    assert!(!slips[0].contains("[QR"));
    t1.keys("C");

    // Tapped: an EMV card on the PN532 model, read by the PN532 driver.
    t1.keys("A3300#");
    let read = t1.call(json!({"cmd": "card", "name": "visa", "entry": "tap"}));
    assert_eq!(read["read"], "card", "{read}");
    let screen = t1.wait_screen("APPROVED", Duration::from_secs(10));
    let slips = wait_slips(&pty, 4);
    assert!(
        slips[3].contains("CNY 33.00") && slips[3].contains("Visa C"),
        "{}",
        slips[3]
    );
    assert!(slips[3].contains(&auth_code(&screen)));
    t1.keys("C");
    assert_eq!(
        pty.model.lock().unknown_commands,
        0,
        "the driver sent nothing the printer did not know"
    );
}

#[test]
fn a_damaged_swipe_asks_to_swipe_again_and_counts_against_the_reader() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("A500#");
    let read = t1.call(json!({"cmd": "card", "name": "approved", "damaged": true}));
    assert_eq!(read["read"], "error", "{read}");
    let (screen, state) = t1.screen();
    assert!(
        screen.contains("Card read error") && screen.contains("Swipe again"),
        "{screen}"
    );
    assert_eq!(state, "card", "still waiting for a card");
    t1.card("approved");
    t1.wait_screen("APPROVED", Duration::from_secs(10));
    let health = t1.call(json!({"cmd": "health"}));
    assert_eq!(health["devices"]["swipes"], 2, "{health}");
    assert_eq!(health["devices"]["swipe_errors"], 1, "{health}");
    // A card left in the slot is reported, once.
    let read = t1.call(json!({"cmd": "card", "name": "approved", "stuck": true}));
    assert_eq!(read["read"], "stuck");
    assert!(t1.screen().0.contains("CARD STUCK"));
    assert_eq!(t1.call(json!({"cmd": "health"}))["devices"]["cards_stuck"], 1);
}

#[test]
fn paper_out_mid_slip_shows_the_e_receipt_and_prints_each_slip_once_after_the_new_roll() {
    let pty = PtyPrinter::start().unwrap();
    let hub = Hub::start();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--printer", &pty.connection()]);
    t1.wait_ready();
    // The roll ends a few lines into the merchant copy.
    pty.model.with(|m| m.paper_after(5));
    t1.keys("A4200#");
    t1.card("approved");
    let screen = wait_for(Duration::from_secs(15), || {
        let s = t1.call(json!({"cmd": "screen"}));
        s["qr"].is_string().then_some(s)
    })
    .unwrap_or_else(|| panic!("no e-receipt QR screen: {:?}", t1.screen()));
    let text = screen["lines"].to_string();
    assert!(text.contains("NO SLIP") && text.contains("Paper out"), "{text}");
    // The QR code is the customer's e-receipt page on the hub.
    let link = screen["qr"].as_str().unwrap();
    let token = link.strip_prefix("http://tallybox.local/r/").expect(link);
    let page = ureq::get(&format!("http://127.0.0.1:{}/r/{token}", hub.http))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        page.contains("CNY 42.00") && page.contains("622202******0005"),
        "{page}"
    );
    assert!(printed(&pty).is_empty(), "nothing was cut yet");

    pty.model.with(|m| m.set_paper(true));
    let slips = wait_slips(&pty, 2);
    std::thread::sleep(Duration::from_secs(3)); // a retry more: nothing prints twice
    let slips_after = printed(&pty);
    assert_eq!(slips_after, slips, "each slip exactly once");
    assert!(slips[0].contains("MERCHANT COPY") && slips[1].contains("CARDHOLDER COPY"));
    assert!(
        slips[1].contains(&format!("[QR {link}]")),
        "the printed QR is the one shown"
    );
    assert!(slips.iter().all(|s| s.contains("CNY 42.00")));
    assert_eq!(
        pty.model.lock().paper.torn.len(),
        1,
        "the piece printed before the paper ran out"
    );
}

#[test]
fn hw_test_reports_each_part_and_prints_a_test_slip() {
    let pty = PtyPrinter::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("devices.toml");
    // I2C bus 99 does not exist: the OLED and reader checks must say so.
    std::fs::write(
        &config,
        "[oled]\ni2c_bus = 99\n[contactless]\ni2c_bus = 99\n[magstripe]\nkind = \"none\"\n",
    )
    .unwrap();
    let out = Command::new(bin("tallybox-terminal"))
        .args(["hw-test", "--no-wait", "--device-config"])
        .arg(&config)
        .args(["--printer", &pty.connection()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed part fails the command:\n{report}"
    );
    let line = |part: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(part))
            .unwrap_or_else(|| panic!("no {part} line in\n{report}"))
            .to_string()
    };
    assert!(line("printer").contains("PASS"), "{report}");
    assert!(
        line("cash drawer").contains("PASS") && line("cash drawer").contains("pin 2"),
        "{report}"
    );
    // The model reads the pulse off the pty on its own thread, a moment
    // after hw-test has written it and exited.
    assert_eq!(wait_kicks(&pty, 1), vec![2], "one pulse on the drawer's pin");
    assert!(
        line("OLED").contains("FAIL") && line("OLED").contains("enable I2C"),
        "{report}"
    );
    assert!(line("contactless reader").contains("FAIL"), "{report}");
    assert!(line("keypad").contains("SKIP"), "{report}");
    assert!(line("swipe reader").contains("SKIP"), "{report}");
    let slips = printed(&pty);
    assert_eq!(slips.len(), 1);
    assert!(slips[0].contains("打印测试"), "{}", slips[0]);
    assert!(
        slips[0].contains("[QR "),
        "the test slip shows the printer draws QR codes"
    );
}
