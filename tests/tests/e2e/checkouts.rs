//! Whole processes together: one hub and two terminal processes selling at
//! once, over the embedded broker and over mosquitto, a terminal restarted
//! mid-sale, and nothing anywhere that shows a full card number.

use std::time::Duration;

use tallybox_e2e::procs::{Hub, Mosquitto, Terminal};
use tallybox_e2e::{test_cards, wait_for};

fn sell_in_turn(t: &Terminal, cards: &[(&str, u64)]) -> Vec<String> {
    cards
        .iter()
        .map(|(card, minor)| {
            let screen = t.sale(*minor, card);
            t.keys("C");
            screen
        })
        .collect()
}

#[test]
fn two_terminals_sell_at_once_and_every_sale_is_recorded_once() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    let t2 = Terminal::start("T2", hub.mqtt);
    t1.wait_ready();
    t2.wait_ready();
    let plan1 = [
        ("approved", 101),
        ("visa", 102),
        ("lost", 103),
        ("mastercard", 104),
        ("approved", 105),
    ];
    let plan2 = [
        ("visa", 201),
        ("invalid", 202),
        ("approved", 203),
        ("slow", 204),
        ("frozen", 205),
    ];
    let (screens1, screens2) = std::thread::scope(|s| {
        let a = s.spawn(|| sell_in_turn(&t1, &plan1));
        let b = s.spawn(|| sell_in_turn(&t2, &plan2));
        (a.join().unwrap(), b.join().unwrap())
    });
    for (screens, plan) in [(&screens1, &plan1[..]), (&screens2, &plan2[..])] {
        for (screen, (card, _)) in screens.iter().zip(plan) {
            let expect = if ["lost", "invalid", "frozen"].contains(card) {
                "DECLINED"
            } else {
                "APPROVED"
            };
            assert!(screen.contains(expect), "{card}: {screen}");
        }
    }
    let rows = hub.transactions("limit=200");
    assert_eq!(rows.len(), 10);
    for (tid, plan) in [("T1", &plan1), ("T2", &plan2)] {
        let mut amounts: Vec<u64> = rows
            .iter()
            .filter(|t| t["terminal_id"] == tid)
            .map(|t| t["amount"].as_u64().unwrap())
            .collect();
        amounts.sort();
        assert_eq!(amounts, plan.iter().map(|p| p.1).collect::<Vec<_>>(), "{tid}");
        // Trace numbers are per terminal, 1..=5, no gaps, no repeats.
        let mut traces: Vec<u64> = rows
            .iter()
            .filter(|t| t["terminal_id"] == tid)
            .map(|t| t["trace_no"].as_u64().unwrap())
            .collect();
        traces.sort();
        assert_eq!(traces, [1, 2, 3, 4, 5]);
    }
    assert_eq!(
        t1.wait_paper(8).len(),
        8,
        "two slips for each of T1's four approvals"
    );
    assert_eq!(
        t2.wait_paper(6).len(),
        6,
        "two slips for each of T2's three approvals"
    );
    // Filters the owner uses.
    assert_eq!(hub.transactions("terminal=T2&status=declined").len(), 2);
    assert_eq!(hub.transactions("last4=1111").len(), 2);
}

#[test]
fn a_terminal_restarted_mid_sale_recalls_it_and_prints_the_slip_once_charged_once() {
    let hub = Hub::start();
    let mut t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.keys("A3300#");
    t1.card("slow"); // the acquirer takes 3 s: the terminal dies meanwhile
    t1.wait_screen("Processing", Duration::from_secs(5));
    wait_for(Duration::from_secs(3), || {
        (!hub.transactions("status=pending").is_empty()).then_some(())
    })
    .expect("the sale reached the hub");
    t1.restart();
    let screen = t1.wait_screen("Any key", Duration::from_secs(20));
    assert!(
        screen.contains("APPROVED") && screen.contains("CNY 33.00"),
        "{screen}"
    );
    let paper = t1.wait_paper(2);
    assert!(paper[1].contains("CNY 33.00"));
    let rows = hub.transactions("amount=33.00");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "approved");
    // The next sale works as usual.
    t1.keys("C");
    assert!(t1.sale(100, "visa").contains("APPROVED"));
}

