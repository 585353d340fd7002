//! The troubleshooting page's checks under real faults: a checkout's Pi
//! overheats, its supply sags and Bluetooth is switched off (a fake sysfs
//! tree the checkout reads), its printer runs out of paper, the hub's own
//! machine does the same, and the acquirer link drops. Each time the right
//! check turns red or amber with its fix, and green again when the fault is
//! gone; the owner's buttons (test slip, restart, reader cleaned) do what
//! they say, the history keeps what happened, and the support bundle holds
//! the story without a secret in it.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tallybox_e2e::procs::{AcquirerSim, Hub, Mosquitto, Terminal, Tmpfs};
use tallybox_e2e::proxy::Proxy;
use tallybox_e2e::web::{check, wait_check, WebClient, OWNER_PASSWORD};
use tallybox_e2e::{strs, test_card, wait_for};
use tallybox_platform::machine::fake;

/// The amounts of the stored transactions, newest first.
fn stored_amounts(hub: &Hub) -> Vec<i64> {
    hub.transactions("")
        .iter()
        .map(|t| t["amount"].as_i64().unwrap())
        .collect()
}

fn healthy_pi(root: &Path) {
    fake::cpu_temp_c(root, 52).unwrap();
    fake::throttled_bits(root, 0).unwrap();
    fake::bluetooth_blocked(root, false).unwrap();
}

