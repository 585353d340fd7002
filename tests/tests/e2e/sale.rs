//! A real sale and every decline, from keys on a terminal process to the slip,
//! the database and the owner's API.

use std::time::{Duration, Instant};

use tallybox_e2e::procs::{Hub, Terminal};
use tallybox_e2e::wait_for;

#[test]
fn an_approved_sale_prints_both_slips_and_reaches_the_api_within_a_second() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(
        t1.screen().0.contains("Corner Shop"),
        "idle screen names the store"
    );

    let screen = t1.sale(1250, "approved");
    assert!(
        screen.contains("APPROVED") && screen.contains("CNY 12.50"),
        "{screen}"
    );
    let shown_at = Instant::now();
    let txn = wait_for(Duration::from_secs(1), || {
        hub.transactions("status=approved")
            .into_iter()
            .find(|t| t["terminal_id"] == "T1")
    })
    .expect("the sale is visible through the API within 1 s");
    assert!(shown_at.elapsed() < Duration::from_secs(1));
    assert_eq!(txn["amount"], 1250);
    assert_eq!(txn["masked_pan"], "622202******0005");

    let paper = t1.wait_paper(2);
    assert!(paper[0].contains("MERCHANT COPY") && paper[1].contains("CARDHOLDER COPY"));
    let slip = &paper[1];
    let trace = format!("{:06}", txn["trace_no"].as_u64().unwrap());
    let batch = format!("{:06}", txn["batch_no"].as_u64().unwrap());
    for needle in [
        "Corner Shop",
        "622202******0005",
        "CNY 12.50",
        "T1",
        &batch,
        &trace,
        txn["reference_no"].as_str().unwrap(),
        txn["auth_code"].as_str().unwrap(),
        txn["local_time"].as_str().unwrap(),
    ] {
        assert!(
            !needle.is_empty() && slip.contains(needle),
            "slip lacks {needle:?}:\n{slip}"
        );
    }
    assert!(!slip.contains("6222021000000005"));

    // The owner's detail view is the slip.
    let (status, detail) = hub.get(&format!("/api/v1/transactions/{}", txn["id"]));
    assert_eq!(status, 200);
    let lines: Vec<&str> = detail["slip"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    let printed: Vec<&str> = slip.lines().filter(|l| !l.starts_with("[QR ")).collect();
    assert_eq!(lines, printed);
    let link = detail["receipt_link"].as_str().unwrap();
    assert!(
        slip.contains(&format!("[QR {link}]")),
        "the printed QR is the receipt's link"
    );
}

#[test]
fn every_decline_reaches_the_screen_and_is_stored_with_its_code() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.pair(&hub);
    let cases = [
        ("low-balance", 20_000, "Insufficient funds", "51"),
        ("expired", 100, "Card expired", "54"),
        ("lost", 100, "Lost card", "41"),
        ("frozen", 100, "Card frozen", "43"),
        ("invalid", 100, "Invalid card", "14"),
    ];
    for (card, minor, message, code) in cases {
        let screen = t1.sale(minor, card);
        assert!(
            screen.contains("DECLINED") && screen.contains(message),
            "{card}: {screen}"
        );
        t1.keys("C");
        let stored = hub
            .transactions("status=declined")
            .into_iter()
            .find(|t| t["response_code"] == code)
            .unwrap_or_else(|| panic!("{card}: no declined row with code {code}"));
        assert_eq!(stored["amount"], minor);
    }
    // Low balance approves a smaller amount.
    let screen = t1.sale(5_000, "low-balance");
    assert!(screen.contains("APPROVED"), "{screen}");
    t1.keys("C");

    // A PIN card: wrong PIN declines with 55, the right one approves.
    t1.keys("A300#");
    t1.card("pin");
    t1.wait_screen("Enter PIN", Duration::from_secs(5));
    t1.keys("9999#");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("Wrong PIN"), "{screen}");
    t1.keys("CA300#");
    t1.card("pin");
    t1.wait_screen("Enter PIN", Duration::from_secs(5));
    t1.keys("1234#");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("APPROVED"), "{screen}");
    assert!(hub
        .transactions("status=declined")
        .iter()
        .any(|t| t["response_code"] == "55"));
    assert!(!t1.log().contains("1234#") && !has_word(&hub.log(), "9999"));
}

/// Whether `word` stands on its own in `text` (not inside a request id or a
/// port number, which may hold the same digits by chance).
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[test]
fn a_slow_acquirer_approves_and_a_silent_one_ends_not_charged() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let started = Instant::now();
    let screen = t1.sale(700, "slow");
    assert!(screen.contains("APPROVED"), "{screen}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    t1.keys("C");

    let screen = t1.sale(800, "no-answer");
    assert!(screen.contains("NOT CHARGED"), "{screen}");
    let row = hub
        .transactions("amount=8.00")
        .pop()
        .expect("row for the silent sale");
    assert_eq!(row["status"], "reversed");
}

#[test]
fn an_expired_card_is_refused_at_the_terminal_and_never_sent() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("A100#");
    t1.card("past-expiry");
    let screen = t1.wait_screen("Card expired", Duration::from_secs(5));
    assert!(
        screen.contains("Card/code or B cash"),
        "still waiting for another card (or a code, or cash): {screen}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(hub.transactions("").is_empty(), "nothing reached the hub");
    // Another card completes the same sale.
    t1.card("visa");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("APPROVED"), "{screen}");
}

#[test]
fn balance_inquiry_and_reprint_from_the_menu() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("D1");
    t1.card("low-balance");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(
        screen.contains("BALANCE") && screen.contains("CNY 100.00"),
        "{screen}"
    );
    t1.keys("C");

    t1.sale(4_200, "approved");
    t1.keys("C");
    t1.keys("D2");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("REPRINT"), "{screen}");
    let paper = t1.wait_paper(3);
    assert!(
        paper[2].contains("REPRINT") && paper[2].contains("CNY 42.00"),
        "{}",
        paper[2]
    );
}