#[test]
fn a_terminal_killed_before_its_sale_left_is_told_not_charged_after_restart() {
    // The hub is down while the cashier presents the card: the sale cannot leave.
    let mut hub = Hub::start();
    let mut t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    hub.kill();
    t1.keys("A4400#");
    t1.card("approved");
    t1.wait_screen("Processing", Duration::from_secs(5));
    t1.kill();
    hub.restart();
    t1.restart();
    let screen = t1.wait_screen("Any key", Duration::from_secs(20));
    assert!(
        screen.contains("NOT CHARGED") && screen.contains("Sale not received"),
        "{screen}"
    );
    assert!(hub.transactions("").is_empty());
}

#[test]
fn the_whole_sale_path_works_over_mosquitto() {
    let broker = Mosquitto::start();
    let hub = Hub::start_with(Some(broker.port), &[]);
    let t1 = Terminal::start("T1", broker.port);
    let t2 = Terminal::start("T2", broker.port);
    t1.wait_ready();
    t2.wait_ready();
    assert!(t1.sale(2500, "approved").contains("APPROVED"));
    assert!(t2.sale(100, "frozen").contains("Card frozen"));
    t2.keys("C");
    assert!(t2.sale(999, "no-answer").contains("NOT CHARGED"));
    let rows = hub.transactions("");
    let statuses: Vec<&str> = rows.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["reversed", "declined", "approved"]);
    assert_eq!(t1.wait_paper(2).len(), 2);
}

#[test]
fn no_full_card_number_or_track_in_the_database_logs_or_api() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.pair(&hub);
    let cards = test_cards();
    for name in ["approved", "visa", "mastercard", "lost", "low-balance"] {
        t1.sale(100, name);
        t1.keys("C");
    }
    t1.keys("A100#");
    t1.card("pin");
    t1.wait_screen("Enter PIN", Duration::from_secs(5));
    t1.keys("1234#");
    t1.wait_screen("Any key", Duration::from_secs(10));

    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(hub.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    assert!(haystacks.iter().any(|(p, _)| p.ends_with("tallybox.db")));
    haystacks.push(("hub log".into(), hub.log().into_bytes()));
    haystacks.push(("terminal log".into(), t1.log().into_bytes()));
    let (_, list) = hub.get("/api/v1/transactions?limit=200");
    haystacks.push(("API list".into(), list.to_string().into_bytes()));
    for t in list["items"].as_array().unwrap() {
        let (_, one) = hub.get(&format!("/api/v1/transactions/{}", t["id"]));
        haystacks.push(("API detail".into(), one.to_string().into_bytes()));
    }
    for card in &cards {
        let pan = card["pan"].as_str().unwrap().as_bytes();
        let track = card["track2"]
            .as_str()
            .unwrap()
            .trim_matches([';', '?'])
            .as_bytes();
        for (name, bytes) in &haystacks {
            assert!(
                !bytes.windows(pan.len()).any(|w| w == pan),
                "full PAN of {} in {name}",
                card["name"]
            );
            assert!(
                !bytes.windows(track.len()).any(|w| w == track),
                "track 2 of {} in {name}",
                card["name"]
            );
        }
    }
    // Masked numbers are what is there instead.
    assert!(list.to_string().contains("622202******0005"));
}

#[test]
fn a_silent_hub_is_reported_and_the_cashier_can_give_up_honestly() {
    let mut hub = Hub::start();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--hub-silent-secs", "2"]);
    t1.wait_ready();
    hub.kill();
    t1.keys("A500#");
    t1.card("approved");
    t1.wait_screen("Processing", Duration::from_secs(5));
    // C does nothing while the answer may still come.
    t1.keys("C");
    assert!(t1.screen().0.contains("Processing"));
    let screen = t1.wait_screen("NO ANSWER YET", Duration::from_secs(10));
    assert!(
        screen.contains("Hub not answering") && screen.contains("C give up"),
        "{screen}"
    );
    t1.keys("C");
    let screen = t1.wait_screen("RESULT UNKNOWN", Duration::from_secs(5));
    assert!(screen.contains("Check receipts"), "{screen}");
    assert!(t1.paper().is_empty());
}
