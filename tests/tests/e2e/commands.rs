//! The command-line contract the README promises: `tallybox demo` runs the
//! whole system, `tallybox test-cards` lists the cards, `tallybox drive` sells.

use std::process::{Command, Stdio};
use std::time::Duration;

use tallybox_e2e::procs::Guard;
use tallybox_e2e::{bin, drive, free_port, free_port_run, test_cards, wait_for};

#[test]
fn test_cards_cover_every_answer_a_shop_meets() {
    let cards = test_cards();
    for key in ["name", "pan", "expiry", "track2", "pin", "behaviour"] {
        assert!(cards.iter().all(|c| c.get(key).is_some()), "every card has {key}");
    }
    let names: Vec<&str> = cards.iter().filter_map(|c| c["name"].as_str()).collect();
    for needed in [
        "approved",
        "low-balance",
        "expired",
        "lost",
        "frozen",
        "pin",
        "invalid",
        "slow",
        "no-answer",
    ] {
        assert!(names.contains(&needed), "missing test card {needed}");
    }
    assert!(cards.iter().any(|c| c["pin"].is_string()));
    let table = Command::new(bin("tallybox")).arg("test-cards").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("6222021000000005"));
}

/// Waits up to `secs` for checkout `port`'s screen to show `text`; `what`
/// names the step when it never does.
fn wait_screen(port: u16, text: &str, secs: u64, what: &str) {
    wait_for(Duration::from_secs(secs), || {
        drive(port, &["screen"]).contains(text).then_some(())
    })
    .unwrap_or_else(|| panic!("{what}: {}", drive(port, &["screen"])));
}

#[test]
fn the_demo_runs_the_whole_system_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let control = free_port_run(3);
    let (http, mqtt) = loop {
        let (h, m) = (free_port(), free_port());
        if h != m && ![h, m].iter().any(|p| (control..control + 3).contains(p)) {
            break (h, m);
        }
    };
    let log = dir.path().join("demo.log");
    let config = dir.path().join("tallybox.toml");
    std::fs::write(&config, "store_name = \"Demo Corner\"\n").unwrap();
    let mut demo = Guard(
        Command::new(bin("tallybox"))
            .args([
                "demo",
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
                "--http",
                &format!("127.0.0.1:{http}"),
                "--mqtt",
                &format!("127.0.0.1:{mqtt}"),
                "--control",
                &format!("127.0.0.1:{control}"),
                "--terminals",
                "2",
                "--owner-password",
                tallybox_e2e::web::OWNER_PASSWORD,
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the demo"),
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let health = format!("http://127.0.0.1:{http}/healthz");
    wait_for(Duration::from_secs(20), || {
        ureq::get(&health).call().ok().map(|_| ())
    })
    .unwrap_or_else(|| panic!("the demo's web page never answered; log:\n{}", log_text()));
    let page = ureq::get(&format!("http://127.0.0.1:{http}/"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains("Receipts"));
    // Three checkouts: the hub's own (T0) and two terminals, each drivable.
    for (offset, tid) in [(0u16, "T0"), (1, "T1"), (2, "T2")] {
        let port = control + offset;
        wait_for(Duration::from_secs(10), || {
            drive(port, &["screen"]).contains("Ready").then_some(())
        })
        .unwrap_or_else(|| panic!("{tid} never got ready"));
        drive(port, &["keys", "A1250#"]);
        drive(port, &["card", "approved"]);
        wait_for(Duration::from_secs(10), || {
            drive(port, &["screen"]).contains("APPROVED").then_some(())
        })
        .unwrap_or_else(|| panic!("{tid} sale not approved: {}", drive(port, &["screen"])));
        // The slips print a moment after the screen.
        let paper = wait_for(Duration::from_secs(10), || {
            let paper = drive(port, &["paper"]);
            paper.contains("CARDHOLDER COPY").then_some(paper)
        })
        .unwrap_or_else(|| panic!("{tid} printed no slip: {}", drive(port, &["paper"])));
        assert!(paper.contains(&format!("终端号 TERMINAL NO{tid:>14}")), "{paper}");
        assert!(
            paper.contains("Demo Corner"),
            "the store name from --config is on the slip: {paper}"
        );
    }
    // The demo's checkouts pair themselves, so they take PIN cards: the PIN
    // goes under the checkout's own key and reaches the simulated acquirer
    // under its (random) key.
    let t1 = control + 1;
    drive(t1, &["keys", "C"]);
    drive(t1, &["keys", "A500#"]);
    drive(t1, &["card", "pin"]);
    wait_screen(t1, "Enter PIN", 10, "no PIN asked");
    drive(t1, &["keys", "1234#"]);
    wait_screen(t1, "APPROVED", 10, "PIN sale not approved");
    // The demo takes the test payment codes without any credentials: an
    // Alipay code pays at once, a WeChat Pay buyer confirms in the app.
    let t2 = control + 2;
    drive(t2, &["keys", "C"]);
    drive(t2, &["keys", "A880#"]);
    drive(t2, &["scan", "281234567890120000"]);
    wait_screen(t2, "PAID", 10, "code sale not paid");
    wait_for(Duration::from_secs(10), || {
        drive(t2, &["paper"]).contains("ALIPAY").then_some(())
    })
    .unwrap_or_else(|| panic!("no Alipay receipt: {}", drive(t2, &["paper"])));
    drive(t2, &["keys", "C"]);
    drive(t2, &["keys", "A990#"]);
    drive(t2, &["scan", "131234567890120001"]);
    wait_screen(t2, "Customer confirming", 10, "no confirming screen");
    wait_screen(t2, "PAID", 20, "the buyer's confirmation never came");
    let (status, list) = tallybox_e2e::web::WebClient::owner(http).get("/api/v1/transactions");
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "three sales, the PIN sale and two code sales");
    let providers: Vec<&str> = items.iter().filter_map(|t| t["provider"].as_str()).collect();
    assert_eq!(providers, ["wechat_pay", "alipay"], "newest first");

    // Ctrl-C stops it cleanly.
    Command::new("kill")
        .args(["-INT", &demo.0.id().to_string()])
        .status()
        .unwrap();
    let stopped = wait_for(Duration::from_secs(10), || demo.0.try_wait().ok().flatten());
    assert!(stopped.expect("the demo stopped after Ctrl-C").success());
    let mut banner = String::new();
    std::io::Read::read_to_string(demo.0.stdout.as_mut().unwrap(), &mut banner).unwrap();
    assert!(banner.contains(&format!("http://127.0.0.1:{http}")), "{banner}");
    assert!(banner.contains("scan 281234567890120000"), "{banner}");
}