#[test]
fn a_checkouts_heat_power_bluetooth_and_paper_turn_red_with_the_fix_and_green_when_fixed() {
    let hub_sys = tempfile::tempdir().unwrap();
    healthy_pi(hub_sys.path());
    let hub = Hub::start_with(None, &["--sys-root", &hub_sys.path().display().to_string()]);
    let sys = tempfile::tempdir().unwrap();
    healthy_pi(sys.path());
    let sys_root = sys.path().display().to_string();
    let t1 = Terminal::start_with(
        "T1",
        hub.mqtt,
        &["--heartbeat-secs", "1", "--sys-root", &sys_root],
    );
    t1.wait_ready();
    let web = hub.web();
    for id in [
        "terminal.T1.temperature",
        "terminal.T1.power",
        "terminal.T1.bluetooth",
        "hub.temperature",
    ] {
        wait_check(&web, id, "ok");
    }

    // The checkout's Pi: 85 °C, under-voltage now, Bluetooth switched off.
    fake::cpu_temp_c(sys.path(), 85).unwrap();
    fake::throttled_bits(sys.path(), 0x5_0005).unwrap();
    fake::bluetooth_blocked(sys.path(), true).unwrap();
    let hot = wait_check(&web, "terminal.T1.temperature", "fail");
    assert!(hot["evidence"].as_str().unwrap().contains("85 °C"), "{hot}");
    assert!(hot["fix_zh-CN"].as_str().unwrap().contains("阳光"), "{hot}");
    let power = wait_check(&web, "terminal.T1.power", "fail");
    assert!(
        power["fix_en"].as_str().unwrap().contains("power adapter"),
        "{power}"
    );
    let bt = wait_check(&web, "terminal.T1.bluetooth", "warn");
    assert!(bt["fix_en"].as_str().unwrap().contains("rfkill unblock"), "{bt}");
    let (_, all) = web.get("/api/v1/checks");
    assert_eq!(all["status"], "fail");
    assert_eq!(all["checks"][0]["status"], "fail", "worst first: {all}");

    // Cooled down, a proper adapter (the firmware remembers the dip: amber), radio on.
    fake::cpu_temp_c(sys.path(), 55).unwrap();
    fake::throttled_bits(sys.path(), 0x1_0000).unwrap();
    fake::bluetooth_blocked(sys.path(), false).unwrap();
    wait_check(&web, "terminal.T1.temperature", "ok");
    wait_check(&web, "terminal.T1.power", "warn");
    wait_check(&web, "terminal.T1.bluetooth", "ok");

    // The hub's own Pi overheats too: its own check, not a checkout's.
    fake::cpu_temp_c(hub_sys.path(), 74).unwrap();
    let warm = wait_check(&web, "hub.temperature", "warn");
    assert!(
        warm["evidence"]
            .as_str()
            .unwrap()
            .contains("The hub's CPU is at 74 °C"),
        "{warm}"
    );
    fake::cpu_temp_c(hub_sys.path(), 50).unwrap();
    wait_check(&web, "hub.temperature", "ok");

    // Paper runs out during a sale: red with "new roll"; a new roll: green,
    // the waiting slips print, and the roll's paper count starts again.
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    t1.wait_paper(2);
    t1.call(json!({"cmd": "printer", "paper": false}));
    t1.sale(800, "visa");
    t1.keys("C");
    assert_eq!(hub.transactions("status=approved").len(), 2, "both sold");
    let out = wait_check(&web, "terminal.T1.printer", "fail");
    assert!(
        out["evidence"].as_str().unwrap().contains("slips waiting"),
        "{out}"
    );
    assert!(out["fix_en"].as_str().unwrap().contains("paper roll"), "{out}");
    t1.call(json!({"cmd": "printer", "paper": true}));
    wait_check(&web, "terminal.T1.printer", "ok");
    t1.wait_paper(4);
    let paper = wait_check(&web, "terminal.T1.paper", "ok");
    assert!(
        paper["evidence"].as_str().unwrap().contains("of about 15 m"),
        "{paper}"
    );

    // The owner's buttons. A test slip comes out of T1's printer.
    let (code, body) = web.send("POST", "/api/v1/terminals/T1/test-slip", json!({}));
    assert_eq!(code, 202, "{body}");
    let slips = t1.wait_paper(5);
    let test = &slips[4];
    assert!(
        test.contains("PRINTER TEST") && test.contains("TERMINAL T1"),
        "{test}"
    );
    assert!(
        test.contains("Corner Shop") && test.contains("中文打印正常"),
        "{test}"
    );
    let (code, _) = web.send("POST", "/api/v1/terminals/T9/test-slip", json!({}));
    assert_eq!(code, 404);
    // The cashier's own self-test from the menu: link, printer, readers, a slip.
    t1.keys("D6");
    let screen = t1.wait_screen("SELF-TEST", Duration::from_secs(5));
    assert!(
        screen.contains("Hub: OK") && screen.contains("Printer: OK"),
        "{screen}"
    );
    assert!(screen.contains("Swipes 2 bad 0"), "{screen}");
    assert!(t1.wait_paper(6)[5].contains("PRINTER TEST"));
    t1.keys("C");

    // Swipes count on the odometer; a restart from the page keeps them
    // (the checkout's own counters start again), and is counted.
    let swiped = |web: &WebClient| {
        check(web, "terminal.T1.reader_cleaning").unwrap()["evidence"]
            .as_str()
            .unwrap()
            .to_string()
    };
    wait_for(Duration::from_secs(10), || {
        swiped(&web).starts_with("2 swipes").then_some(())
    })
    .unwrap_or_else(|| panic!("two swipes counted: {}", swiped(&web)));
    let started = check(&web, "terminal.T1.restarts").unwrap()["evidence"].clone();
    let (code, body) = web.send("POST", "/api/v1/terminals/T1/restart", json!({}));
    assert_eq!(code, 202, "{body}");
    let restarted = wait_for(Duration::from_secs(20), || {
        let now = check(&web, "terminal.T1.restarts")?["evidence"].clone();
        (now != started).then_some(now)
    })
    .unwrap_or_else(|| panic!("T1 did not restart; its log:\n{}", t1.log()));
    assert!(
        restarted.as_str().unwrap().contains("running since"),
        "{restarted}"
    );
    t1.wait_ready();
    assert_eq!(
        t1.call(json!({"cmd": "health"}))["devices"]["swipes"],
        0,
        "a new process"
    );
    assert!(
        t1.sale(300, "visa").contains("APPROVED"),
        "sells after the restart"
    );
    t1.keys("C");
    wait_for(Duration::from_secs(10), || {
        swiped(&web).starts_with("3 swipes").then_some(())
    })
    .unwrap_or_else(|| panic!("the odometer kept its count over the restart: {}", swiped(&web)));
    let (code, _) = web.send("POST", "/api/v1/terminals/T1/reader-cleaned", json!({}));
    assert_eq!(code, 204);
    assert!(swiped(&web).starts_with("0 swipes"), "{}", swiped(&web));

    // The history says when the heat came and went, and that the hub looked today.
    let (_, history) = web.get("/api/v1/checks/history");
    let entries = history["history"].as_array().unwrap();
    let of = |id: &str| -> Vec<&str> {
        entries
            .iter()
            .rev()
            .filter(|e| e["check"] == id)
            .map(|e| e["status"].as_str().unwrap())
            .collect()
    };
    assert_eq!(of("terminal.T1.temperature"), ["ok", "fail", "ok"], "{history}");
    assert_eq!(of("self_check").len(), 1, "{history}");

    // The support bundle: the checks, history, versions and log; no secret.
    let (code, kind, tar) = web.get_text("/api/v1/support-bundle");
    assert_eq!(code, 200);
    assert_eq!(kind, "application/x-tar");
    for part in [
        "support/checks.json",
        "support/history.json",
        "support/versions.txt",
        "support/settings.json",
        "support/hub.log",
        "support/transactions.csv",
        "terminal.T1.temperature",
        "622202******0005",
        "hub connected to broker",
    ] {
        assert!(tar.contains(part), "the bundle lacks {part}");
    }
    let pan = test_card("approved")["pan"].as_str().unwrap().to_string();
    for secret in [pan.as_str(), OWNER_PASSWORD, "$argon2", "\"supervisor_pin\":"] {
        assert!(!tar.contains(secret), "the bundle holds a secret: {secret}");
    }
}

#[test]
fn the_acquirer_link_dropping_turns_the_bank_checks_red_and_green() {
    let mut acquirer = AcquirerSim::start();
    let hub = Hub::start_with(None, &strs(&acquirer.hub_flags(acquirer.port)));
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--hub-silent-secs", "2"]);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    let web = hub.web();
    let up = wait_check(&web, "network.acquirer", "ok");
    assert!(up["evidence"].as_str().unwrap().contains("is up"), "{up}");
    assert_eq!(check(&web, "payments.network").unwrap()["status"], "ok");

    // The acquirer goes away: the link check says so at once.
    acquirer.kill();
    let down = wait_check(&web, "network.acquirer", "fail");
    assert!(
        down["evidence"]
            .as_str()
            .unwrap()
            .contains("cannot reach the acquirer"),
        "{down}"
    );
    assert!(down["fix_en"].as_str().unwrap().contains("router"), "{down}");

    // A sale meanwhile is reversed once the acquirer is back: "no answer",
    // the latest sale, so the bank check is red; the next sale turns it amber.
    t1.keys("A900#");
    t1.card("approved");
    t1.wait_screen("NO ANSWER YET", Duration::from_secs(10));
    acquirer.restart();
    t1.wait_screen("NOT CHARGED", Duration::from_secs(20));
    t1.keys("C");
    wait_check(&web, "network.acquirer", "ok");
    let bank = wait_check(&web, "payments.network", "fail");
    assert!(bank["evidence"].as_str().unwrap().contains("1 of 2"), "{bank}");
    assert!(t1.sale(300, "visa").contains("APPROVED"));
    t1.keys("C");
    let recovered = wait_check(&web, "payments.network", "warn");
    assert!(
        recovered["evidence"]
            .as_str()
            .unwrap()
            .contains("the latest went through"),
        "{recovered}"
    );

    // A manager sees the same; the restart button is refused for a checkout
    // the hub has never heard from.
    let (code, _) = web.send("POST", "/api/v1/terminals/T7/restart", json!({}));
    assert_eq!(code, 404);
}

#[test]
fn swipes_failing_while_taps_work_point_at_magnetic_interference() {
    let hub = Hub::start();
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--heartbeat-secs", "1"]);
    t1.wait_ready();
    let web = hub.web();
    // Five tapped sales go through the contactless reader.
    for n in 0..5 {
        t1.keys(&format!("A{}#", 100 + n));
        t1.call(json!({"cmd": "card", "name": "visa", "entry": "tap"}));
        t1.wait_screen("APPROVED", Duration::from_secs(10));
        t1.keys("C");
    }
    // Then the magnetic stripe comes out garbled twenty times (the swipe
    // decoder gets broken F2F bits from the reader model); the 21st reads.
    t1.keys("A500#");
    for _ in 0..20 {
        let read = t1.call(json!({"cmd": "card", "name": "visa", "damaged": true}));
        assert_eq!(read["read"], "error", "{read}");
    }
    t1.card("visa");
    t1.wait_screen("APPROVED", Duration::from_secs(10));
    t1.keys("C");
    let reader = wait_check(&web, "terminal.T1.reader", "warn");
    let evidence = reader["evidence"].as_str().unwrap();
    assert!(evidence.contains("20 of 21 swipes unreadable"), "{reader}");
    assert!(evidence.contains("while taps work (0 of 5 failed)"), "{reader}");
    assert!(reader["fix_en"].as_str().unwrap().contains("magnets"), "{reader}");
    assert!(reader["fix_zh-CN"].as_str().unwrap().contains("磁铁"), "{reader}");
}

#[test]
fn a_slow_acquirer_link_is_amber_and_green_again_after_quick_answers() {
    let acquirer = AcquirerSim::start();
    let proxy = Proxy::start(acquirer.port);
    let hub = Hub::start_with(None, &strs(&acquirer.hub_flags(proxy.port)));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let web = hub.web();
    assert!(t1.sale(100, "visa").contains("APPROVED"));
    t1.keys("C");
    wait_check(&web, "network.acquirer", "ok");

    // Answers take 2.5 s of the 4 s the hub waits: approved, but close.
    proxy.delay(Duration::from_millis(2500));
    assert!(t1.sale(200, "visa").contains("APPROVED"));
    t1.keys("C");
    let slow = wait_check(&web, "network.acquirer", "warn");
    let evidence = slow["evidence"].as_str().unwrap();
    let slowest: u32 = evidence
        .split("slowest of the last 5 answers ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no slowest answer in {slow}"));
    assert!((2500..4000).contains(&slowest), "the delay shows: {slow}");
    assert!(evidence.contains("reversed after 4000 ms"), "{slow}");

    proxy.delay(Duration::ZERO);
    for n in 0..5 {
        assert!(t1.sale(300 + n, "visa").contains("APPROVED"));
        t1.keys("C");
    }
    wait_check(&web, "network.acquirer", "ok");
}

#[test]
fn a_full_disk_and_a_stopped_broker_turn_their_checks_red_and_green() {
    let disk = Tmpfs::mount("256m");
    let data = disk.0.path().join("data");
    let mut broker = Mosquitto::start();
    let hub = Hub::start_with(Some(broker.port), &["--data-dir", &data.display().to_string()]);
    let web = hub.web();
    wait_check(&web, "store.disk", "ok");
    wait_check(&web, "hub.broker", "ok");

    let t1 = Terminal::start("T1", broker.port);
    t1.wait_ready();
    assert!(t1.sale(1000, "approved").contains("APPROVED"));
    t1.keys("C");

    // The disk fills up for real: red, with what to free.
    let filler = disk.0.path().join("filler");
    std::fs::write(&filler, vec![0u8; 200 << 20]).unwrap();
    let full = wait_check(&web, "store.disk", "fail");
    assert!(full["evidence"].as_str().unwrap().contains("MiB free"), "{full}");
    assert!(full["fix_en"].as_str().unwrap().contains("backup"), "{full}");
    // Every byte gone (ENOSPC): the hub refuses the sale, says why, charges nothing.
    let rest = disk.0.path().join("rest");
    let mut f = std::fs::File::create(&rest).unwrap();
    while std::io::Write::write_all(&mut f, &[0u8; 1 << 16]).is_ok() {}
    drop(f);
    let screen = t1.sale(2000, "approved");
    assert!(
        screen.contains("NOT CHARGED") && screen.contains("Hub cannot save"),
        "{screen}"
    );
    t1.keys("C");
    let full = wait_check(&web, "store.disk", "fail");
    assert!(
        full["evidence"].as_str().unwrap().contains("refuses new sales"),
        "{full}"
    );
    std::fs::remove_file(&rest).unwrap();
    std::fs::remove_file(&filler).unwrap();
    wait_check(&web, "store.disk", "ok");
    // Room again: the hub sells, and nothing was recorded for the refused sale.
    assert!(t1.sale(3000, "approved").contains("APPROVED"));
    assert_eq!(stored_amounts(&hub), [3000, 1000], "newest first");
    drop(t1);

    // The broker goes away: no checkout can reach the hub; back, and green.
    broker.kill();
    let down = wait_check(&web, "hub.broker", "fail");
    assert!(
        down["fix_en"].as_str().unwrap().contains("Restart the hub"),
        "{down}"
    );
    broker.restart();
    wait_check(&web, "hub.broker", "ok");
    drop(hub);
}

#[test]
fn the_support_bundle_of_a_new_hub_hides_the_setup_code_it_logged() {
    let hub = Hub::start_fresh();
    let code = hub.setup_code();
    let answer = ureq::post(&format!("http://127.0.0.1:{}/api/v1/setup", hub.http))
        .send_json(json!({"code": code, "password": "first-password"}))
        .expect("setup");
    let cookie = answer
        .header("set-cookie")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let tar = ureq::get(&format!("http://127.0.0.1:{}/api/v1/support-bundle", hub.http))
        .set("cookie", &cookie)
        .call()
        .expect("bundle")
        .into_string()
        .unwrap();
    assert!(
        tar.contains("setup_code=[hidden]"),
        "the log line is there, its code hidden"
    );
    let (a, b) = code.split_once(' ').unwrap();
    assert!(
        !tar.contains(&code) && !tar.contains(&format!("{a}{b}")),
        "the setup code left in the bundle"
    );
    assert!(!tar.contains("first-password"));
}

/// libfaketime (Debian's `libfaketime`, installed by scripts/test): the hub's
/// wall clock is read from a file the test writes, as an offset from the real one.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn a_hub_clock_that_went_back_refuses_sales_until_the_time_is_right_again() {
    assert!(
        Path::new(FAKETIME).exists(),
        "libfaketime is not installed: scripts/test installs it (apt-get install libfaketime)"
    );
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1000, "approved").contains("APPROVED"));
    t1.keys("C");

    // The hub restarts with its clock an hour behind (a Pi without a clock
    // battery, after a power cut, before the network gives it the time).
    let offset = hub.dir.path().join("clock-offset");
    std::fs::write(&offset, "-1h").unwrap();
    hub.env = vec![
        ("LD_PRELOAD".into(), FAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), offset.display().to_string()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
        ("DONT_FAKE_MONOTONIC".into(), "1".into()),
    ];
    hub.restart();
    t1.wait_ready();
    let screen = t1.sale(2000, "approved");
    assert!(
        screen.contains("NOT CHARGED") && screen.contains("Hub clock is wrong"),
        "{screen}"
    );
    t1.keys("C");
    let web = hub.web();
    let clock = wait_check(&web, "store.clock", "fail");
    assert!(clock["evidence"].as_str().unwrap().contains("behind"), "{clock}");

    // The network time arrives: the clock jumps forward, sales go on by themselves.
    std::fs::write(&offset, "+0").unwrap();
    wait_check(&web, "store.clock", "ok");
    assert!(t1.sale(3000, "approved").contains("APPROVED"));
    assert_eq!(stored_amounts(&hub), [3000, 1000], "the refused sale left no row");
}

#[test]
fn the_hubs_own_checkout_names_the_parts_that_did_not_start() {
    // This machine is no Pi: no I2C bus, no Raspberry Pi GPIO.
    let hub = Hub::start_with(None, &["--devices", "hw"]);
    let web = hub.web();
    let parts = wait_check(&web, "terminal.T0.parts", "fail");
    let evidence = parts["evidence"].as_str().unwrap();
    for part in [
        "OLED: I2C bus 1",
        "keypad: GPIO",
        "swipe reader: GPIO",
        "contactless reader: I2C",
    ] {
        assert!(evidence.contains(part), "{part} missing from {evidence}");
    }
    assert!(parts["fix_en"].as_str().unwrap().contains("hw-test"), "{parts}");
}
